//! MVCC scans of the forward and reverse indexes, and `RocksSnapshot`, which serves the
//! `Snapshot` reads with them; and scans of the (unversioned) records.
//!
//! # Hot path
//!
//! Every engine read ends here. A scan is one seek per prefix, then one `next` per stored
//! version; it decodes only the versions it returns and logs nothing.

use std::sync::Arc;

use ostiary_store::{
    Page, Record, RecordNamespace, ResourceQuery, Snapshot, StoreError, StoredSchema, SubjectQuery,
};
use ostiary_types::{
    Relationship, RelationshipFilter, RelationshipKey, Revision, TenantId, Timestamp,
};
use rocksdb::{ColumnFamily, DB, ReadOptions};

use crate::codec::{self, KeyDecoder, VersionValue};
use crate::error::storage;
use crate::{Cf, Shared, SnapshotPin};

/// Which index a scan reads, and so how its keys decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Index {
    Forward,
    Reverse,
}

impl Index {
    fn cf(self) -> Cf {
        match self {
            Self::Forward => Cf::Forward,
            Self::Reverse => Cf::Reverse,
        }
    }

    fn decode(self, decoder: &mut KeyDecoder, key: &[u8]) -> Result<RelationshipKey, StoreError> {
        match self {
            Self::Forward => decoder.forward(key),
            Self::Reverse => decoder.reverse(key),
        }
    }
}

/// What a scan sees: the versions at or before `revision`, unexpired at `now`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View {
    pub(crate) revision: Revision,
    pub(crate) now: Timestamp,
}

/// Visits, in key order, the relationship visible in `view` of every key under `prefix`
/// that sorts after `after` (an unversioned key of the same index). `visit` receives the
/// unversioned key and the relationship and returns whether to go on.
pub(crate) fn scan(
    shared: &Shared,
    index: Index,
    prefix: &[u8],
    after: Option<&[u8]>,
    view: View,
    mut visit: impl FnMut(&[u8], Relationship) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    let cf = shared.cf(index.cf())?;
    let mut read_options = ReadOptions::default();
    if let Some(upper) = codec::prefix_successor(prefix) {
        read_options.set_iterate_upper_bound(upper);
    }
    let mut iter = shared.db.raw_iterator_cf_opt(cf, read_options);
    match after {
        Some(after) if after >= prefix => {
            // `!revision` of revision 0 is all ones and no version has revision 0, so
            // this seeks past every version of `after`.
            let mut start = after.to_vec();
            start.extend_from_slice(&[u8::MAX; codec::REVISION_LEN]);
            iter.seek(&start);
        }
        _ => iter.seek(prefix),
    }
    let mut decoder = KeyDecoder::default();
    let mut decided: Option<Vec<u8>> = None;
    while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
        let (rel_key, version_revision) = codec::split_versioned(key)?;
        let already_decided = decided.as_deref() == Some(rel_key);
        if !already_decided && version_revision <= view.revision {
            // The newest version at or before the view's revision decides the key.
            match &mut decided {
                Some(buffer) => {
                    buffer.clear();
                    buffer.extend_from_slice(rel_key);
                }
                None => decided = Some(rel_key.to_vec()),
            }
            let visible = match codec::peek_expiration(value)? {
                None => false,
                Some(expiration) => expiration.is_none_or(|expiration| expiration > view.now),
            };
            if visible {
                let VersionValue::Live { caveat, expiration } = codec::decode_version(value)?
                else {
                    return Err(crate::error::corrupt("tombstone read as live"));
                };
                let rel =
                    codec::relationship(index.decode(&mut decoder, rel_key)?, caveat, expiration);
                if !visit(rel_key, rel)? {
                    return Ok(());
                }
            }
        }
        iter.next();
    }
    iter.status().map_err(storage)
}

/// What a read covers: key prefixes (sorted, non-overlapping), a resume point (an
/// unversioned key of the same index) and a limit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Range<'a> {
    pub(crate) prefixes: &'a [Vec<u8>],
    pub(crate) after: Option<&'a [u8]>,
    pub(crate) limit: Option<usize>,
}

