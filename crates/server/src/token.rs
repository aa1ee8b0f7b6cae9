//! Consistency tokens: the opaque, versioned and checksummed wire form of a revision
//! (`ZedToken`), and cursors for paged reads.
//!
//! A token is the URL-safe base64 (no padding) of 13 bytes: a format version byte (`1`), the
//! revision as a big-endian `u64`, and the CRC-32 of those 9 bytes. The checksum catches
//! truncated and hand-edited tokens, which are refused with `InvalidArgument` rather than
//! silently read at some other revision.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ostiary_types::{RelationshipKey, Revision};

use crate::status::ApiError;

/// The only token format so far.
const TOKEN_VERSION: u8 = 1;
/// The only cursor format so far.
const CURSOR_PREFIX: &str = "r1:";

/// Encodes `revision` as a consistency token.
pub(crate) fn encode_token(revision: Revision) -> String {
    let mut bytes = Vec::with_capacity(13);
    bytes.push(TOKEN_VERSION);
    bytes.extend_from_slice(&revision.as_u64().to_be_bytes());
    let checksum = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&checksum.to_be_bytes());
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes a consistency token; `field` names the request field for the error message.
pub(crate) fn decode_token(field: &str, token: &str) -> Result<Revision, ApiError> {
    let garbled = || ApiError::invalid_token(field, token);
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| garbled())?;
    let [version, rest @ ..] = bytes.as_slice() else {
        return Err(garbled());
    };
    if *version != TOKEN_VERSION || rest.len() != 12 {
        return Err(garbled());
    }
    let (payload, checksum) = bytes.split_at(9);
    let expected = crc32fast::hash(payload).to_be_bytes();
    if checksum != expected {
        return Err(garbled());
    }
    let mut revision = [0_u8; 8];
    revision.copy_from_slice(&payload[1..]);
    Ok(Revision::new(u64::from_be_bytes(revision)))
}

/// Encodes a read cursor: the key of the last relationship returned.
pub(crate) fn encode_cursor(key: &RelationshipKey) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}{key}"))
}

/// Decodes a read cursor made by [`encode_cursor`].
pub(crate) fn decode_cursor(field: &str, cursor: &str) -> Result<RelationshipKey, ApiError> {
    let garbled = || ApiError::invalid_cursor(field, cursor);
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| garbled())?;
    let text = String::from_utf8(bytes).map_err(|_| garbled())?;
    let key_text = text.strip_prefix(CURSOR_PREFIX).ok_or_else(garbled)?;
    key_text.parse().map_err(|_| garbled())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_garbled_tokens_are_refused() {
        for value in [0, 1, 42, u64::MAX] {
            let token = encode_token(Revision::new(value));
            assert_eq!(decode_token("t", &token).unwrap(), Revision::new(value));
        }
        let token = encode_token(Revision::new(7));
        let mut tampered = token.clone().into_bytes();
        tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        for bad in ["", "abc", "!!!", &tampered, &token[..token.len() - 1]] {
            let err = decode_token("consistency.at_least_as_fresh", bad).unwrap_err();
            assert!(
                err.to_string().contains("consistency.at_least_as_fresh"),
                "{err}"
            );
        }
    }

    #[test]
    fn cursors_round_trip() {
        let key: RelationshipKey = "doc:1#viewer@user:alice".parse().unwrap();
        let cursor = encode_cursor(&key);
        assert_eq!(decode_cursor("c", &cursor).unwrap(), key);
        assert!(decode_cursor("c", "bm9wZQ").is_err());
    }
}
