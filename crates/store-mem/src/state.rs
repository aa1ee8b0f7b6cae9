//! The in-memory state: per-tenant forward and reverse indexes of relationship versions,
//! schema versions and change feed, and the reads and garbage collection over them.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;

use ostiary_store::{
    GcStats, Page, Record, RecordNamespace, ResourceQuery, RevisionChanges, StoredSchema,
    SubjectQuery, is_expired,
};
use ostiary_types::{Relationship, RelationshipFilter, Revision, TenantId, Timestamp};

use crate::encoding::{self, Encoded};

/// Everything the datastore holds.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// The newest committed revision.
    pub(crate) head: Revision,
    /// The commit time of every revision from the horizon on, in revision order; the times
    /// never decrease.
    pub(crate) commits: Vec<(Revision, Timestamp)>,
    pub(crate) tenants: HashMap<TenantId, TenantState>,
}

impl State {
    /// Returns the newest revision committed at or before `time`, or [`Revision::ZERO`] if
    /// there is none (or it was collected: callers never go below the horizon anyway).
    pub(crate) fn revision_at(&self, time: Timestamp) -> Revision {
        let n_before = self
            .commits
            .partition_point(|(_, committed_at)| *committed_at <= time);
        match n_before.checked_sub(1) {
            Some(commit_idx) => self.commits[commit_idx].0,
            None => Revision::ZERO,
        }
    }

    /// Returns the last commit time, if any revision was committed.
    pub(crate) fn last_commit_time(&self) -> Option<Timestamp> {
        self.commits.last().map(|(_, committed_at)| *committed_at)
    }

    /// Removes what no readable revision can see; see
    /// [`Datastore::collect_garbage`](ostiary_store::Datastore::collect_garbage).
    pub(crate) fn collect_garbage(
        &mut self,
        horizon: Revision,
        expired_before: Timestamp,
    ) -> GcStats {
        let mut stats = GcStats {
            horizon,
            ..GcStats::default()
        };
        self.commits.retain(|(revision, _)| *revision >= horizon);
        for tenant_state in self.tenants.values_mut() {
            tenant_state.collect_garbage(horizon, expired_before, &mut stats);
        }
        stats
    }
}

/// The point of view of a read: a revision and the instant expiration is judged at.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View {
    pub(crate) revision: Revision,
    pub(crate) now: Timestamp,
}

/// One version of a relationship: its value between two revisions.
#[derive(Debug, Clone)]
pub(crate) struct Version {
    /// The revision that wrote it.
    pub(crate) created: Revision,
    /// The revision that deleted or replaced it, if any.
    pub(crate) deleted: Option<Revision>,
    pub(crate) rel: Relationship,
}

impl Version {
    fn visible_at(&self, revision: Revision) -> bool {
        self.created <= revision && self.deleted.is_none_or(|deleted| deleted > revision)
    }
}

/// One tenant's data.
#[derive(Debug, Default)]
pub(crate) struct TenantState {
    /// Encoded key (resource order) to the key's versions, oldest first.
    // INVARIANT: at most one version of a key is visible at any revision, and at most one
    // (the newest) has `deleted == None`.
    pub(crate) forward: BTreeMap<Encoded, Vec<Version>>,
    /// Encoded key (subject order) to the encoded forward key; one entry per forward entry.
    pub(crate) reverse: BTreeMap<Encoded, Encoded>,
    /// Schema versions in revision order.
    pub(crate) schemas: Vec<StoredSchema>,
    /// The change feed in revision order.
    pub(crate) changes: Vec<RevisionChanges>,
    /// Committed records: [encoded](encoding::record_key) namespace and key to value.
    pub(crate) records: BTreeMap<Encoded, Vec<u8>>,
}

impl TenantState {
    /// Returns the live (visible and unexpired) value of `forward_key` in `view`.
    pub(crate) fn live(&self, forward_key: &[u8], view: View) -> Option<&Relationship> {
        self.forward
            .get(forward_key)
            .and_then(|versions| live_version(versions, view))
    }

    /// Returns the committed records of `namespace` from `start` on, at most `limit`.
    pub(crate) fn scan_records(
        &self,
        namespace: &RecordNamespace,
        start: &[u8],
        limit: usize,
    ) -> Vec<Record> {
        let prefix = encoding::record_prefix(namespace);
        let lower = encoding::record_key(namespace, start);
        self.records
            .range::<[u8], _>((Bound::Included(lower.as_slice()), Bound::Unbounded))
            .map_while(|(key, value)| {
                key.strip_prefix(prefix.as_slice()).map(|key| Record {
                    key: key.to_vec(),
                    value: value.clone(),
                })
            })
            .take(limit)
            .collect()
    }

