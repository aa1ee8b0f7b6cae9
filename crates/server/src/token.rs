//! Consistency tokens (`ZedToken`) and read cursors, bound to the tenant they were issued to.
//!
//! Revisions are one global sequence across tenants, so a plain revision in a token would
//! let a tenant count every other tenant's writes. A token is therefore the URL-safe base64
//! (no padding) of a format byte (`2`) and one AES-128 block encrypting the revision
//! (big-endian `u64`) and an 8-byte keyed tag of the tenant. Decrypting under another tenant
//! (or a garbled token) yields the wrong tag and is refused with `InvalidArgument`, never
//! read at some other revision. A cursor carries the key of the last relationship returned
//! (the caller's own data) and an HMAC-SHA-256 tag over tenant and key.
//!
//! The keys derive from one 32-byte server secret kept as a record of the system tenant, so
//! that tokens survive restarts and servers sharing a store accept each other's tokens.

use aes::Aes128;
use aes::cipher::{BlockDecrypt, BlockEncrypt, KeyInit};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use ostiary_store::{Datastore, DatastoreExt, RecordNamespace, StoreError};
use ostiary_types::{RelationshipKey, Revision, TenantId};
use sha2::{Digest, Sha256};

use crate::status::ApiError;

/// The token format: encrypted revision and tenant tag.
const TOKEN_VERSION: u8 = 2;
/// The cursor format: key text and tenant-bound tag.
const CURSOR_VERSION: u8 = 2;
/// Bytes of HMAC kept in a cursor.
const CURSOR_TAG_BYTES: usize = 12;
/// The system-tenant record namespace and key of the server secret.
const SECRET_NAMESPACE: &str = "server";
const SECRET_KEY: &[u8] = b"token-secret";

/// Encodes and decodes consistency tokens and cursors under one server secret.
#[derive(Clone)]
pub(crate) struct TokenCodec {
    cipher: Aes128,
    /// HMAC-SHA-256, already keyed; cloned per use.
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for TokenCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Key material: never printed.
        f.debug_struct("TokenCodec").finish_non_exhaustive()
    }
}

impl TokenCodec {
    /// Derives the cipher and MAC keys from a server secret.
    pub(crate) fn new(secret: &[u8; 32]) -> Self {
        let derive = |label: &[u8]| -> [u8; 32] {
            let mut hasher = Sha256::new();
            hasher.update(b"ostiary-token-v2:");
            hasher.update(label);
            hasher.update(secret);
            hasher.finalize().into()
        };
        let cipher_key = derive(b"zedtoken");
        // HMAC pads a key shorter than its 64-byte block with zeros; doing it here makes
        // the infallible fixed-size constructor usable.
        let mut mac_key = [0_u8; 64];
        mac_key[..32].copy_from_slice(&derive(b"mac"));
        Self {
            cipher: Aes128::new(cipher_key[..16].into()),
            mac: <Hmac<Sha256> as KeyInit>::new(&mac_key.into()),
        }
    }

    /// Loads the server secret from the store, creating it on first use.
    pub(crate) fn load_or_create(store: &dyn Datastore) -> Result<Self, StoreError> {
        let namespace = RecordNamespace::new(SECRET_NAMESPACE)?;
        let system = TenantId::system();
        if let Some(secret) = store.read_record(&system, &namespace, SECRET_KEY)?
            && let Ok(secret) = <[u8; 32]>::try_from(secret.as_slice())
        {
            return Ok(Self::new(&secret));
        }
        let mut fresh = [0_u8; 32];
        getrandom::fill(&mut fresh).map_err(|err| {
            StoreError::Internal(format!("no randomness for the token secret: {err}"))
        })?;
        // Two servers starting at once on one store: the first write wins and both read it.
        let committed = store.read_write_with(&system, |txn| -> Result<[u8; 32], StoreError> {
            if let Some(existing) = txn.read_record(&namespace, SECRET_KEY)?
                && let Ok(existing) = <[u8; 32]>::try_from(existing.as_slice())
            {
                return Ok(existing);
            }
            txn.put_record(&namespace, SECRET_KEY, &fresh)?;
            Ok(fresh)
        })?;
        Ok(Self::new(&committed.value))
    }

