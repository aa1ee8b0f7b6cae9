//! Multi-tenancy of Ostiary, without gRPC: the tenant registry and quotas, scoped API
//! tokens and the hash-chained audit log.
//!
//! Everything is stored as [records](ostiary_store::RecordNamespace) in the datastore:
//!
//! | tenant | namespace | key | value |
//! |---|---|---|---|
//! | [system](ostiary_types::TenantId::system) | `tenants` | tenant id | [`TenantInfo`] (JSON) |
//! | system | `token_index` | token id | the token's tenant id |
//! | the token's (system for root tokens) | `tokens` | token id | [`TokenInfo`] and secret hashes (JSON) |
//! | any | `audit` | sequence (8 bytes big-endian) | [`AuditEntry`] (JSON) |
//! | any | `audit_head` | `head` | the chain head: last sequence and hash |
//!
//! [`Tenancy`] is the service: it owns the datastore handle, the clock, the token policy and
//! an in-memory index of authenticated tokens (invalidated in-process by rotation,
//! revocation and tenant deletion, so they take effect immediately in this process).
//! Every mutating operation writes its [`audit`] entry in the same transaction as the
//! change: tenant actions in the system tenant's log, token actions in the token's tenant's
//! log.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use ostiary_store::{Clock, SystemClock, add_duration};
//! use ostiary_store_mem::MemDatastore;
//! use ostiary_tenancy::{NewToken, Principal, RequestContext, Scope, Tenancy, TokenPolicy};
//! use ostiary_types::TenantId;
//!
//! let tenancy = Tenancy::new(Arc::new(MemDatastore::default()), Arc::new(SystemClock), TokenPolicy::default());
//! let ctx = RequestContext::default();
//! let expires = add_duration(SystemClock.now(), Duration::from_secs(3600));
//! let root = tenancy.create_root_token("bootstrap", Some(expires), &ctx).unwrap();
//! let root = tenancy.authenticate(root.text.expose()).unwrap();
//! let acme = TenantId::new("acme").unwrap();
//! tenancy.create_tenant(&root, &acme, Default::default(), "Acme", &ctx).unwrap();
//! let created = tenancy
//!     .create_token(&root, NewToken::new(acme.clone(), [Scope::Check], Some(expires), "checker"), &ctx)
//!     .unwrap();
//! let principal = tenancy.authenticate(created.text.expose()).unwrap();
//! assert!(principal.allows(&acme, Scope::Check));
//! assert!(!principal.allows(&acme, Scope::Write));
//! ```

pub mod audit;
mod error;
mod scope;
mod tenants;
#[cfg(test)]
mod testing;
mod token_text;
mod tokens;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use ostiary_store::{Clock, Datastore, RecordNamespace, StoreError};
use ostiary_types::{TenantId, Timestamp};
use parking_lot::{Mutex, RwLock};

pub use audit::{
    AuditEntry, AuditFilter, ChainBreak, NewAuditEntry, PlainRevisions, RevisionSeal, Verification,
};
pub use error::{AuthError, TenancyError};
pub use scope::{Scope, ScopeSet};
pub use tenants::{Quotas, TenantInfo, TenantState};
pub use token_text::{TOKEN_PREFIX, TokenFormatError, TokenId, TokenText};
pub use tokens::{CreatedToken, NewToken, Principal, TokenInfo, TokenPolicy};

/// Where a request came from, for the audit log. The actor (token id) comes from the
/// [`Principal`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext {
    /// The request id (the server's `x-request-id`).
    pub request_id: Option<String>,
    /// The client's address.
    pub client_address: Option<String>,
    /// Who the caller acts for (impersonation or support access), from request metadata.
    pub on_behalf_of: Option<String>,
}

/// The tenancy service: tenants, tokens and their audit entries over one datastore.
pub struct Tenancy {
    store: Arc<dyn Datastore>,
    clock: Arc<dyn Clock>,
    policy: TokenPolicy,
    /// Tokens authenticated before, by id: their tenant and stored record.
    // INVARIANT: every operation that changes or removes a token record removes its entry
    // (after the change commits), so a revoked token stops working at once in-process.
    token_cache: RwLock<HashMap<TokenId, Arc<tokens::StoredToken>>>,
    /// Registered tenants read before, by id.
    // INVARIANT: every change of a tenant's entry through this service removes its cache
    // entry after the change commits.
    tenant_cache: RwLock<HashMap<TenantId, TenantInfo>>,
    /// How audit entries name revisions ([`PlainRevisions`] until one is installed).
    seal: std::sync::OnceLock<Arc<dyn RevisionSeal>>,
    /// Last-use times not yet written, by token id (see [`Tenancy::flush_last_used`]).
    last_used: Mutex<HashMap<TokenId, (TenantId, Timestamp)>>,
}

impl Tenancy {
    /// Builds the service over `store`, taking time from `clock` (the datastore's, in
    /// production [`SystemClock`](ostiary_store::SystemClock)).
    pub fn new(store: Arc<dyn Datastore>, clock: Arc<dyn Clock>, policy: TokenPolicy) -> Self {
        Self {
            store,
            clock,
            policy,
            token_cache: RwLock::new(HashMap::new()),
            tenant_cache: RwLock::new(HashMap::new()),
            seal: std::sync::OnceLock::new(),
            last_used: Mutex::new(HashMap::new()),
        }
    }

    /// The datastore.
    pub fn store(&self) -> &Arc<dyn Datastore> {
        &self.store
    }

    /// The token policy.
    pub fn policy(&self) -> &TokenPolicy {
        &self.policy
    }

    /// Makes audit entries name revisions with `seal` (the server's consistency tokens)
    /// from now on; only the first call has an effect.
    pub fn seal_revisions_with(&self, seal: Arc<dyn RevisionSeal>) {
        let _first = self.seal.set(seal);
    }

    /// How audit entries name revisions.
    pub fn revision_seal(&self) -> &dyn RevisionSeal {
        match self.seal.get() {
            Some(seal) => seal.as_ref(),
            None => &PlainRevisions,
        }
    }

    /// The current time on the service's clock.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }
}

impl fmt::Debug for Tenancy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tenancy")
            .field("store", &self.store)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// Builds one of this crate's namespaces (all valid by construction).
pub(crate) fn namespace(name: &str) -> Result<RecordNamespace, StoreError> {
    RecordNamespace::new(name)
}

/// Decodes a stored JSON record.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    what: &str,
    bytes: &[u8],
) -> Result<T, TenancyError> {
    serde_json::from_slice(bytes)
        .map_err(|err| TenancyError::Internal(format!("stored {what} is corrupt: {err}")))
}

/// Encodes a record as JSON.
pub(crate) fn encode<T: serde::Serialize>(what: &str, value: &T) -> Result<Vec<u8>, TenancyError> {
    serde_json::to_vec(value)
        .map_err(|err| TenancyError::Internal(format!("cannot encode {what}: {err}")))
}