    /// Returns the schema in force at `revision`.
    pub(crate) fn schema_at(&self, revision: Revision) -> Option<StoredSchema> {
        self.schemas
            .iter()
            .rev()
            .find(|schema| schema.revision <= revision)
            .cloned()
    }

    /// Appends, in resource order, the live relationships under each prefix that `keep`
    /// accepts, after `page.after` and up to `page.limit`. The prefixes must be sorted and
    /// must not overlap.
    fn scan_forward(
        &self,
        view: View,
        prefixes: &[Encoded],
        page: Page<'_>,
        keep: impl Fn(&Relationship) -> bool,
        out: &mut Vec<Relationship>,
    ) -> usize {
        let limit = page.limit.unwrap_or(usize::MAX);
        let after = page.after.map(encoding::forward);
        let mut n_appended = 0;
        for prefix in prefixes {
            if n_appended >= limit {
                break;
            }
            for (_, versions) in range_with_prefix(&self.forward, prefix, after.as_deref()) {
                if n_appended >= limit {
                    break;
                }
                if let Some(rel) = live_version(versions, view)
                    && keep(rel)
                {
                    out.push(rel.clone());
                    n_appended += 1;
                }
            }
        }
        n_appended
    }

    /// Appends the relationships `query` selects; see
    /// [`Snapshot::read_resources`](ostiary_store::Snapshot::read_resources).
    pub(crate) fn read_resources(
        &self,
        view: View,
        query: &ResourceQuery<'_>,
        page: Page<'_>,
        out: &mut Vec<Relationship>,
    ) -> usize {
        let mut prefixes: Vec<Encoded> = if query.resource_ids.is_empty() {
            vec![encoding::object_prefix(query.resource_type, None)]
        } else {
            // Narrow each id's prefix as far as the query fixes the key's next components
            // (relation, subject type, subject id, subject relation), so a check of one
            // subject in a large userset is a point read, not a scan of the userset.
            let suffix = encoding::query_suffix(query.relation, query.subject);
            query
                .resource_ids
                .iter()
                .map(|id| {
                    let mut prefix = encoding::object_prefix(query.resource_type, Some(id));
                    prefix.extend_from_slice(&suffix);
                    prefix
                })
                .collect()
        };
        prefixes.sort();
        prefixes.dedup();
        self.scan_forward(view, &prefixes, page, |rel| query.matches(rel), out)
    }

    /// Appends the relationships `filter` selects; see
    /// [`Snapshot::read_filtered`](ostiary_store::Snapshot::read_filtered).
    pub(crate) fn read_filtered(
        &self,
        view: View,
        filter: &RelationshipFilter,
        page: Page<'_>,
        out: &mut Vec<Relationship>,
    ) -> usize {
        let prefix = match &filter.resource_type {
            None => Encoded::new(),
            Some(resource_type) => {
                let mut prefix =
                    encoding::object_prefix(resource_type, filter.optional_resource_id.as_ref());
                if filter.optional_resource_id.is_none()
                    && let Some(id_prefix) = &filter.optional_resource_id_prefix
                {
                    prefix.extend_from_slice(id_prefix.as_bytes());
                }
                prefix
            }
        };
        self.scan_forward(view, &[prefix], page, |rel| filter.matches(rel), out)
    }

    /// Appends the relationships `query` selects through the reverse index; see
    /// [`Snapshot::read_subjects`](ostiary_store::Snapshot::read_subjects).
    pub(crate) fn read_subjects(
        &self,
        view: View,
        query: &SubjectQuery<'_>,
        page: Page<'_>,
        out: &mut Vec<Relationship>,
    ) -> usize {
        let limit = page.limit.unwrap_or(usize::MAX);
        let after = page.after.map(encoding::reverse);
        let mut prefixes: Vec<Encoded> = if query.subject_ids.is_empty() {
            vec![encoding::object_prefix(query.subject_type, None)]
        } else {
            query
                .subject_ids
                .iter()
                .map(|id| encoding::object_prefix(query.subject_type, Some(id)))
                .collect()
        };
        prefixes.sort();
        prefixes.dedup();
        let mut n_appended = 0;
        for prefix in &prefixes {
            if n_appended >= limit {
                break;
            }
            for (_, forward_key) in range_with_prefix(&self.reverse, prefix, after.as_deref()) {
                if n_appended >= limit {
                    break;
                }
                if let Some(rel) = self.live(forward_key, view)
                    && query.matches(rel)
                {
                    out.push(rel.clone());
                    n_appended += 1;
                }
            }
        }
        n_appended
    }

