//! The audit log: per-tenant, append-only, hash-chained entries written in the same
//! transaction as the change they record; reading with filters, JSON-lines export and
//! chain verification.
//!
//! # Chain
//!
//! Entries are numbered from 1 in each tenant. Each holds the hash of the previous entry
//! (64 zeros for the first) and its own hash: SHA-256 over a canonical, length-prefixed
//! encoding of every other field (the tenant, sequence, time, revision, actor, action,
//! request id, client address, on-behalf-of, the details' JSON text and the previous
//! hash). A head record holds the last sequence and hash, so [`append`] is one read and
//! two writes and a truncated tail shows.
//!
//! [`verify`] detects any change made without recomputing the chain from the changed entry
//! on. Someone able to write the datastore can recompute it; anchor the head hash
//! elsewhere (the SIEM that receives the export) to detect that too.

use std::io::Write;

use ostiary_store::{Datastore, DatastoreExt, RelationshipUpdate, WriteTxn, record_key_successor};
use ostiary_types::{Revision, TenantId, Timestamp};
use sha2::{Digest, Sha256};

use crate::{TenancyError, decode, encode, namespace};

/// Entries, keyed by sequence (8 bytes big-endian).
const AUDIT: &str = "audit";
/// The chain head, under the key [`HEAD_KEY`].
const AUDIT_HEAD: &str = "audit_head";
const HEAD_KEY: &[u8] = b"head";
/// The previous hash of the first entry.
const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// How many entries a scan reads at once.
const PAGE: usize = 256;

/// How many relationships [`relationship_details`] lists before it records only their
/// count and digest.
pub const DEFAULT_MAX_INLINE_RELATIONSHIPS: usize = 100;

/// How an audit entry names the revision of its transaction.
///
/// Revisions are one sequence across all tenants, so a raw revision in a tenant's log would
/// let the tenant count other tenants' commits between two of its own. The server seals
/// them as the tenant's consistency token (the ZedToken the write returned), which the
/// tenant can match against its own writes but not order or count; [`PlainRevisions`] writes
/// the number (tests, and logs only root reads).
pub trait RevisionSeal: Send + Sync + std::fmt::Debug {
    /// The text that stands for `revision` in `tenant`'s log.
    fn seal(&self, tenant: &TenantId, revision: Revision) -> String;
}

/// Writes revisions as decimal numbers.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainRevisions;

impl RevisionSeal for PlainRevisions {
    fn seal(&self, _tenant: &TenantId, revision: Revision) -> String {
        revision.to_string()
    }
}

/// What to record; [`append`] adds the sequence, time, revision and hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEntry {
    /// What happened, e.g. `relationships.write`, `schema.write`, `token.create`,
    /// `tenant.suspend`, `auth.failure`.
    pub action: String,
    /// The acting token's id (`None` for the server itself).
    pub actor: Option<String>,
    /// The request id.
    pub request_id: Option<String>,
    /// The client's address.
    pub client_address: Option<String>,
    /// Who the actor acted for (impersonation or support access).
    pub on_behalf_of: Option<String>,
    /// Action-specific details (see [`relationship_details`]).
    pub details: serde_json::Value,
}

/// A stored audit entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditEntry {
    /// Its position in the tenant's log, from 1.
    pub sequence: u64,
    /// When it was written (the transaction's time).
    pub time: Timestamp,
    /// The revision of the transaction that wrote it (and the change it records), as its
    /// [`RevisionSeal`] wrote it: for the server, the consistency token of that commit.
    pub revision: String,
    /// The tenant whose log holds it.
    pub tenant: String,
    /// The acting token's id.
    pub actor: Option<String>,
    /// What happened.
    pub action: String,
    /// The request id.
    pub request_id: Option<String>,
    /// The client's address.
    pub client_address: Option<String>,
    /// Who the actor acted for.
    pub on_behalf_of: Option<String>,
    /// The details as JSON text (kept as text so that the hash covers exact bytes).
    pub details: String,
    /// The previous entry's hash (lowercase hex).
    pub prev_hash: String,
    /// This entry's hash (lowercase hex).
    pub hash: String,
}

