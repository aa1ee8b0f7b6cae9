//! The on-disk encoding: order-preserving keys of the forward and reverse indexes, version
//! values, change-log records and metadata. This is an API boundary (the on-disk format):
//! changing it means bumping [`FORMAT_VERSION`].
//!
//! # Keys
//!
//! Every key starts with the tenant id, so one tenant's data is one contiguous key range
//! (tenants are isolated by prefix and deleted with one range deletion per column family).
//! Text components are written followed by a `\0` terminator. No valid tenant id, type,
//! relation or object id contains `\0`, and every byte they may contain is greater than
//! it, so comparing encodings bytewise compares the components in order, each as a
//! string, with the subject ellipsis (written as the empty string) first: exactly
//! [`ReadOrder`](ostiary_store::ReadOrder). The encoding of leading components is a
//! prefix of every key that has them.
//!
//! | column family | key | value |
//! |---|---|---|
//! | `forward` | tenant, resource type, resource id, relation, subject type, subject id, subject relation, `!revision` | [version](encode_version) |
//! | `reverse` | tenant, subject type, subject id, subject relation, resource type, resource id, relation, `!revision` | the same version |
//! | `changes` | tenant, revision, optional 4-byte chunk number | [change record](encode_changes) |
//! | `schema` | tenant, `!revision` | schema text |
//! | `meta` | `format`, `horizon`, `commit` + revision, `import` | format version, horizon, commit time, [pending import](encode_import_marker) |
//! | `records` | tenant, namespace, key bytes | record value |
//!
//! `revision` is 8 bytes big-endian; `!revision` is its bitwise complement, so the versions
//! of one relationship sort newest first and a seek to `key || !R` lands on the version
//! visible at revision `R`.
//!
//! A revision's change record is one value, except for SST imports (format 2), whose
//! changes are split into chunks keyed `tenant, revision, chunk` (chunk numbers from 0,
//! 4 bytes big-endian); readers concatenate the chunks of one revision.
//!
//! Records (unversioned per-tenant metadata, see
//! [`RecordNamespace`](ostiary_store::RecordNamespace)) have a column family of their own,
//! so they can never collide with relationship, schema or change-log keys. Their key is
//! the tenant and the namespace (both `\0`-terminated and free of `\0`), then the raw key
//! bytes: the records of one namespace are one contiguous range sorted by key, and a
//! tenant's records are inside its tenant prefix (deleted with it).
//!
//! Format history: 1 — initial; 2 — chunked change records and the `import` marker
//! (a superset of 1: a format-1 directory is upgraded on open by rewriting the version);
//! 3 — the `records` column family (an older directory is upgraded on open by creating it,
//! empty, and rewriting the version).

use std::sync::Arc;

use ostiary_types::{
    CaveatName, ContextualizedCaveat, ObjectId, ObjectRef, ObjectType, RelationName, Relationship,
    RelationshipKey, Revision, SubjectRef, TenantId, Timestamp,
};

use crate::error::corrupt;
use ostiary_store::{Change, RecordNamespace, StoreError};

/// The store format this build writes and reads. Opening a directory of a newer format
/// fails; older formats would be migrated here.
pub(crate) const FORMAT_VERSION: u32 = 3;

/// The first format with the `records` column family.
pub(crate) const FORMAT_WITH_RECORDS: u32 = 3;

/// Metadata key of the format version (4 bytes big-endian).
pub(crate) const META_FORMAT: &[u8] = b"format";
/// Metadata key of the persisted horizon (8 bytes big-endian).
pub(crate) const META_HORIZON: &[u8] = b"horizon";
/// Prefix of the metadata keys recording each revision's commit time.
pub(crate) const META_COMMIT: &[u8] = b"commit/";
/// Metadata key of an SST import in progress (see [`encode_import_marker`]).
pub(crate) const META_IMPORT: &[u8] = b"import";

/// The length of the revision suffix of index keys.
pub(crate) const REVISION_LEN: usize = 8;

