//! `ServerConfig`: request limits and server behaviour, with SpiceDB's defaults.

use serde::Deserialize;

/// Limits and settings of the gRPC services. Every field has SpiceDB's default.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServerConfig {
    /// Most updates in one WriteRelationships (`--write-relationships-max-updates-per-call`).
    pub max_updates_per_write: usize,
    /// Most preconditions in one write or delete (`--max-preconditions-count`).
    pub max_preconditions: usize,
    /// Largest `optional_limit` of a DeleteRelationships (`--max-delete-relationships-limit`).
    pub max_delete_relationships_limit: usize,
    /// Largest `optional_limit` of a ReadRelationships (`--max-read-relationships-limit`).
    pub max_read_relationships_limit: usize,
    /// Largest `optional_limit` of a LookupResources (`--max-lookup-resources-limit`).
    pub max_lookup_resources_limit: usize,
    /// Largest `optional_limit` of an ExportBulkRelationships
    /// (`--max-bulk-export-relationships-limit`).
    pub max_bulk_export_relationships_limit: usize,
    /// Most items in one CheckBulkPermissions (`--max-bulk-check-items`, SpiceDB's default).
    pub max_bulk_check_items: usize,
    /// Largest caveat context of a relationship, in bytes of JSON
    /// (`--max-relationship-context-size`).
    pub max_relationship_context_bytes: usize,
    /// Requests served at once; more wait for a slot.
    pub max_concurrent_requests: usize,
    /// Largest request message in bytes (gRPC's default is 4 MiB).
    pub max_message_bytes: usize,
    /// Revisions a Watch stream reads per step.
    pub watch_batch_revisions: usize,
    /// The decision log: one Check decision in every this many is logged (target
    /// `ostiary::decisions`); 0 turns it off (the default).
    pub decision_log_every: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            max_updates_per_write: 1000,
            max_preconditions: 1000,
            max_delete_relationships_limit: 1000,
            max_read_relationships_limit: 1000,
            max_lookup_resources_limit: 1000,
            max_bulk_export_relationships_limit: 10_000,
            max_bulk_check_items: 1000,
            max_relationship_context_bytes: 25_000,
            max_concurrent_requests: 1024,
            max_message_bytes: 4 * 1024 * 1024,
            watch_batch_revisions: 100,
            decision_log_every: 0,
        }
    }
}

/// A configuration value that cannot work.
#[derive(Debug, thiserror::Error)]
#[error("invalid server configuration: `{field}` must be at least 1")]
pub struct ConfigError {
    /// The offending field, in its TOML spelling.
    pub field: &'static str,
}

impl ServerConfig {
    /// Checks that every limit is usable.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the first limit that is zero.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fields = [
            ("max-updates-per-write", self.max_updates_per_write),
            ("max-preconditions", self.max_preconditions),
            (
                "max-delete-relationships-limit",
                self.max_delete_relationships_limit,
            ),
            (
                "max-read-relationships-limit",
                self.max_read_relationships_limit,
            ),
            (
                "max-lookup-resources-limit",
                self.max_lookup_resources_limit,
            ),
            (
                "max-bulk-export-relationships-limit",
                self.max_bulk_export_relationships_limit,
            ),
            ("max-bulk-check-items", self.max_bulk_check_items),
            (
                "max-relationship-context-bytes",
                self.max_relationship_context_bytes,
            ),
            ("max-concurrent-requests", self.max_concurrent_requests),
            ("max-message-bytes", self.max_message_bytes),
            ("watch-batch-revisions", self.watch_batch_revisions),
        ];
        match fields.into_iter().find(|(_, value)| *value == 0) {
            Some((field, _)) => Err(ConfigError { field }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_zero_limits_do_not() {
        assert!(ServerConfig::default().validate().is_ok());
        let config = ServerConfig {
            max_preconditions: 0,
            ..ServerConfig::default()
        };
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "invalid server configuration: `max-preconditions` must be at least 1"
        );
    }
}