impl AuditEntry {
    /// Computes the hash of the entry's fields (all but `hash`).
    pub fn compute_hash(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"ostiary-audit-v1");
        let mut field = |bytes: &[u8]| {
            hasher.update((bytes.len() as u64).to_be_bytes());
            hasher.update(bytes);
        };
        let optional = |value: &Option<String>| -> Vec<u8> {
            match value {
                None => vec![0],
                Some(text) => {
                    let mut bytes = vec![1];
                    bytes.extend_from_slice(text.as_bytes());
                    bytes
                }
            }
        };
        field(self.tenant.as_bytes());
        field(&self.sequence.to_be_bytes());
        field(self.time.to_string().as_bytes());
        field(self.revision.as_bytes());
        field(&optional(&self.actor));
        field(self.action.as_bytes());
        field(&optional(&self.request_id));
        field(&optional(&self.client_address));
        field(&optional(&self.on_behalf_of));
        field(self.details.as_bytes());
        field(self.prev_hash.as_bytes());
        data_encoding::HEXLOWER.encode(&hasher.finalize())
    }

    /// The entry as one JSON object with the details as JSON (not text): an export line.
    pub fn to_json(&self) -> serde_json::Value {
        let details = serde_json::from_str(&self.details)
            .unwrap_or_else(|_| serde_json::Value::String(self.details.clone()));
        serde_json::json!({
            "sequence": self.sequence,
            "time": self.time,
            "revision": self.revision,
            "tenant": self.tenant,
            "actor": self.actor,
            "action": self.action,
            "request_id": self.request_id,
            "client_address": self.client_address,
            "on_behalf_of": self.on_behalf_of,
            "details": details,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        })
    }
}

/// The chain head record.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Head {
    sequence: u64,
    hash: String,
}

fn entry_key(sequence: u64) -> [u8; 8] {
    sequence.to_be_bytes()
}

/// Appends an entry to the log of the transaction's tenant, in that transaction: it
/// commits (with the transaction's revision and time) exactly when the change it records
/// does. Returns the entry as stored.
///
/// # Errors
///
/// A store error, or [`TenancyError::Internal`] if the head record is corrupt.
pub fn append(
    txn: &mut dyn WriteTxn,
    entry: &NewAuditEntry,
    seal: &dyn RevisionSeal,
) -> Result<AuditEntry, TenancyError> {
    let head_namespace = namespace(AUDIT_HEAD)?;
    let head: Option<Head> = txn
        .read_record(&head_namespace, HEAD_KEY)?
        .map(|bytes| decode("audit head", &bytes))
        .transpose()?;
    let (sequence, prev_hash) = match head {
        Some(head) => (head.sequence + 1, head.hash),
        None => (1, GENESIS_HASH.to_owned()),
    };
    let mut stored = AuditEntry {
        sequence,
        time: txn.now(),
        revision: seal.seal(txn.tenant(), txn.revision()),
        tenant: txn.tenant().as_str().to_owned(),
        actor: entry.actor.clone(),
        action: entry.action.clone(),
        request_id: entry.request_id.clone(),
        client_address: entry.client_address.clone(),
        on_behalf_of: entry.on_behalf_of.clone(),
        details: entry.details.to_string(),
        prev_hash,
        hash: String::new(),
    };
    stored.hash = stored.compute_hash();
    txn.put_record(
        &namespace(AUDIT)?,
        &entry_key(sequence),
        &encode("audit entry", &stored)?,
    )?;
    let head = Head {
        sequence,
        hash: stored.hash.clone(),
    };
    txn.put_record(&head_namespace, HEAD_KEY, &encode("audit head", &head)?)?;
    Ok(stored)
}

/// Appends an entry in a transaction of its own (for events that change nothing else,
/// such as an authentication failure, recorded in the system tenant's log).
///
/// # Errors
///
/// As [`append`].
pub fn append_alone(
    store: &dyn Datastore,
    tenant: &TenantId,
    entry: &NewAuditEntry,
    seal: &dyn RevisionSeal,
) -> Result<AuditEntry, TenancyError> {
    Ok(store
        .read_write_with(tenant, |txn| append(txn, entry, seal))?
        .value)
}