/// Appends one text component and its terminator.
pub(crate) fn push(buffer: &mut Vec<u8>, component: &str) {
    buffer.extend_from_slice(component.as_bytes());
    buffer.push(0);
}

/// The subject relation as a component: the empty string for the ellipsis.
pub(crate) fn relation_text(relation: Option<&RelationName>) -> &str {
    relation.map_or("", RelationName::as_str)
}

/// The prefix of every key of `tenant`.
pub(crate) fn tenant_prefix(tenant: &TenantId) -> Vec<u8> {
    let mut buffer = Vec::with_capacity(16);
    push(&mut buffer, tenant.as_str());
    buffer
}

/// Encodes `key` in resource order, without the revision suffix.
pub(crate) fn forward_key(tenant: &TenantId, key: &RelationshipKey) -> Vec<u8> {
    let mut buffer = Vec::with_capacity(64);
    push(&mut buffer, tenant.as_str());
    push_forward_components(&mut buffer, key);
    buffer
}

/// Appends the encoding of `key` in resource order (as [`forward_key`]) to `buffer`.
pub(crate) fn push_forward_key(buffer: &mut Vec<u8>, tenant: &TenantId, key: &RelationshipKey) {
    push(buffer, tenant.as_str());
    push_forward_components(buffer, key);
}

/// Appends the encoding of `key` in subject order (as [`reverse_key`]) to `buffer`.
pub(crate) fn push_reverse_key(buffer: &mut Vec<u8>, tenant: &TenantId, key: &RelationshipKey) {
    push(buffer, tenant.as_str());
    push(buffer, key.subject().object_type().as_str());
    push(buffer, key.subject().object_id().as_str());
    push(buffer, relation_text(key.subject().relation()));
    push(buffer, key.resource().object_type().as_str());
    push(buffer, key.resource().object_id().as_str());
    push(buffer, key.relation().as_str());
}

/// Appends the six components of `key` in resource order.
fn push_forward_components(buffer: &mut Vec<u8>, key: &RelationshipKey) {
    push(buffer, key.resource().object_type().as_str());
    push(buffer, key.resource().object_id().as_str());
    push(buffer, key.relation().as_str());
    push(buffer, key.subject().object_type().as_str());
    push(buffer, key.subject().object_id().as_str());
    push(buffer, relation_text(key.subject().relation()));
}

/// Encodes `key` in subject order, without the revision suffix.
pub(crate) fn reverse_key(tenant: &TenantId, key: &RelationshipKey) -> Vec<u8> {
    let mut buffer = Vec::with_capacity(64);
    push_reverse_key(&mut buffer, tenant, key);
    buffer
}

/// Appends the revision suffix `!revision`.
pub(crate) fn push_revision_desc(buffer: &mut Vec<u8>, revision: Revision) {
    buffer.extend_from_slice(&(!revision.as_u64()).to_be_bytes());
}

/// Returns `key || !revision`.
pub(crate) fn versioned(key: &[u8], revision: Revision) -> Vec<u8> {
    let mut buffer = Vec::with_capacity(key.len() + REVISION_LEN);
    buffer.extend_from_slice(key);
    push_revision_desc(&mut buffer, revision);
    buffer
}

/// Splits a versioned index key into the relationship part and its revision.
pub(crate) fn split_versioned(key: &[u8]) -> Result<(&[u8], Revision), StoreError> {
    let Some(split_at) = key.len().checked_sub(REVISION_LEN) else {
        return Err(corrupt("index key shorter than its revision"));
    };
    let (head, tail) = key.split_at(split_at);
    let mut bytes = [0u8; REVISION_LEN];
    bytes.copy_from_slice(tail);
    Ok((head, Revision::new(!u64::from_be_bytes(bytes))))
}

/// Returns the smallest key greater than every key starting with `prefix`, or `None` if
/// there is none (the prefix is all `0xff`).
pub(crate) fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut successor = prefix.to_vec();
    while let Some(last) = successor.pop() {
        if last < u8::MAX {
            successor.push(last + 1);
            return Some(successor);
        }
    }
    None
}

