//! Records: per-tenant, unversioned key/value metadata (API tokens, audit entries, tenant
//! registry entries) stored beside the relationships and written atomically with them.
//!
//! A record lives in a [`RecordNamespace`] of a tenant and maps a key (bytes) to a value
//! (bytes). Records are latest-value: they have no MVCC history, are not on the change feed
//! and are not garbage collected. They are written through [`WriteTxn`](crate::WriteTxn)
//! (buffered and committed atomically with the transaction's relationship and schema
//! changes) and read either inside a transaction (seeing its own writes) or through
//! [`Datastore::read_record`](crate::Datastore::read_record) and
//! [`Datastore::scan_records`](crate::Datastore::scan_records) (latest committed values).

use std::fmt;
use std::sync::Arc;

use crate::StoreError;

/// The longest namespace name, in bytes.
const MAX_NAMESPACE_BYTES: usize = 32;

/// The namespace of a record: which kind of metadata it is (`tokens`, `audit`, `meta`...).
///
/// Rule: `^[a-z][a-z0-9_]{0,31}$`. Backends keep records apart from relationship, schema
/// and change-feed keys (a column family or map of their own) and encode a record key as
/// tenant, namespace, `\0`, key bytes; the namespace contains no `\0`, so namespaces never
/// overlap and the keys of one namespace sort bytewise.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordNamespace(Arc<str>);

impl RecordNamespace {
    /// Validates `name` as a namespace.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidRecordNamespace`] if `name` breaks the rule.
    pub fn new(name: &str) -> Result<Self, StoreError> {
        let bytes = name.as_bytes();
        let valid = match bytes.split_first() {
            Some((first, rest)) => {
                bytes.len() <= MAX_NAMESPACE_BYTES
                    && first.is_ascii_lowercase()
                    && rest.iter().all(|&byte| {
                        byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_'
                    })
            }
            None => false,
        };
        if valid {
            Ok(Self(Arc::from(name)))
        } else {
            Err(StoreError::InvalidRecordNamespace(name.to_owned()))
        }
    }

    /// The namespace's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RecordNamespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for RecordNamespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One record: a key and its value, as scans return them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The record's key within its namespace.
    pub key: Vec<u8>,
    /// The record's value.
    pub value: Vec<u8>,
}

/// Returns the smallest key greater than `key`: the start of the next page of a
/// [`scan_records`](crate::Datastore::scan_records) that ended at `key`.
pub fn record_key_successor(key: &[u8]) -> Vec<u8> {
    let mut next = Vec::with_capacity(key.len() + 1);
    next.extend_from_slice(key);
    next.push(0);
    next
}

/// Merges a committed, ordered scan with a transaction's pending writes (key to value, or
/// `None` for a delete) into the transaction's view: keys at or after `start`, ordered, at
/// most `limit`. `committed` must have been read with a limit of at least `limit` plus the
/// number of pending deletes in range, so that no visible key is missing; a helper for
/// backends.
pub fn merge_pending_records<'a>(
    committed: Vec<Record>,
    pending: impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)>,
    start: &[u8],
    limit: usize,
) -> Vec<Record> {
    let mut merged: std::collections::BTreeMap<Vec<u8>, Option<Vec<u8>>> = committed
        .into_iter()
        .map(|record| (record.key, Some(record.value)))
        .collect();
    for (key, value) in pending {
        if key >= start {
            merged.insert(key.to_vec(), value.map(<[u8]>::to_vec));
        }
    }
    merged
        .into_iter()
        .filter_map(|(key, value)| value.map(|value| Record { key, value }))
        .take(limit)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_rule() {
        for (text, valid) in [
            ("tokens", true),
            ("audit", true),
            ("a", true),
            ("audit_head2", true),
            (&"a".repeat(32), true),
            (&"a".repeat(33), false),
            ("", false),
            ("_x", false),
            ("1x", false),
            ("Tokens", false),
            ("to-ken", false),
            ("to\0ken", false),
        ] {
            assert_eq!(RecordNamespace::new(text).is_ok(), valid, "{text:?}");
        }
        let err = RecordNamespace::new("Bad").unwrap_err();
        assert_eq!(err.to_string(), "invalid record namespace `Bad`");
        let namespace = RecordNamespace::new("tokens").unwrap();
        assert_eq!(namespace.as_str(), "tokens");
        assert_eq!(namespace.to_string(), "tokens");
        assert_eq!(format!("{namespace:?}"), "\"tokens\"");
    }

    #[test]
    fn successor_and_merge() {
        assert_eq!(record_key_successor(b"ab"), b"ab\0");
        assert!(record_key_successor(b"ab").as_slice() > b"ab".as_slice());
        assert!(record_key_successor(b"ab").as_slice() < b"ab\x01".as_slice());

        let record = |key: &str, value: &str| Record {
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
        };
        let committed = vec![record("b", "1"), record("c", "2"), record("d", "3")];
        let pending: Vec<(&[u8], Option<&[u8]>)> = vec![
            (b"a", Some(b"0")),
            (b"c", None),
            (b"e", Some(b"4")),
            (b"bb", Some(b"x")),
        ];
        let merged = merge_pending_records(committed, pending.into_iter(), b"b", 3);
        assert_eq!(
            merged,
            [record("b", "1"), record("bb", "x"), record("d", "3")]
        );
    }
}