    /// The keyed tag binding a token to `tenant`.
    fn tenant_tag(&self, tenant: &TenantId) -> [u8; 8] {
        let mac = self.mac(&[b"tenant:", tenant.as_str().as_bytes()]);
        let mut tag = [0_u8; 8];
        tag.copy_from_slice(&mac[..8]);
        tag
    }

    fn mac(&self, parts: &[&[u8]]) -> [u8; 32] {
        let mut mac = self.mac.clone();
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }

    /// Encodes `revision` as a consistency token of `tenant`.
    pub(crate) fn encode_token(&self, tenant: &TenantId, revision: Revision) -> String {
        let mut block = [0_u8; 16];
        block[..8].copy_from_slice(&revision.as_u64().to_be_bytes());
        block[8..].copy_from_slice(&self.tenant_tag(tenant));
        let mut block = block.into();
        self.cipher.encrypt_block(&mut block);
        let mut bytes = Vec::with_capacity(17);
        bytes.push(TOKEN_VERSION);
        bytes.extend_from_slice(&block);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Decodes a consistency token of `tenant`; `field` names the request field for the
    /// error message. A token of another tenant is refused like a garbled one.
    pub(crate) fn decode_token(
        &self,
        tenant: &TenantId,
        field: &str,
        token: &str,
    ) -> Result<Revision, ApiError> {
        let garbled = || ApiError::invalid_token(field, token);
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| garbled())?;
        let [version, rest @ ..] = bytes.as_slice() else {
            return Err(garbled());
        };
        let Ok(block) = <[u8; 16]>::try_from(rest) else {
            return Err(garbled());
        };
        if *version != TOKEN_VERSION {
            return Err(garbled());
        }
        let mut block = block.into();
        self.cipher.decrypt_block(&mut block);
        let (revision, tag) = block.split_at(8);
        if tag != self.tenant_tag(tenant) {
            return Err(garbled());
        }
        let mut value = [0_u8; 8];
        value.copy_from_slice(revision);
        Ok(Revision::new(u64::from_be_bytes(value)))
    }

    /// Encodes a cursor of `tenant` carrying `position` (a relationship key's text, or a
    /// LookupResources resume point: the caller's own data either way).
    pub(crate) fn encode_cursor(&self, tenant: &TenantId, position: &str) -> String {
        let tag = self.cursor_tag(tenant, position.as_bytes());
        let mut bytes = Vec::with_capacity(1 + CURSOR_TAG_BYTES + position.len());
        bytes.push(CURSOR_VERSION);
        bytes.extend_from_slice(&tag);
        bytes.extend_from_slice(position.as_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// Decodes a cursor of `tenant` made by [`TokenCodec::encode_cursor`] into its position.
    pub(crate) fn decode_cursor(
        &self,
        tenant: &TenantId,
        field: &str,
        cursor: &str,
    ) -> Result<String, ApiError> {
        let garbled = || ApiError::invalid_cursor(field, cursor);
        let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| garbled())?;
        let [version, rest @ ..] = bytes.as_slice() else {
            return Err(garbled());
        };
        if *version != CURSOR_VERSION || rest.len() < CURSOR_TAG_BYTES {
            return Err(garbled());
        }
        let (tag, position) = rest.split_at(CURSOR_TAG_BYTES);
        if !constant_time_eq(tag, &self.cursor_tag(tenant, position)) {
            return Err(garbled());
        }
        String::from_utf8(position.to_vec()).map_err(|_| garbled())
    }

    /// Encodes a relationship-read cursor: the key of the last relationship returned.
    pub(crate) fn encode_key_cursor(&self, tenant: &TenantId, key: &RelationshipKey) -> String {
        self.encode_cursor(tenant, &key.to_string())
    }

    /// Decodes a cursor made by [`TokenCodec::encode_key_cursor`].
    pub(crate) fn decode_key_cursor(
        &self,
        tenant: &TenantId,
        field: &str,
        cursor: &str,
    ) -> Result<RelationshipKey, ApiError> {
        self.decode_cursor(tenant, field, cursor)?
            .parse()
            .map_err(|_| ApiError::invalid_cursor(field, cursor))
    }

    fn cursor_tag(&self, tenant: &TenantId, position: &[u8]) -> [u8; CURSOR_TAG_BYTES] {
        let mac = self.mac(&[b"cursor:", tenant.as_str().as_bytes(), b"\0", position]);
        let mut tag = [0_u8; CURSOR_TAG_BYTES];
        tag.copy_from_slice(&mac[..CURSOR_TAG_BYTES]);
        tag
    }
}

/// Audit entries name the revision of their commit with the tenant's consistency token (the
/// ZedToken the write returned): the tenant can match entries to its writes but cannot count
/// other tenants' commits from them.
impl ostiary_tenancy::RevisionSeal for TokenCodec {
    fn seal(&self, tenant: &TenantId, revision: Revision) -> String {
        self.encode_token(tenant, revision)
    }
}

/// Byte-slice equality in constant time (for equal lengths), as `subtle` gives it.
pub(crate) fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    bool::from(subtle::ConstantTimeEq::ct_eq(left, right))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codec() -> TokenCodec {
        TokenCodec::new(&[7; 32])
    }