/// Encodes a revision as 8 bytes big-endian.
pub(crate) fn revision_bytes(revision: Revision) -> [u8; 8] {
    revision.as_u64().to_be_bytes()
}

/// Decodes 8 bytes big-endian into a revision.
pub(crate) fn decode_revision(bytes: &[u8]) -> Result<Revision, StoreError> {
    let array: [u8; 8] = bytes
        .try_into()
        .map_err(|_| corrupt("revision is not 8 bytes"))?;
    Ok(Revision::new(u64::from_be_bytes(array)))
}

/// The metadata key of a revision's commit time.
pub(crate) fn commit_key(revision: Revision) -> Vec<u8> {
    let mut key = META_COMMIT.to_vec();
    key.extend_from_slice(&revision_bytes(revision));
    key
}

/// The change-log key of a revision of a tenant.
pub(crate) fn change_key(tenant: &TenantId, revision: Revision) -> Vec<u8> {
    let mut key = tenant_prefix(tenant);
    key.extend_from_slice(&revision_bytes(revision));
    key
}

/// The change-log key of chunk `chunk` of a revision of a tenant (SST imports).
pub(crate) fn change_chunk_key(tenant: &TenantId, revision: Revision, chunk: u32) -> Vec<u8> {
    let mut key = change_key(tenant, revision);
    key.extend_from_slice(&chunk.to_be_bytes());
    key
}

/// Decodes the part of a change-log key after the tenant: the revision, optionally followed
/// by a chunk number (which is returned).
pub(crate) fn decode_change_suffix(bytes: &[u8]) -> Result<(Revision, Option<u32>), StoreError> {
    match bytes.len() {
        REVISION_LEN => Ok((decode_revision(bytes)?, None)),
        12 => {
            let (revision, chunk) = bytes.split_at(REVISION_LEN);
            let chunk: [u8; 4] = chunk
                .try_into()
                .map_err(|_| corrupt("change chunk number is not 4 bytes"))?;
            Ok((decode_revision(revision)?, Some(u32::from_be_bytes(chunk))))
        }
        _ => Err(corrupt("change key has a bad length")),
    }
}

/// An SST import whose files may be (partly) ingested but whose revision is not
/// committed: recovery on open removes the versions at `revision` in the two key ranges
/// and the revision's change records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImportMarker {
    pub(crate) tenant: Vec<u8>,
    pub(crate) revision: Revision,
    /// First and last unversioned forward keys of the import.
    pub(crate) forward: (Vec<u8>, Vec<u8>),
    /// First and last unversioned reverse keys of the import.
    pub(crate) reverse: (Vec<u8>, Vec<u8>),
}

/// Encodes an import marker: the revision, then the tenant prefix and the four range
/// bounds, each length-prefixed.
pub(crate) fn encode_import_marker(marker: &ImportMarker) -> Vec<u8> {
    let mut buffer = revision_bytes(marker.revision).to_vec();
    for part in [
        &marker.tenant,
        &marker.forward.0,
        &marker.forward.1,
        &marker.reverse.0,
        &marker.reverse.1,
    ] {
        push_bytes(&mut buffer, part);
    }
    buffer
}

/// Decodes a marker written by [`encode_import_marker`].
pub(crate) fn decode_import_marker(bytes: &[u8]) -> Result<ImportMarker, StoreError> {
    let mut reader = Reader::new(bytes);
    let revision = decode_revision(reader.take(REVISION_LEN)?)?;
    let tenant = reader.bytes()?.to_vec();
    let forward = (reader.bytes()?.to_vec(), reader.bytes()?.to_vec());
    let reverse = (reader.bytes()?.to_vec(), reader.bytes()?.to_vec());
    if !reader.is_empty() {
        return Err(corrupt("trailing bytes in import marker"));
    }
    Ok(ImportMarker {
        tenant,
        revision,
        forward,
        reverse,
    })
}