/// Scans `range`'s prefixes in order, appending to `out` the relationships `keep`
/// accepts, after `range.after` and up to `range.limit`. Returns how many it appended.
pub(crate) fn scan_into(
    shared: &Shared,
    index: Index,
    range: Range<'_>,
    view: View,
    mut keep: impl FnMut(&Relationship) -> bool,
    out: &mut Vec<Relationship>,
) -> Result<usize, StoreError> {
    let Range {
        prefixes,
        after,
        limit,
    } = range;
    let limit = limit.unwrap_or(usize::MAX);
    let mut n_appended = 0;
    for prefix in prefixes {
        if n_appended >= limit {
            break;
        }
        scan(shared, index, prefix, after, view, |_, rel| {
            if keep(&rel) {
                out.push(rel);
                n_appended += 1;
            }
            Ok(n_appended < limit)
        })?;
    }
    Ok(n_appended)
}

/// The forward-index prefixes a resource query reads: one per requested id (sorted and
/// deduplicated), narrowed to the relation when one is given.
pub(crate) fn resource_prefixes(tenant: &TenantId, query: &ResourceQuery<'_>) -> Vec<Vec<u8>> {
    let base = {
        let mut base = codec::tenant_prefix(tenant);
        codec::push(&mut base, query.resource_type.as_str());
        base
    };
    if query.resource_ids.is_empty() {
        return vec![base];
    }
    let mut prefixes: Vec<Vec<u8>> = query
        .resource_ids
        .iter()
        .map(|id| {
            let mut prefix = base.clone();
            codec::push(&mut prefix, id.as_str());
            if let Some(relation) = query.relation {
                codec::push(&mut prefix, relation.as_str());
            }
            prefix
        })
        .collect();
    prefixes.sort();
    prefixes.dedup();
    prefixes
}

/// The reverse-index prefixes a subject query reads.
pub(crate) fn subject_prefixes(tenant: &TenantId, query: &SubjectQuery<'_>) -> Vec<Vec<u8>> {
    let base = {
        let mut base = codec::tenant_prefix(tenant);
        codec::push(&mut base, query.subject_type.as_str());
        base
    };
    if query.subject_ids.is_empty() {
        return vec![base];
    }
    let mut prefixes: Vec<Vec<u8>> = query
        .subject_ids
        .iter()
        .map(|id| {
            let mut prefix = base.clone();
            codec::push(&mut prefix, id.as_str());
            if let Some(relation_filter) = query.subject_relation {
                codec::push(
                    &mut prefix,
                    codec::relation_text(relation_filter.relation.as_ref()),
                );
            }
            prefix
        })
        .collect();
    prefixes.sort();
    prefixes.dedup();
    prefixes
}

/// The forward-index prefix a relationship filter reads.
pub(crate) fn filter_prefix(tenant: &TenantId, filter: &RelationshipFilter) -> Vec<u8> {
    let mut prefix = codec::tenant_prefix(tenant);
    if let Some(resource_type) = &filter.resource_type {
        codec::push(&mut prefix, resource_type.as_str());
        if let Some(id) = &filter.optional_resource_id {
            codec::push(&mut prefix, id.as_str());
            if let Some(relation) = &filter.optional_relation {
                codec::push(&mut prefix, relation.as_str());
            }
        } else if let Some(id_prefix) = &filter.optional_resource_id_prefix {
            prefix.extend_from_slice(id_prefix.as_bytes());
        }
    }
    prefix
}

/// Reads the schema of `tenant` in force at `revision`.
pub(crate) fn schema_at(
    shared: &Shared,
    tenant: &TenantId,
    revision: Revision,
) -> Result<Option<StoredSchema>, StoreError> {
    let cf = shared.cf(Cf::Schema)?;
    let prefix = codec::tenant_prefix(tenant);
    let mut iter = shared.db.raw_iterator_cf(cf);
    iter.seek(codec::schema_key(tenant, revision));
    if let (Some(key), Some(value)) = (iter.key(), iter.value())
        && let Some(rest) = key.strip_prefix(prefix.as_slice())
    {
        let (_, schema_revision) =
            codec::split_versioned(rest).map_err(|_| crate::error::corrupt("schema key"))?;
        let text = std::str::from_utf8(value)
            .map_err(|_| crate::error::corrupt("schema text is not UTF-8"))?;
        return Ok(Some(StoredSchema {
            text: Arc::from(text),
            revision: schema_revision,
        }));
    }
    iter.status().map_err(storage)?;
    Ok(None)
}