    fn tenant(name: &str) -> TenantId {
        name.parse().unwrap()
    }

    #[test]
    fn tokens_round_trip_and_garbled_tokens_are_refused() {
        let codec = codec();
        let a = tenant("a");
        for value in [0, 1, 42, u64::MAX] {
            let token = codec.encode_token(&a, Revision::new(value));
            assert_eq!(
                codec.decode_token(&a, "t", &token).unwrap(),
                Revision::new(value)
            );
        }
        let token = codec.encode_token(&a, Revision::new(7));
        let mut tampered = token.clone().into_bytes();
        tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        for bad in ["", "abc", "!!!", &tampered, &token[..token.len() - 1]] {
            let err = codec
                .decode_token(&a, "consistency.at_least_as_fresh", bad)
                .unwrap_err();
            assert!(
                err.to_string().contains("consistency.at_least_as_fresh"),
                "{err}"
            );
        }
    }

    #[test]
    fn tokens_are_bound_to_their_tenant_and_hide_the_revision() {
        let codec = codec();
        let (a, b) = (tenant("a"), tenant("b"));
        let token_a = codec.encode_token(&a, Revision::new(41));
        assert!(codec.decode_token(&b, "t", &token_a).is_err());
        // Consecutive revisions give unrelated tokens: nothing to count.
        let next = codec.encode_token(&a, Revision::new(42));
        let common = token_a
            .bytes()
            .zip(next.bytes())
            .skip(2)
            .filter(|(x, y)| x == y)
            .count();
        assert!(common < 8, "{token_a} vs {next}");
        // Another server secret does not accept the token either.
        let other = TokenCodec::new(&[8; 32]);
        assert!(other.decode_token(&a, "t", &token_a).is_err());
    }

    #[test]
    fn cursors_round_trip_and_are_bound_to_their_tenant() {
        let codec = codec();
        let (a, b) = (tenant("a"), tenant("b"));
        let key: RelationshipKey = "doc:1#viewer@user:alice".parse().unwrap();
        let cursor = codec.encode_key_cursor(&a, &key);
        assert_eq!(codec.decode_key_cursor(&a, "c", &cursor).unwrap(), key);
        assert!(codec.decode_key_cursor(&b, "c", &cursor).is_err());
        assert!(codec.decode_key_cursor(&a, "c", "bm9wZQ").is_err());
        let lookup = codec.encode_cursor(&a, "doc-17");
        assert_eq!(codec.decode_cursor(&a, "c", &lookup).unwrap(), "doc-17");
        assert!(codec.decode_cursor(&b, "c", &lookup).is_err());
    }

    #[test]
    fn the_secret_is_created_once_and_reused() {
        let store =
            ostiary_store_mem::MemDatastore::new(ostiary_store::DatastoreOptions::default());
        let first = TokenCodec::load_or_create(&store).unwrap();
        let second = TokenCodec::load_or_create(&store).unwrap();
        let a = tenant("a");
        let token = first.encode_token(&a, Revision::new(3));
        assert_eq!(
            second.decode_token(&a, "t", &token).unwrap(),
            Revision::new(3)
        );
    }
}