/// Appends one change of an SST import to a change record being built: the same bytes
/// [`encode_changes`] writes for a touch of the relationship with this forward key
/// (`tenant_len` bytes of tenant prefix are skipped) and version value.
pub(crate) fn push_touch_change(
    buffer: &mut Vec<u8>,
    forward_key: &[u8],
    tenant_len: usize,
    value: &[u8],
) {
    buffer.push(CHANGE_TOUCH);
    push_bytes(buffer, forward_key.get(tenant_len..).unwrap_or_default());
    push_bytes(buffer, value);
}

/// The prefix of every record key of `namespace` in `tenant`.
pub(crate) fn record_prefix(tenant: &TenantId, namespace: &RecordNamespace) -> Vec<u8> {
    let mut key = tenant_prefix(tenant);
    push(&mut key, namespace.as_str());
    key
}

/// The key of the record `key` of `namespace` in `tenant`.
pub(crate) fn record_key(tenant: &TenantId, namespace: &RecordNamespace, key: &[u8]) -> Vec<u8> {
    let mut encoded = record_prefix(tenant, namespace);
    encoded.extend_from_slice(key);
    encoded
}

/// The schema key of a revision of a tenant.
pub(crate) fn schema_key(tenant: &TenantId, revision: Revision) -> Vec<u8> {
    let mut key = tenant_prefix(tenant);
    push_revision_desc(&mut key, revision);
    key
}

/// Encodes a timestamp as 12 bytes: seconds (big-endian, sign bit flipped so that the
/// bytes sort like the times) and nanoseconds.
pub(crate) fn encode_timestamp(buffer: &mut Vec<u8>, timestamp: Timestamp) {
    let seconds = (timestamp.unix_seconds() as u64) ^ (1 << 63);
    buffer.extend_from_slice(&seconds.to_be_bytes());
    buffer.extend_from_slice(&timestamp.subsec_nanos().to_be_bytes());
}

/// Decodes a timestamp written by [`encode_timestamp`] from the front of `reader`.
pub(crate) fn decode_timestamp(reader: &mut Reader<'_>) -> Result<Timestamp, StoreError> {
    let seconds = u64::from_be_bytes(reader.array::<8>()?) ^ (1 << 63);
    let nanos = u32::from_be_bytes(reader.array::<4>()?);
    Timestamp::from_unix(seconds as i64, nanos).map_err(|_| corrupt("timestamp out of range"))
}

/// Flag bits of a version value's first byte.
const TOMBSTONE: u8 = 1;
const HAS_CAVEAT: u8 = 2;
const HAS_EXPIRATION: u8 = 4;

/// The stored value of one version: a tombstone, or the relationship's caveat and
/// expiration (the key holds the rest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VersionValue {
    Tombstone,
    Live {
        caveat: Option<ContextualizedCaveat>,
        expiration: Option<Timestamp>,
    },
}

/// The value of a tombstone version.
pub(crate) const TOMBSTONE_VALUE: &[u8] = &[TOMBSTONE];

/// Encodes a live version of `rel`: a flag byte, then the caveat name and its context as
/// JSON (each length-prefixed) if caveated, then the expiration if any. A plain
/// relationship's value is one byte.
pub(crate) fn encode_version(rel: &Relationship) -> Result<Vec<u8>, StoreError> {
    let mut buffer = Vec::with_capacity(1);
    push_version(&mut buffer, rel)?;
    Ok(buffer)
}

/// Appends the [version value](encode_version) of `rel` to `buffer`.
pub(crate) fn push_version(buffer: &mut Vec<u8>, rel: &Relationship) -> Result<(), StoreError> {
    let mut flags = 0;
    let flags_at = buffer.len();
    buffer.push(0);
    if let Some(caveat) = rel.caveat() {
        flags |= HAS_CAVEAT;
        push_bytes(buffer, caveat.name().as_str().as_bytes());
        let context = if caveat.context().is_empty() {
            Vec::new()
        } else {
            serde_json::to_vec(caveat.context()).map_err(|err| {
                StoreError::Internal(format!("cannot encode caveat context: {err}"))
            })?
        };
        push_bytes(buffer, &context);
    }
    if let Some(expiration) = rel.expiration() {
        flags |= HAS_EXPIRATION;
        encode_timestamp(buffer, expiration);
    }
    buffer[flags_at] = flags;
    Ok(())
}