/// Returns the newest stored version of an unversioned key (whatever its revision and
/// expiration): `None` if there is none or it is a tombstone.
pub(crate) fn current_version(
    db: &DB,
    cf: &ColumnFamily,
    key: &[u8],
    rel_key: &RelationshipKey,
) -> Result<Option<Relationship>, StoreError> {
    let mut iter = db.raw_iterator_cf(cf);
    iter.seek(key);
    if let (Some(found), Some(value)) = (iter.key(), iter.value())
        && found.len() == key.len() + codec::REVISION_LEN
        && found.starts_with(key)
    {
        return Ok(match codec::decode_version(value)? {
            VersionValue::Tombstone => None,
            VersionValue::Live { caveat, expiration } => {
                Some(codec::relationship(rel_key.clone(), caveat, expiration))
            }
        });
    }
    iter.status().map_err(storage)?;
    Ok(None)
}

/// A snapshot of one tenant at one revision. Its pin keeps garbage collection from
/// removing what it can see for as long as it lives.
#[derive(Debug)]
pub(crate) struct RocksSnapshot {
    pub(crate) shared: Arc<Shared>,
    pub(crate) tenant: TenantId,
    pub(crate) view: View,
    pub(crate) _pin: SnapshotPin,
}

impl Snapshot for RocksSnapshot {
    fn revision(&self) -> Revision {
        self.view.revision
    }

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    fn now(&self) -> Timestamp {
        self.view.now
    }

    fn read_schema(&self) -> Result<Option<StoredSchema>, StoreError> {
        schema_at(&self.shared, &self.tenant, self.view.revision)
    }

    fn read_resources(
        &self,
        query: &ResourceQuery<'_>,
        page: Page<'_>,
        out: &mut Vec<Relationship>,
    ) -> Result<usize, StoreError> {
        let prefixes = resource_prefixes(&self.tenant, query);
        let after = page.after.map(|key| codec::forward_key(&self.tenant, key));
        scan_into(
            &self.shared,
            Index::Forward,
            Range {
                prefixes: &prefixes,
                after: after.as_deref(),
                limit: page.limit,
            },
            self.view,
            |rel| query.matches(rel),
            out,
        )
    }

    fn read_subjects(
        &self,
        query: &SubjectQuery<'_>,
        page: Page<'_>,
        out: &mut Vec<Relationship>,
    ) -> Result<usize, StoreError> {
        let prefixes = subject_prefixes(&self.tenant, query);
        let after = page.after.map(|key| codec::reverse_key(&self.tenant, key));
        scan_into(
            &self.shared,
            Index::Reverse,
            Range {
                prefixes: &prefixes,
                after: after.as_deref(),
                limit: page.limit,
            },
            self.view,
            |rel| query.matches(rel),
            out,
        )
    }

    fn read_filtered(
        &self,
        filter: &RelationshipFilter,
        page: Page<'_>,
        out: &mut Vec<Relationship>,
    ) -> Result<usize, StoreError> {
        let prefix = filter_prefix(&self.tenant, filter);
        let after = page.after.map(|key| codec::forward_key(&self.tenant, key));
        scan_into(
            &self.shared,
            Index::Forward,
            Range {
                prefixes: &[prefix],
                after: after.as_deref(),
                limit: page.limit,
            },
            self.view,
            |rel| filter.matches(rel),
            out,
        )
    }
}

/// Reads the stored records of `namespace` in `tenant` from `start` on, at most `limit`,
/// from the latest written state.
pub(crate) fn scan_records(
    shared: &Shared,
    tenant: &TenantId,
    namespace: &RecordNamespace,
    start: &[u8],
    limit: usize,
) -> Result<Vec<Record>, StoreError> {
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    let prefix = codec::record_prefix(tenant, namespace);
    let mut read_options = rocksdb::ReadOptions::default();
    if let Some(end) = codec::prefix_successor(&prefix) {
        read_options.set_iterate_upper_bound(end);
    }
    let mut iter = shared
        .db
        .raw_iterator_cf_opt(shared.cf(Cf::Records)?, read_options);
    iter.seek(codec::record_key(tenant, namespace, start));
    while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
        let Some(key) = key.strip_prefix(prefix.as_slice()) else {
            break;
        };
        out.push(Record {
            key: key.to_vec(),
            value: value.to_vec(),
        });
        if out.len() >= limit {
            break;
        }
        iter.next();
    }
    iter.status().map_err(storage)?;
    Ok(out)
}
