//! A bounded cache of Check answers shared by every request of one server, keyed by (tenant,
//! revision, resource, permission, subject) as Zanzibar's and SpiceDB's dispatch caches are.
//!
//! An answer at a revision never changes, so entries need no invalidation, only eviction:
//! the cache holds at most a configured number of bytes (an estimate per entry: key, ids,
//! answer and bookkeeping) and evicts by quick_cache's CLOCK-Pro policy. Two kinds of answers
//! are not cached: those that depend on the request's caveat context (a non-empty context), and
//! any answer under a schema that lets relationships expire, since an expiring relationship
//! changes the answer at the same revision as time passes.

use std::sync::atomic::{AtomicU64, Ordering};

use ostiary_schema::ir::{DefinitionId, RelationId};
use ostiary_types::{ObjectId, Revision, TenantId};
use quick_cache::Weighter;
use quick_cache::sync::Cache;

use crate::Permissionship;

/// What a cached answer is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    pub(crate) tenant: TenantId,
    pub(crate) revision: Revision,
    pub(crate) resource: (DefinitionId, RelationId, ObjectId),
    pub(crate) subject: (DefinitionId, Option<RelationId>, ObjectId),
}

/// Bookkeeping bytes per entry beyond the key and value themselves (hash table slot, eviction
/// metadata), an estimate.
const ENTRY_OVERHEAD: u64 = 48;

/// The estimated size of an entry in bytes.
#[derive(Debug, Clone, Copy)]
struct EntryWeighter;

impl Weighter<CacheKey, Permissionship> for EntryWeighter {
    fn weight(&self, key: &CacheKey, value: &Permissionship) -> u64 {
        let value_heap = match value {
            Permissionship::Conditional { missing_params } => missing_params
                .iter()
                .map(|name| std::mem::size_of::<String>() + name.len())
                .sum(),
            Permissionship::Has | Permissionship::No => 0,
        };
        let size = std::mem::size_of::<CacheKey>()
            + std::mem::size_of::<Permissionship>()
            + key.tenant.as_str().len()
            + key.resource.2.as_str().len()
            + key.subject.2.as_str().len()
            + value_heap;
        size as u64 + ENTRY_OVERHEAD
    }
}

/// Counters and sizes of the cache, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that had to evaluate.
    pub misses: u64,
    /// Entries held.
    pub entries: u64,
    /// Estimated bytes held.
    pub bytes: u64,
    /// The byte limit.
    pub capacity_bytes: u64,
}

/// The cache itself; see the module documentation.
pub(crate) struct CheckCache {
    entries: Cache<CacheKey, Permissionship, EntryWeighter>,
    capacity_bytes: u64,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for CheckCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckCache")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl CheckCache {
    /// A cache of at most `capacity_bytes` (estimated).
    pub(crate) fn new(capacity_bytes: u64) -> Self {
        // quick_cache sizes its table from an item estimate; entries are ~150 bytes.
        let estimated_items = usize::try_from(capacity_bytes / 150)
            .unwrap_or(usize::MAX)
            .max(16);
        Self {
            entries: Cache::with_weighter(estimated_items, capacity_bytes, EntryWeighter),
            capacity_bytes,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The cached answer for `key`, counting the hit or miss.
    pub(crate) fn get(&self, key: &CacheKey) -> Option<Permissionship> {
        let found = self.entries.get(key);
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Remembers an answer.
    pub(crate) fn insert(&self, key: CacheKey, value: Permissionship) {
        self.entries.insert(key, value);
    }

    /// Current counters and sizes.
    pub(crate) fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            entries: self.entries.len() as u64,
            bytes: self.entries.weight(),
            capacity_bytes: self.capacity_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(revision: u64, resource: &str) -> CacheKey {
        CacheKey {
            tenant: TenantId::default_tenant(),
            revision: Revision::new(revision),
            resource: (
                DefinitionId(0),
                RelationId(0),
                ObjectId::new(resource).unwrap(),
            ),
            subject: (DefinitionId(1), None, ObjectId::new("alice").unwrap()),
        }
    }

    #[test]
    fn answers_are_kept_per_revision_and_counted() {
        let cache = CheckCache::new(1 << 20);
        assert_eq!(cache.get(&key(1, "doc")), None);
        cache.insert(key(1, "doc"), Permissionship::Has);
        assert_eq!(cache.get(&key(1, "doc")), Some(Permissionship::Has));
        assert_eq!(cache.get(&key(2, "doc")), None);
        let stats = cache.stats();
        assert_eq!((stats.hits, stats.misses, stats.entries), (1, 2, 1));
        assert!(stats.bytes > 0 && stats.bytes <= stats.capacity_bytes);
    }

    #[test]
    fn memory_stays_within_the_limit() {
        let capacity = 64 * 1024;
        let cache = CheckCache::new(capacity);
        for idx in 0..10_000 {
            cache.insert(key(1, &format!("doc{idx}")), Permissionship::No);
        }
        let stats = cache.stats();
        assert!(stats.bytes <= capacity, "{stats:?}");
        assert!(
            stats.entries > 100,
            "the cache keeps recent entries: {stats:?}"
        );
        assert!(stats.entries < 10_000, "the cache evicts: {stats:?}");
    }
}