/// Decodes a version value.
pub(crate) fn decode_version(bytes: &[u8]) -> Result<VersionValue, StoreError> {
    let mut reader = Reader::new(bytes);
    let flags = reader.byte()?;
    if flags & TOMBSTONE != 0 {
        return Ok(VersionValue::Tombstone);
    }
    let caveat = if flags & HAS_CAVEAT != 0 {
        let name = reader.text()?;
        let name = CaveatName::new(name).map_err(|_| corrupt("invalid caveat name"))?;
        let context = reader.bytes()?;
        let context = if context.is_empty() {
            serde_json::Map::new()
        } else {
            serde_json::from_slice(context).map_err(|_| corrupt("invalid caveat context"))?
        };
        Some(ContextualizedCaveat::new(name, context))
    } else {
        None
    };
    let expiration = if flags & HAS_EXPIRATION != 0 {
        Some(decode_timestamp(&mut reader)?)
    } else {
        None
    };
    Ok(VersionValue::Live { caveat, expiration })
}

/// Reads just the expiration of a live version value, without decoding the caveat (for the
/// visibility check on the hot path). Returns `None` for a tombstone.
pub(crate) fn peek_expiration(bytes: &[u8]) -> Result<Option<Option<Timestamp>>, StoreError> {
    let mut reader = Reader::new(bytes);
    let flags = reader.byte()?;
    if flags & TOMBSTONE != 0 {
        return Ok(None);
    }
    if flags & HAS_EXPIRATION == 0 {
        return Ok(Some(None));
    }
    if flags & HAS_CAVEAT != 0 {
        reader.bytes()?;
        reader.bytes()?;
    }
    Ok(Some(Some(decode_timestamp(&mut reader)?)))
}

fn push_bytes(buffer: &mut Vec<u8>, bytes: &[u8]) {
    // Lengths are bounded by the names' rules and a context's size; u32 is plenty.
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    buffer.extend_from_slice(&len.to_be_bytes());
    buffer.extend_from_slice(&bytes[..len as usize]);
}

/// A cursor over encoded bytes; every read checks bounds and fails as corruption.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub(crate) fn take(&mut self, len: usize) -> Result<&'a [u8], StoreError> {
        if self.bytes.len() < len {
            return Err(corrupt("record truncated"));
        }
        let (head, tail) = self.bytes.split_at(len);
        self.bytes = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N)?);
        Ok(array)
    }

    pub(crate) fn byte(&mut self) -> Result<u8, StoreError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32, StoreError> {
        Ok(u32::from_be_bytes(self.array::<4>()?))
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], StoreError> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    pub(crate) fn text(&mut self) -> Result<&'a str, StoreError> {
        std::str::from_utf8(self.bytes()?).map_err(|_| corrupt("text is not UTF-8"))
    }

    /// Reads one `\0`-terminated component.
    pub(crate) fn component(&mut self) -> Result<&'a str, StoreError> {
        let Some(end) = self.bytes.iter().position(|&byte| byte == 0) else {
            return Err(corrupt("key component not terminated"));
        };
        let component = std::str::from_utf8(&self.bytes[..end])
            .map_err(|_| corrupt("key component is not UTF-8"))?;
        self.bytes = &self.bytes[end + 1..];
        Ok(component)
    }
}

/// Decodes the names of index keys, reusing the previous key's `Arc`s when a component
/// repeats (consecutive keys of a scan share their type and relation), so that a scan
/// allocates little beyond the ids.
#[derive(Debug, Default)]
pub(crate) struct KeyDecoder {
    resource_type: Option<ObjectType>,
    relation: Option<RelationName>,
    subject_type: Option<ObjectType>,
    subject_relation: Option<RelationName>,
}