    /// Makes `rel` the value of its key from `revision` on (ending the current version).
    pub(crate) fn put(&mut self, forward_key: &[u8], rel: &Relationship, revision: Revision) {
        self.end_current(forward_key, revision);
        match self.forward.get_mut(forward_key) {
            Some(versions) => versions.push(Version {
                created: revision,
                deleted: None,
                rel: rel.clone(),
            }),
            None => {
                self.forward.insert(
                    forward_key.to_vec(),
                    vec![Version {
                        created: revision,
                        deleted: None,
                        rel: rel.clone(),
                    }],
                );
                self.reverse
                    .insert(encoding::reverse(rel.key()), forward_key.to_vec());
            }
        }
    }

    /// Ends the current version of `forward_key` (expired or not) at `revision`, if any.
    pub(crate) fn end_current(&mut self, forward_key: &[u8], revision: Revision) {
        if let Some(versions) = self.forward.get_mut(forward_key)
            && let Some(current) = versions
                .iter_mut()
                .find(|version| version.deleted.is_none())
        {
            current.deleted = Some(revision);
        }
    }

    /// Undoes everything `revision` (an uncommitted transaction) did to `forward_key`.
    pub(crate) fn undo(&mut self, forward_key: &[u8], revision: Revision) {
        let Some(versions) = self.forward.get_mut(forward_key) else {
            return;
        };
        versions.retain(|version| version.created != revision);
        for version in versions.iter_mut() {
            if version.deleted == Some(revision) {
                version.deleted = None;
            }
        }
        if versions.is_empty() {
            self.remove_key(forward_key);
        }
    }

    /// Removes a key from both indexes.
    fn remove_key(&mut self, forward_key: &[u8]) {
        if let Some(versions) = self.forward.remove(forward_key)
            && let Some(version) = versions.first()
        {
            self.reverse.remove(&encoding::reverse(version.rel.key()));
        }
    }

    fn collect_garbage(
        &mut self,
        horizon: Revision,
        expired_before: Timestamp,
        stats: &mut GcStats,
    ) {
        let mut emptied: Vec<Encoded> = Vec::new();
        for (forward_key, versions) in &mut self.forward {
            let n_before = versions.len();
            versions.retain(|version| {
                let superseded = version.deleted.is_some_and(|deleted| deleted <= horizon);
                !superseded && !is_expired(&version.rel, expired_before)
            });
            stats.n_relationship_versions += n_before - versions.len();
            if versions.is_empty() {
                emptied.push(forward_key.clone());
            }
        }
        for forward_key in emptied {
            self.forward.remove(&forward_key);
        }
        let forward = &self.forward;
        self.reverse
            .retain(|_, forward_key| forward.contains_key(forward_key));

        let n_changes = self.changes.len();
        self.changes.retain(|group| group.revision > horizon);
        stats.n_change_revisions += n_changes - self.changes.len();

        // Keep the schema in force at the horizon and every later one.
        let n_old_schemas = self
            .schemas
            .iter()
            .filter(|schema| schema.revision <= horizon)
            .count();
        let n_removed = n_old_schemas.saturating_sub(1);
        self.schemas.drain(..n_removed);
        stats.n_schema_versions += n_removed;
    }
}

/// Returns the version of a key visible and unexpired in `view`.
fn live_version(versions: &[Version], view: View) -> Option<&Relationship> {
    versions
        .iter()
        .find(|version| version.visible_at(view.revision))
        .map(|version| &version.rel)
        .filter(|rel| !is_expired(rel, view.now))
}

/// Iterates the entries of `map` whose keys start with `prefix` and sort after `after`.
fn range_with_prefix<'a, V>(
    map: &'a BTreeMap<Encoded, V>,
    prefix: &'a [u8],
    after: Option<&'a [u8]>,
) -> impl Iterator<Item = (&'a Encoded, &'a V)> + 'a {
    let lower = match after {
        Some(after) if after >= prefix => Bound::Excluded(after),
        _ => Bound::Included(prefix),
    };
    map.range::<[u8], _>((lower, Bound::Unbounded))
        .take_while(move |(key, _)| key.starts_with(prefix))
}