/// The details of a relationship write or delete: the updates as text (`TOUCH
/// doc:1#viewer@user:alice`) or, above `max_inline` of them, their count and the SHA-256
/// of those lines joined by newlines (so a SIEM holding the request can check it).
pub fn relationship_details(
    updates: &[RelationshipUpdate],
    max_inline: usize,
) -> serde_json::Value {
    let lines: Vec<String> = updates
        .iter()
        .map(|update| match update {
            RelationshipUpdate::Create(rel) => format!("CREATE {rel}"),
            RelationshipUpdate::Touch(rel) => format!("TOUCH {rel}"),
            RelationshipUpdate::Delete(key) => format!("DELETE {key}"),
        })
        .collect();
    if lines.len() <= max_inline {
        serde_json::json!({ "relationships": lines })
    } else {
        let digest = Sha256::digest(lines.join("\n").as_bytes());
        serde_json::json!({
            "count": lines.len(),
            "sha256": data_encoding::HEXLOWER.encode(&digest),
        })
    }
}

/// Which entries to read; unset fields match everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Entries at or after this time.
    pub from: Option<Timestamp>,
    /// Entries before this time.
    pub until: Option<Timestamp>,
    /// Entries of this actor (token id).
    pub actor: Option<String>,
    /// Entries of this action.
    pub action: Option<String>,
}

impl AuditFilter {
    /// Reports whether `entry` matches.
    pub fn matches(&self, entry: &AuditEntry) -> bool {
        self.from.is_none_or(|from| entry.time >= from)
            && self.until.is_none_or(|until| entry.time < until)
            && self
                .actor
                .as_ref()
                .is_none_or(|actor| entry.actor.as_ref() == Some(actor))
            && self
                .action
                .as_ref()
                .is_none_or(|action| &entry.action == action)
    }
}

/// Reads the entries of `tenant`'s log after sequence `after` that match `filter`, in
/// sequence order, at most `limit` of them. Page on with the last sequence returned.
///
/// # Errors
///
/// A store error, or [`TenancyError::Internal`] for an entry that does not decode (run
/// [`verify`] to locate it).
pub fn read(
    store: &dyn Datastore,
    tenant: &TenantId,
    filter: &AuditFilter,
    after: u64,
    limit: usize,
) -> Result<Vec<AuditEntry>, TenancyError> {
    let mut out = Vec::new();
    let Some(first) = after.checked_add(1) else {
        return Ok(out);
    };
    let audit = namespace(AUDIT)?;
    let mut start = entry_key(first).to_vec();
    while out.len() < limit {
        let page = store.scan_records(tenant, &audit, &start, PAGE)?;
        let Some(last) = page.last() else {
            break;
        };
        start = record_key_successor(&last.key);
        for record in &page {
            let entry: AuditEntry = decode("audit entry", &record.value)?;
            if filter.matches(&entry) && out.len() < limit {
                out.push(entry);
            }
        }
    }
    Ok(out)
}

/// Writes the entries of `tenant`'s log that match `filter` to `out` as JSON lines (one
/// [`AuditEntry::to_json`] object per line) and returns how many it wrote.
///
/// # Errors
///
/// As [`read`], or [`TenancyError::Io`].
pub fn export_json_lines(
    store: &dyn Datastore,
    tenant: &TenantId,
    filter: &AuditFilter,
    out: &mut dyn Write,
) -> Result<usize, TenancyError> {
    let mut after = 0;
    let mut n_written = 0;
    loop {
        let entries = read(store, tenant, filter, after, PAGE)?;
        let Some(last) = entries.last() else {
            return Ok(n_written);
        };
        after = last.sequence;
        for entry in &entries {
            serde_json::to_writer(&mut *out, &entry.to_json())
                .map_err(|err| TenancyError::Io(err.into()))?;
            out.write_all(b"\n")?;
            n_written += 1;
        }
    }
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verification {
    /// Every entry is present, in place and unchanged.
    Intact {
        /// How many entries the log holds.
        n_entries: u64,
        /// The last entry's hash (anchor it elsewhere), if any.
        head_hash: Option<String>,
    },
    /// The chain is broken; the first break found.
    Broken(ChainBreak),
}

/// Where and how a log's chain breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    /// The entry with this sequence was changed: it does not decode, its hash does not
    /// match its content, or the next entry does not link to it.
    #[error("audit entry {sequence} was tampered with")]
    Tampered {
        /// The entry's sequence.
        sequence: u64,
    },
    /// The entry with this sequence is missing (removed, or the tail was truncated).
    #[error("audit entry {sequence} is missing")]
    Missing {
        /// The missing sequence.
        sequence: u64,
    },
    /// The entries with these sequences were swapped: each sits at the other's place.
    #[error("audit entries {first} and {second} were reordered")]
    Reordered {
        /// The lower sequence.
        first: u64,
        /// The higher sequence.
        second: u64,
    },
}