fn cached<T: Clone>(
    slot: &mut Option<T>,
    text: &str,
    as_str: impl Fn(&T) -> &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, StoreError> {
    if let Some(value) = slot.as_ref()
        && as_str(value) == text
    {
        return Ok(value.clone());
    }
    let value = parse(text).ok_or_else(|| corrupt("invalid name in key"))?;
    *slot = Some(value.clone());
    Ok(value)
}

impl KeyDecoder {
    fn object_type(slot: &mut Option<ObjectType>, text: &str) -> Result<ObjectType, StoreError> {
        cached(slot, text, ObjectType::as_str, |text| {
            ObjectType::new(text).ok()
        })
    }

    fn relation(slot: &mut Option<RelationName>, text: &str) -> Result<RelationName, StoreError> {
        cached(slot, text, RelationName::as_str, |text| {
            RelationName::new(text).ok()
        })
    }

    fn object_id(text: &str) -> Result<ObjectId, StoreError> {
        ObjectId::new(text).map_err(|_| corrupt("invalid object id in key"))
    }

    fn subject_relation(&mut self, text: &str) -> Result<Option<RelationName>, StoreError> {
        if text.is_empty() {
            Ok(None)
        } else {
            Self::relation(&mut self.subject_relation, text).map(Some)
        }
    }

    /// Decodes a forward key (tenant included, revision excluded).
    pub(crate) fn forward(&mut self, key: &[u8]) -> Result<RelationshipKey, StoreError> {
        let mut reader = Reader::new(key);
        reader.component()?;
        let resource_type = Self::object_type(&mut self.resource_type, reader.component()?)?;
        let resource_id = Self::object_id(reader.component()?)?;
        let relation = Self::relation(&mut self.relation, reader.component()?)?;
        let subject_type = Self::object_type(&mut self.subject_type, reader.component()?)?;
        let subject_id = Self::object_id(reader.component()?)?;
        let subject_relation = self.subject_relation(reader.component()?)?;
        Self::finish(
            &reader,
            ObjectRef::new(resource_type, resource_id),
            relation,
            SubjectRef::new(ObjectRef::new(subject_type, subject_id), subject_relation),
        )
    }

    /// Decodes a reverse key (tenant included, revision excluded).
    pub(crate) fn reverse(&mut self, key: &[u8]) -> Result<RelationshipKey, StoreError> {
        let mut reader = Reader::new(key);
        reader.component()?;
        let subject_type = Self::object_type(&mut self.subject_type, reader.component()?)?;
        let subject_id = Self::object_id(reader.component()?)?;
        let subject_relation = self.subject_relation(reader.component()?)?;
        let resource_type = Self::object_type(&mut self.resource_type, reader.component()?)?;
        let resource_id = Self::object_id(reader.component()?)?;
        let relation = Self::relation(&mut self.relation, reader.component()?)?;
        Self::finish(
            &reader,
            ObjectRef::new(resource_type, resource_id),
            relation,
            SubjectRef::new(ObjectRef::new(subject_type, subject_id), subject_relation),
        )
    }

    fn finish(
        reader: &Reader<'_>,
        resource: ObjectRef,
        relation: RelationName,
        subject: SubjectRef,
    ) -> Result<RelationshipKey, StoreError> {
        if !reader.is_empty() {
            return Err(corrupt("trailing bytes in index key"));
        }
        RelationshipKey::new(resource, relation, subject)
            .map_err(|_| corrupt("wildcard resource in index key"))
    }
}

/// Builds a relationship from its key and a live version's value.
pub(crate) fn relationship(
    key: RelationshipKey,
    caveat: Option<ContextualizedCaveat>,
    expiration: Option<Timestamp>,
) -> Relationship {
    Relationship::from(key)
        .with_caveat(caveat)
        .with_expiration(expiration)
}

/// Change-record tags.
const CHANGE_TOUCH: u8 = 1;
const CHANGE_DELETE: u8 = 2;
const CHANGE_SCHEMA: u8 = 3;

/// Encodes one revision's changes: the commit time, then each change as a tag and, for
/// relationships, the forward key (tenant excluded) and the version value, each
/// length-prefixed; for the schema, its text.
pub(crate) fn encode_changes(
    committed_at: Timestamp,
    changes: &[Change],
) -> Result<Vec<u8>, StoreError> {
    let mut buffer = Vec::with_capacity(16 + changes.len() * 48);
    encode_timestamp(&mut buffer, committed_at);
    for change in changes {
        match change {
            Change::Touch(rel) | Change::Delete(rel) => {
                let tag = if matches!(change, Change::Touch(_)) {
                    CHANGE_TOUCH
                } else {
                    CHANGE_DELETE
                };
                buffer.push(tag);
                let mut key = Vec::with_capacity(48);
                push_forward_components(&mut key, rel.key());
                push_bytes(&mut buffer, &key);
                push_bytes(&mut buffer, &encode_version(rel)?);
            }
            Change::Schema(text) => {
                buffer.push(CHANGE_SCHEMA);
                push_bytes(&mut buffer, text.as_bytes());
            }
        }
    }
    Ok(buffer)
}

/// Decodes a record written by [`encode_changes`].
pub(crate) fn decode_changes(bytes: &[u8]) -> Result<(Timestamp, Vec<Change>), StoreError> {
    let mut reader = Reader::new(bytes);
    let committed_at = decode_timestamp(&mut reader)?;
    let mut changes = Vec::new();
    let mut decoder = KeyDecoder::default();
    // The key decoder expects a leading tenant component; the change log omits it.
    let mut key_buffer = vec![0u8];
    while !reader.is_empty() {
        match reader.byte()? {
            tag @ (CHANGE_TOUCH | CHANGE_DELETE) => {
                key_buffer.truncate(1);
                key_buffer.extend_from_slice(reader.bytes()?);
                let key = decoder.forward(&key_buffer)?;
                let VersionValue::Live { caveat, expiration } = decode_version(reader.bytes()?)?
                else {
                    return Err(corrupt("tombstone in change record"));
                };
                let rel = relationship(key, caveat, expiration);
                changes.push(if tag == CHANGE_TOUCH {
                    Change::Touch(rel)
                } else {
                    Change::Delete(rel)
                });
            }
            CHANGE_SCHEMA => changes.push(Change::Schema(Arc::from(reader.text()?))),
            _ => return Err(corrupt("unknown change tag")),
        }
    }
    Ok((committed_at, changes))
}

#[cfg(test)]
mod tests {
    use ostiary_store::ReadOrder;

    use super::*;

    fn tenant() -> TenantId {
        TenantId::default_tenant()
    }

    #[test]
    fn byte_order_matches_read_order() {
        let texts = [
            "doc:a#viewer@user:b",
            "doc:a#viewer@user:b#member",
            "doc:a#view@user:b",
            "doc:a#viewer@user:ba",
            "doc:ab#viewer@user:b",
            "doc:a-b#viewer@user:b",
            "doc/xyz:a#viewer@user:b",
            "docs:a#viewer@user:*",
            "doc:a#viewer@group:b#member",
            "doc:a#viewer@group:b",
            "doc:A#viewer@group:b",
            "doc:a#viewer@group:b=+|/",
        ];
        let keys: Vec<RelationshipKey> = texts.iter().map(|text| text.parse().unwrap()).collect();
        for left in &keys {
            for right in &keys {
                for (left_rev, right_rev) in [(1, 2), (7, 7), (9, 3)] {
                    let left_fwd =
                        versioned(&forward_key(&tenant(), left), Revision::new(left_rev));
                    let right_fwd =
                        versioned(&forward_key(&tenant(), right), Revision::new(right_rev));
                    let expected = ReadOrder::Resource
                        .compare(left, right)
                        .then(right_rev.cmp(&left_rev));
                    assert_eq!(left_fwd.cmp(&right_fwd), expected, "{left} vs {right}");
                    let left_rev_key =
                        versioned(&reverse_key(&tenant(), left), Revision::new(left_rev));
                    let right_rev_key =
                        versioned(&reverse_key(&tenant(), right), Revision::new(right_rev));
                    let expected = ReadOrder::Subject
                        .compare(left, right)
                        .then(right_rev.cmp(&left_rev));
                    assert_eq!(
                        left_rev_key.cmp(&right_rev_key),
                        expected,
                        "{left} vs {right}"
                    );
                }
            }
        }
    }

    #[test]
    fn tenants_are_prefix_isolated() {
        let key: RelationshipKey = "doc:a#viewer@user:b".parse().unwrap();
        let short = TenantId::new("t").unwrap();
        let long = TenantId::new("t2").unwrap();
        let short_key = forward_key(&short, &key);
        assert!(short_key.starts_with(&tenant_prefix(&short)));
        assert!(!forward_key(&long, &key).starts_with(&tenant_prefix(&short)));
        assert!(!reverse_key(&long, &key).starts_with(&tenant_prefix(&short)));
    }

    #[test]
    fn keys_and_values_round_trip() {
        let texts = [
            "doc:a#viewer@user:b",
            "doc:a#viewer@group:g#member[expiration:2025-01-01T00:00:00.5Z]",
            r#"doc:a#viewer@user:*[only_if:{"k":[1,"x"]}]"#,
            r#"nsp/doc:a#viewer@user:b[nsp/cav][expiration:1960-01-01T00:00:00Z]"#,
        ];
        for text in texts {
            let rel: Relationship = text.parse().unwrap();
            let value = encode_version(&rel).unwrap();
            let VersionValue::Live { caveat, expiration } = decode_version(&value).unwrap() else {
                panic!("tombstone");
            };
            assert_eq!(peek_expiration(&value).unwrap(), Some(rel.expiration()));
            let mut decoder = KeyDecoder::default();
            let key = decoder.forward(&forward_key(&tenant(), rel.key())).unwrap();
            assert_eq!(relationship(key, caveat.clone(), expiration), rel);
            let key = decoder.reverse(&reverse_key(&tenant(), rel.key())).unwrap();
            assert_eq!(relationship(key, caveat, expiration), rel);
        }
        assert_eq!(
            encode_version(&"doc:a#viewer@user:b".parse().unwrap())
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            decode_version(TOMBSTONE_VALUE).unwrap(),
            VersionValue::Tombstone
        );
        assert_eq!(peek_expiration(TOMBSTONE_VALUE).unwrap(), None);
    }

    #[test]
    fn versioned_keys_split() {
        let key = forward_key(&tenant(), &"doc:a#viewer@user:b".parse().unwrap());
        let versioned_key = versioned(&key, Revision::new(42));
        let (head, revision) = split_versioned(&versioned_key).unwrap();
        assert_eq!(head, key.as_slice());
        assert_eq!(revision, Revision::new(42));
        assert!(split_versioned(b"short").is_err());
        assert_eq!(prefix_successor(b"ab\0"), Some(b"ab\x01".to_vec()));
        assert_eq!(prefix_successor(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_successor(b"\xff\xff"), None);
    }

    #[test]
    fn changes_round_trip_and_corruption_is_an_error() {
        let changes = vec![
            Change::Schema(Arc::from("definition user {}")),
            Change::Touch("doc:a#viewer@user:b[cav:{\"x\":1}]".parse().unwrap()),
            Change::Delete("doc:a#viewer@group:g#member".parse().unwrap()),
        ];
        let at: Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
        let bytes = encode_changes(at, &changes).unwrap();
        assert_eq!(decode_changes(&bytes).unwrap(), (at, changes));
        for len in 0..bytes.len() {
            // Every truncation either fails cleanly or decodes a shorter list.
            let _ = decode_changes(&bytes[..len]);
        }
        assert!(decode_changes(&[0xff; 13]).is_err());
        assert!(decode_version(&[]).is_err());
        assert!(KeyDecoder::default().forward(b"t\0doc\0a").is_err());
    }
}
