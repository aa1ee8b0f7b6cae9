//! Test support: a tenancy over an in-memory datastore with a manual clock, a root token
//! and one registered tenant.

use std::sync::Arc;
use std::time::Duration;

use ostiary_store::{Clock, DatastoreOptions, ManualClock, add_duration};
use ostiary_store_mem::MemDatastore;
use ostiary_types::{TenantId, Timestamp};

use crate::{
    CreatedToken, NewToken, Principal, Quotas, RequestContext, Scope, Tenancy, TokenPolicy,
};

pub(crate) const START: &str = "2025-01-01T00:00:00Z";
pub(crate) const HOUR: Duration = Duration::from_secs(3600);
pub(crate) const DAY: Duration = Duration::from_secs(24 * 3600);

pub(crate) struct Fixture {
    pub(crate) store: Arc<MemDatastore>,
    pub(crate) clock: Arc<ManualClock>,
    pub(crate) tenancy: Tenancy,
    pub(crate) root: Principal,
    pub(crate) acme: TenantId,
    pub(crate) ctx: RequestContext,
}

impl Fixture {
    pub(crate) fn new() -> Self {
        Self::with_policy(TokenPolicy::default())
    }

    pub(crate) fn with_policy(policy: TokenPolicy) -> Self {
        let clock = Arc::new(ManualClock::new(START.parse().unwrap()));
        let store = Arc::new(MemDatastore::new(DatastoreOptions {
            clock: clock.clone(),
            ..DatastoreOptions::default()
        }));
        let tenancy = Tenancy::new(store.clone(), clock.clone(), policy);
        let ctx = RequestContext {
            request_id: Some("req-1".to_owned()),
            client_address: Some("192.0.2.1:5000".to_owned()),
            on_behalf_of: None,
        };
        let root_token = tenancy
            .create_root_token("bootstrap", Some(add_duration(clock.now(), 30 * DAY)), &ctx)
            .unwrap();
        let root = tenancy.authenticate(root_token.text.expose()).unwrap();
        let acme = TenantId::new("acme").unwrap();
        tenancy
            .create_tenant(&root, &acme, Quotas::default(), "Acme", &ctx)
            .unwrap();
        Self {
            store,
            clock,
            tenancy,
            root,
            acme,
            ctx,
        }
    }

    pub(crate) fn in_hours(&self, hours: u32) -> Timestamp {
        add_duration(self.clock.now(), HOUR * hours)
    }

    /// Creates a token in acme as root.
    pub(crate) fn token(&self, scopes: &[Scope], expires_in_hours: Option<u32>) -> CreatedToken {
        let expires = expires_in_hours.map(|hours| self.in_hours(hours));
        self.tenancy
            .create_token(
                &self.root,
                NewToken::new(self.acme.clone(), scopes.iter().copied(), expires, "test"),
                &self.ctx,
            )
            .unwrap()
    }

    /// Creates a token in acme as root and authenticates it.
    pub(crate) fn principal(&self, scopes: &[Scope], expires_in_hours: Option<u32>) -> Principal {
        let created = self.token(scopes, expires_in_hours);
        self.tenancy.authenticate(created.text.expose()).unwrap()
    }
}