/// Walks `tenant`'s log from the first entry and reports the first break, if any.
///
/// # Errors
///
/// A store error.
pub fn verify(store: &dyn Datastore, tenant: &TenantId) -> Result<Verification, TenancyError> {
    let audit = namespace(AUDIT)?;
    let mut expected: u64 = 1;
    let mut prev_hash = GENESIS_HASH.to_owned();
    let mut start = Vec::new();
    let broken = |chain_break| Ok(Verification::Broken(chain_break));
    loop {
        let page = store.scan_records(tenant, &audit, &start, PAGE)?;
        let Some(last) = page.last() else {
            break;
        };
        start = record_key_successor(&last.key);
        for record in page {
            let Ok(position) = <[u8; 8]>::try_from(record.key.as_slice()).map(u64::from_be_bytes)
            else {
                return broken(ChainBreak::Tampered { sequence: expected });
            };
            if position != expected {
                return broken(if position > expected {
                    ChainBreak::Missing { sequence: expected }
                } else {
                    ChainBreak::Tampered { sequence: position }
                });
            }
            let Ok(entry) = serde_json::from_slice::<AuditEntry>(&record.value) else {
                return broken(ChainBreak::Tampered { sequence: position });
            };
            if entry.sequence != position {
                // Swapped with the entry at its own place?
                let other = store.read_record(tenant, &audit, &entry_key(entry.sequence))?;
                let swapped = other
                    .and_then(|bytes| serde_json::from_slice::<AuditEntry>(&bytes).ok())
                    .is_some_and(|other| other.sequence == position);
                return broken(if swapped {
                    ChainBreak::Reordered {
                        first: position.min(entry.sequence),
                        second: position.max(entry.sequence),
                    }
                } else {
                    ChainBreak::Tampered { sequence: position }
                });
            }
            if entry.tenant != tenant.as_str() || entry.compute_hash() != entry.hash {
                return broken(ChainBreak::Tampered { sequence: position });
            }
            if entry.prev_hash != prev_hash {
                // This entry is intact (its hash covers `prev_hash`), so the previous one
                // was replaced by a different, self-consistent entry.
                return broken(ChainBreak::Tampered {
                    sequence: position.saturating_sub(1).max(1),
                });
            }
            prev_hash = entry.hash;
            expected += 1;
        }
    }
    let n_entries = expected - 1;
    let head: Option<Head> = match store.read_record(tenant, &namespace(AUDIT_HEAD)?, HEAD_KEY)? {
        None => None,
        Some(bytes) => match serde_json::from_slice(&bytes) {
            Ok(head) => Some(head),
            Err(_) => {
                return broken(ChainBreak::Tampered {
                    sequence: n_entries,
                });
            }
        },
    };
    match head {
        None if n_entries == 0 => Ok(Verification::Intact {
            n_entries,
            head_hash: None,
        }),
        None => broken(ChainBreak::Tampered {
            sequence: n_entries,
        }),
        Some(head) if head.sequence > n_entries => {
            broken(ChainBreak::Missing { sequence: expected })
        }
        Some(head) if head.sequence < n_entries || head.hash != prev_hash => {
            broken(ChainBreak::Tampered {
                sequence: n_entries,
            })
        }
        Some(head) => Ok(Verification::Intact {
            n_entries,
            head_hash: Some(head.hash),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use ostiary_store::{Clock, StoreError};
    use ostiary_store_mem::MemDatastore;

    use super::*;
    use crate::testing::Fixture;

    fn entry(action: &str, actor: &str) -> NewAuditEntry {
        NewAuditEntry {
            action: action.to_owned(),
            actor: Some(actor.to_owned()),
            request_id: None,
            client_address: None,
            on_behalf_of: Some("support:bob".to_owned()),
            details: serde_json::json!({ "n": 1 }),
        }
    }

    fn touch(text: &str) -> RelationshipUpdate {
        RelationshipUpdate::Touch(text.parse().unwrap())
    }

    /// A tenant whose log holds `n` entries, each written with a relationship.
    fn log_of(n: u64) -> (Fixture, TenantId) {
        let fx = Fixture::new();
        let tenant = TenantId::new("logged").unwrap();
        for entry_idx in 1..=n {
            fx.clock.advance(Duration::from_secs(60));
            let update = touch(&format!("doc:d{entry_idx}#viewer@user:u"));
            fx.store
                .read_write_with(&tenant, |txn| {
                    txn.apply(std::slice::from_ref(&update))?;
                    let action = if entry_idx % 2 == 0 {
                        "schema.write"
                    } else {
                        "relationships.write"
                    };
                    let actor = if entry_idx <= 2 { "tok_a" } else { "tok_b" };
                    let mut new = entry(action, actor);
                    new.details = relationship_details(std::slice::from_ref(&update), 10);
                    append(txn, &new, &PlainRevisions)
                })
                .unwrap();
        }
        (fx, tenant)
    }

    fn raw(fx: &Fixture, tenant: &TenantId, sequence: u64) -> Vec<u8> {
        fx.store
            .read_record(tenant, &namespace(AUDIT).unwrap(), &entry_key(sequence))
            .unwrap()
            .unwrap()
    }

    fn put_raw(fx: &Fixture, tenant: &TenantId, sequence: u64, value: Option<&[u8]>) {
        fx.store
            .read_write(tenant, &mut |txn| {
                let audit = namespace(AUDIT)?;
                match value {
                    Some(value) => txn.put_record(&audit, &entry_key(sequence), value),
                    None => txn.delete_record(&audit, &entry_key(sequence)),
                }
            })
            .unwrap();
    }

    fn verdict(fx: &Fixture, tenant: &TenantId) -> Verification {
        verify(fx.store.as_ref(), tenant).unwrap()
    }

    #[test]
    fn entries_commit_with_their_change() {
        let (fx, tenant) = log_of(3);
        let entries = read(fx.store.as_ref(), &tenant, &AuditFilter::default(), 0, 100).unwrap();
        assert_eq!(entries.len(), 3);
        for (entry_idx, entry) in entries.iter().enumerate() {
            assert_eq!(entry.sequence, entry_idx as u64 + 1);
            assert_eq!(entry.tenant, "logged");
            assert_eq!(entry.hash, entry.compute_hash());
            // The entry's revision is the one its relationship was written at.
            let revision: Revision = entry.revision.parse().unwrap();
            let snapshot = fx.store.snapshot(&tenant, revision).unwrap();
            let mut out = Vec::new();
            snapshot
                .read_filtered(
                    &ostiary_types::RelationshipFilter {
                        resource_type: Some(ostiary_types::ObjectType::new("doc").unwrap()),
                        ..Default::default()
                    },
                    ostiary_store::Page::ALL,
                    &mut out,
                )
                .unwrap();
            assert_eq!(out.len(), entry_idx + 1);
        }
        assert_eq!(entries[0].prev_hash, GENESIS_HASH);
        assert_eq!(entries[1].prev_hash, entries[0].hash);
        assert_eq!(entries[0].on_behalf_of.as_deref(), Some("support:bob"));
        assert_eq!(
            entries[0].details,
            r#"{"relationships":["TOUCH doc:d1#viewer@user:u"]}"#
        );

        // A body that fails after appending leaves neither the change nor the entry.
        let res = fx.store.read_write_with(&tenant, |txn| {
            txn.apply(&[touch("doc:rolled#viewer@user:u")])?;
            append(txn, &entry("relationships.write", "tok_a"), &PlainRevisions)?;
            Err::<(), _>(TenancyError::Store(StoreError::Conflict))
        });
        assert!(res.is_err());
        assert_eq!(
            read(fx.store.as_ref(), &tenant, &AuditFilter::default(), 0, 100)
                .unwrap()
                .len(),
            3
        );
        // Appending in a transaction of its own continues the chain.
        let alone = append_alone(
            fx.store.as_ref(),
            &tenant,
            &entry("auth.failure", "tok_z"),
            &PlainRevisions,
        )
        .unwrap();
        assert_eq!(alone.sequence, 4);
        assert!(matches!(
            verdict(&fx, &tenant),
            Verification::Intact { n_entries: 4, head_hash: Some(hash) } if hash == alone.hash
        ));
    }

    /// A seal standing in for the server's consistency tokens.
    #[derive(Debug)]
    struct Sealed;

    impl RevisionSeal for Sealed {
        fn seal(&self, tenant: &TenantId, revision: Revision) -> String {
            format!("sealed:{tenant}:{}", revision.as_u64() * 7)
        }
    }

    #[test]
    fn entries_name_their_commit_through_the_seal_and_the_hash_covers_it() {
        let fx = Fixture::new();
        let tenant = TenantId::new("acme").unwrap();
        let stored = append_alone(
            fx.store.as_ref(),
            &tenant,
            &entry("auth.failure", "tok_z"),
            &Sealed,
        )
        .unwrap();
        let head = fx.store.head_revision().unwrap();
        assert_eq!(
            stored.revision,
            format!("sealed:acme:{}", head.as_u64() * 7)
        );
        let mut changed = stored.clone();
        changed.revision = head.to_string();
        assert_ne!(changed.compute_hash(), stored.hash);
    }

    #[test]
    fn empty_log_is_intact() {
        let store = MemDatastore::default();
        assert_eq!(
            verify(&store, &TenantId::default_tenant()).unwrap(),
            Verification::Intact {
                n_entries: 0,
                head_hash: None
            }
        );
    }

    #[test]
    fn filters_and_paging() {
        let (fx, tenant) = log_of(5);
        let store = fx.store.as_ref();
        let all = read(store, &tenant, &AuditFilter::default(), 0, 100).unwrap();
        let by_actor = AuditFilter {
            actor: Some("tok_a".to_owned()),
            ..AuditFilter::default()
        };
        let sequences = |entries: Vec<AuditEntry>| -> Vec<u64> {
            entries.iter().map(|entry| entry.sequence).collect()
        };
        assert_eq!(
            sequences(read(store, &tenant, &by_actor, 0, 100).unwrap()),
            [1, 2]
        );
        let by_action = AuditFilter {
            action: Some("schema.write".to_owned()),
            ..AuditFilter::default()
        };
        assert_eq!(
            sequences(read(store, &tenant, &by_action, 0, 100).unwrap()),
            [2, 4]
        );
        let by_time = AuditFilter {
            from: Some(all[1].time),
            until: Some(all[3].time),
            ..AuditFilter::default()
        };
        assert_eq!(
            sequences(read(store, &tenant, &by_time, 0, 100).unwrap()),
            [2, 3]
        );
        assert_eq!(
            sequences(read(store, &tenant, &AuditFilter::default(), 2, 2).unwrap()),
            [3, 4]
        );
        assert!(
            read(store, &tenant, &AuditFilter::default(), u64::MAX, 2)
                .unwrap()
                .is_empty()
        );

        let mut out = Vec::new();
        let n_written = export_json_lines(store, &tenant, &by_action, &mut out).unwrap();
        assert_eq!(n_written, 2);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["sequence"], 2);
        assert_eq!(lines[0]["action"], "schema.write");
        assert_eq!(
            lines[0]["details"]["relationships"][0],
            "TOUCH doc:d2#viewer@user:u"
        );
        assert_eq!(lines[1]["hash"], all[3].hash.as_str());
    }

    #[test]
    fn large_writes_record_count_and_digest() {
        let updates: Vec<RelationshipUpdate> = (0..3)
            .map(|idx| touch(&format!("doc:{idx}#viewer@user:u")))
            .chain([RelationshipUpdate::Delete(
                "doc:x#viewer@user:u".parse().unwrap(),
            )])
            .collect();
        let inline = relationship_details(&updates, 4);
        assert_eq!(inline["relationships"][3], "DELETE doc:x#viewer@user:u");
        let digest = relationship_details(&updates, 3);
        assert_eq!(digest["count"], 4);
        let joined = "TOUCH doc:0#viewer@user:u\nTOUCH doc:1#viewer@user:u\nTOUCH doc:2#viewer@user:u\nDELETE doc:x#viewer@user:u";
        assert_eq!(
            digest["sha256"],
            data_encoding::HEXLOWER.encode(&Sha256::digest(joined.as_bytes()))
        );
        assert!(digest.get("relationships").is_none());
    }

    #[test]
    fn verify_detects_a_flipped_byte() {
        let (fx, tenant) = log_of(4);
        let original = raw(&fx, &tenant, 3);
        // Flip one byte of the action text (`relationships.write` → `relationshipr.write`).
        let text = String::from_utf8(original.clone()).unwrap();
        let at = text.find("relationships.write").unwrap() + "relationship".len();
        let mut flipped = original.clone();
        flipped[at] ^= 0x01;
        put_raw(&fx, &tenant, 3, Some(&flipped));
        assert_eq!(
            verdict(&fx, &tenant),
            Verification::Broken(ChainBreak::Tampered { sequence: 3 })
        );
        // A flip that breaks the JSON is found too, and so is one in the time.
        let mut broken_json = original.clone();
        broken_json[0] ^= 0x01;
        put_raw(&fx, &tenant, 3, Some(&broken_json));
        assert_eq!(
            verdict(&fx, &tenant),
            Verification::Broken(ChainBreak::Tampered { sequence: 3 })
        );
        let at = text.find("\"time\":\"2025").unwrap() + 11;
        let mut new_year = original.clone();
        new_year[at] ^= 0x01;
        put_raw(&fx, &tenant, 3, Some(&new_year));
        assert_eq!(
            verdict(&fx, &tenant),
            Verification::Broken(ChainBreak::Tampered { sequence: 3 })
        );
        // Restored, the chain verifies again.
        put_raw(&fx, &tenant, 3, Some(&original));
        assert!(matches!(
            verdict(&fx, &tenant),
            Verification::Intact { n_entries: 4, .. }
        ));
    }

    #[test]
    fn verify_detects_a_rewritten_entry() {
        let (fx, tenant) = log_of(4);
        // Change entry 2 and recompute its own hash: entry 3 no longer links to it.
        let mut entry: AuditEntry = serde_json::from_slice(&raw(&fx, &tenant, 2)).unwrap();
        entry.actor = Some("someone_else".to_owned());
        entry.hash = entry.compute_hash();
        put_raw(&fx, &tenant, 2, Some(&serde_json::to_vec(&entry).unwrap()));
        assert_eq!(
            verdict(&fx, &tenant),
            Verification::Broken(ChainBreak::Tampered { sequence: 2 })
        );
    }

    #[test]
    fn verify_detects_a_removed_entry() {
        let (fx, tenant) = log_of(5);
        put_raw(&fx, &tenant, 3, None);
        assert_eq!(
            verdict(&fx, &tenant),
            Verification::Broken(ChainBreak::Missing { sequence: 3 })
        );
        // The first entry, and a truncated tail (the head still names entry 5).
        let (fx, tenant) = log_of(3);
        put_raw(&fx, &tenant, 1, None);
        assert_eq!(
            verdict(&fx, &tenant),
            Verification::Broken(ChainBreak::Missing { sequence: 1 })
        );
        let (fx, tenant) = log_of(5);
        put_raw(&fx, &tenant, 5, None);
        assert_eq!(
            verdict(&fx, &tenant),
            Verification::Broken(ChainBreak::Missing { sequence: 5 })
        );
    }

    #[test]
    fn verify_detects_a_reordered_pair() {
        let (fx, tenant) = log_of(5);
        let second = raw(&fx, &tenant, 2);
        let fourth = raw(&fx, &tenant, 4);
        put_raw(&fx, &tenant, 2, Some(&fourth));
        put_raw(&fx, &tenant, 4, Some(&second));
        assert_eq!(
            verdict(&fx, &tenant),
            Verification::Broken(ChainBreak::Reordered {
                first: 2,
                second: 4
            })
        );
        assert_eq!(
            ChainBreak::Reordered {
                first: 2,
                second: 4
            }
            .to_string(),
            "audit entries 2 and 4 were reordered"
        );
        // Renumbering the swapped entries to their new places breaks their hashes instead.
        let (fx, tenant) = log_of(3);
        let mut first: AuditEntry = serde_json::from_slice(&raw(&fx, &tenant, 1)).unwrap();
        let mut second: AuditEntry = serde_json::from_slice(&raw(&fx, &tenant, 2)).unwrap();
        std::mem::swap(&mut first.sequence, &mut second.sequence);
        put_raw(&fx, &tenant, 1, Some(&serde_json::to_vec(&second).unwrap()));
        put_raw(&fx, &tenant, 2, Some(&serde_json::to_vec(&first).unwrap()));
        assert_eq!(
            verdict(&fx, &tenant),
            Verification::Broken(ChainBreak::Tampered { sequence: 1 })
        );
    }

    #[test]
    fn entries_of_another_tenant_do_not_verify() {
        let (fx, tenant) = log_of(2);
        let moved = raw(&fx, &tenant, 1);
        let other = TenantId::new("other").unwrap();
        put_raw(&fx, &other, 1, Some(&moved));
        assert_eq!(
            verdict(&fx, &other),
            Verification::Broken(ChainBreak::Tampered { sequence: 1 })
        );
        assert!(fx.clock.now() > "2025-01-01T00:00:00Z".parse().unwrap());
    }
}
