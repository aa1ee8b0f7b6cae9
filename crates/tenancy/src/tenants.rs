//! The tenant registry: tenants, their state and quotas, kept as records of the system
//! tenant; create, list, suspend, resume, delete (mark) and purge (remove the data).

use std::fmt;

use ostiary_store::{DatastoreExt, WriteTxn, record_key_successor};
use ostiary_types::{TenantId, Timestamp};

use crate::audit::{self, NewAuditEntry};
use crate::{Principal, RequestContext, Tenancy, TenancyError, decode, encode, namespace};

/// The registry's namespace in the system tenant.
pub(crate) const TENANTS: &str = "tenants";

/// Where a tenant is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantState {
    /// Serving requests.
    Active,
    /// Refusing requests (its tokens fail authentication) until resumed; data kept.
    Suspended,
    /// Marked for deletion: refusing requests while [`Tenancy::purge_tenant`] removes its
    /// data.
    Deleting,
}

impl fmt::Display for TenantState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Deleting => "deleting",
        })
    }
}

/// A tenant's limits; `None` is unlimited. The server enforces them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct Quotas {
    /// The most relationships the tenant may store.
    pub max_relationships: Option<u64>,
    /// The largest schema text, in bytes.
    pub max_schema_bytes: Option<u64>,
    /// The most requests per second over all of the tenant's tokens.
    pub max_requests_per_second: Option<u32>,
}

impl Quotas {
    /// Checks a schema text's size against `max_schema_bytes`.
    ///
    /// # Errors
    ///
    /// [`TenancyError::InvalidArgument`] naming the limit if the schema is larger.
    pub fn check_schema_bytes(&self, n_bytes: usize) -> Result<(), TenancyError> {
        match self.max_schema_bytes {
            Some(max) if u64::try_from(n_bytes).unwrap_or(u64::MAX) > max => {
                Err(TenancyError::InvalidArgument(format!(
                    "schema of {n_bytes} bytes exceeds the tenant's limit of {max} bytes"
                )))
            }
            _ => Ok(()),
        }
    }

    /// Checks that storing `n_after` relationships stays within `max_relationships`.
    ///
    /// # Errors
    ///
    /// [`TenancyError::InvalidArgument`] naming the limit if it would not.
    pub fn check_relationships(&self, n_after: u64) -> Result<(), TenancyError> {
        match self.max_relationships {
            Some(max) if n_after > max => Err(TenancyError::InvalidArgument(format!(
                "the write would store {n_after} relationships, over the tenant's limit of {max}"
            ))),
            _ => Ok(()),
        }
    }
}

/// A tenant's registry entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TenantInfo {
    /// The tenant.
    pub id: TenantId,
    /// Its state.
    pub state: TenantState,
    /// When it was created.
    pub created: Timestamp,
    /// Its limits.
    pub quotas: Quotas,
    /// A free-form description.
    pub description: String,
}

impl Tenancy {
    /// Registers a new, active tenant. Root only.
    ///
    /// # Errors
    ///
    /// [`TenancyError::PermissionDenied`] without root, [`TenancyError::TenantExists`], or
    /// a store error.
    pub fn create_tenant(
        &self,
        actor: &Principal,
        id: &TenantId,
        quotas: Quotas,
        description: &str,
        ctx: &RequestContext,
    ) -> Result<TenantInfo, TenancyError> {
        actor.require_root("create a tenant")?;
        if id.is_system() {
            return Err(TenancyError::InvalidArgument(
                "the system tenant cannot be registered".to_owned(),
            ));
        }
        let info = TenantInfo {
            id: id.clone(),
            state: TenantState::Active,
            created: self.now(),
            quotas,
            description: description.to_owned(),
        };
        self.store
            .read_write_with(&TenantId::system(), |txn| {
                if read_tenant(txn, id)?.is_some() {
                    return Err(TenancyError::TenantExists(id.to_string()));
                }
                write_tenant(txn, &info)?;
                let details = serde_json::json!({ "tenant": id.as_str(), "quotas": quotas });
                audit::append(
                    txn,
                    &tenant_entry(actor, "tenant.create", ctx, details),
                    self.revision_seal(),
                )?;
                Ok(())
            })
            .map(|_| {
                self.tenant_cache.write().remove(id);
                info
            })
    }

    /// Returns a tenant's registry entry, if it is registered.
    ///
    /// # Errors
    ///
    /// A store error, or [`TenancyError::Internal`] for a corrupt record.
    ///
    /// Registered tenants are cached in memory; every change through this service updates
    /// the cache after it commits.
    pub fn tenant(&self, id: &TenantId) -> Result<Option<TenantInfo>, TenancyError> {
        if let Some(info) = self.tenant_cache.read().get(id) {
            return Ok(Some(info.clone()));
        }
        let info: Option<TenantInfo> = self
            .store
            .read_record(
                &TenantId::system(),
                &namespace(TENANTS)?,
                id.as_str().as_bytes(),
            )?
            .map(|bytes| decode("tenant", &bytes))
            .transpose()?;
        if let Some(info) = &info {
            self.tenant_cache.write().insert(id.clone(), info.clone());
        }
        Ok(info)
    }

    /// Lists every registered tenant, by id. Root only.
    ///
    /// # Errors
    ///
    /// [`TenancyError::PermissionDenied`] without root, or a store error.
    pub fn list_tenants(&self, actor: &Principal) -> Result<Vec<TenantInfo>, TenancyError> {
        actor.require_root("list tenants")?;
        self.all_tenants()
    }

    /// Every registered tenant, by id.
    fn all_tenants(&self) -> Result<Vec<TenantInfo>, TenancyError> {
        let tenants = namespace(TENANTS)?;
        let mut out = Vec::new();
        let mut start = Vec::new();
        loop {
            let page = self
                .store
                .scan_records(&TenantId::system(), &tenants, &start, 256)?;
            let Some(last) = page.last() else {
                return Ok(out);
            };
            start = record_key_successor(&last.key);
            for record in &page {
                out.push(decode("tenant", &record.value)?);
            }
        }
    }

    /// The tenants marked for deletion, whose data [`Tenancy::purge_tenant`] should remove
    /// (a background task calls it for each).
    ///
    /// # Errors
    ///
    /// A store error.
    pub fn tenants_pending_deletion(&self) -> Result<Vec<TenantId>, TenancyError> {
        Ok(self
            .all_tenants()?
            .into_iter()
            .filter(|info| info.state == TenantState::Deleting)
            .map(|info| info.id)
            .collect())
    }

    /// Suspends an active tenant: its tokens stop authenticating at once. Root only.
    ///
    /// # Errors
    ///
    /// [`TenancyError::PermissionDenied`], [`TenancyError::TenantNotFound`],
    /// [`TenancyError::TenantNotActive`] unless active, or a store error.
    pub fn suspend_tenant(
        &self,
        actor: &Principal,
        id: &TenantId,
        ctx: &RequestContext,
    ) -> Result<TenantInfo, TenancyError> {
        self.change_tenant(actor, id, "tenant.suspend", ctx, |info| {
            require_state(info, TenantState::Active)?;
            info.state = TenantState::Suspended;
            Ok(())
        })
    }

    /// Resumes a suspended tenant. Root only.
    ///
    /// # Errors
    ///
    /// As [`Tenancy::suspend_tenant`]; the tenant must be suspended.
    pub fn resume_tenant(
        &self,
        actor: &Principal,
        id: &TenantId,
        ctx: &RequestContext,
    ) -> Result<TenantInfo, TenancyError> {
        self.change_tenant(actor, id, "tenant.resume", ctx, |info| {
            require_state(info, TenantState::Suspended)?;
            info.state = TenantState::Active;
            Ok(())
        })
    }

    /// Replaces a tenant's quotas. Root only.
    ///
    /// # Errors
    ///
    /// [`TenancyError::PermissionDenied`], [`TenancyError::TenantNotFound`] or a store error.
    pub fn set_quotas(
        &self,
        actor: &Principal,
        id: &TenantId,
        quotas: Quotas,
        ctx: &RequestContext,
    ) -> Result<TenantInfo, TenancyError> {
        self.change_tenant(actor, id, "tenant.set_quotas", ctx, |info| {
            info.quotas = quotas;
            Ok(())
        })
    }

    /// Marks a tenant for deletion and returns at once: its tokens stop authenticating and
    /// [`Tenancy::purge_tenant`] (run in the background) removes its data. Root only.
    ///
    /// # Errors
    ///
    /// [`TenancyError::PermissionDenied`], [`TenancyError::TenantNotFound`] or a store error.
    pub fn delete_tenant(
        &self,
        actor: &Principal,
        id: &TenantId,
        ctx: &RequestContext,
    ) -> Result<TenantInfo, TenancyError> {
        let info = self.change_tenant(actor, id, "tenant.delete", ctx, |info| {
            info.state = TenantState::Deleting;
            Ok(())
        })?;
        self.forget_tenant_tokens(id);
        Ok(info)
    }

    /// Removes the data of a tenant marked for deletion (relationships, schema, change
    /// feed, tokens, audit log: [`Datastore::delete_tenant`](ostiary_store::Datastore::delete_tenant)),
    /// then its registry entry, and records the purge in the system audit log. Safe to run
    /// again after a crash: the entry stays until the data is gone.
    ///
    /// # Errors
    ///
    /// [`TenancyError::TenantNotFound`], [`TenancyError::TenantNotActive`] unless marked for
    /// deletion, or a store error.
    pub fn purge_tenant(&self, id: &TenantId, ctx: &RequestContext) -> Result<(), TenancyError> {
        let info = self
            .tenant(id)?
            .ok_or_else(|| TenancyError::TenantNotFound(id.to_string()))?;
        require_state(&info, TenantState::Deleting)?;
        let token_ids = self.token_ids(id)?;
        self.forget_tenant_tokens(id);
        self.store.delete_tenant(id)?;
        self.forget_tenant_tokens(id);
        self.store.read_write_with(&TenantId::system(), |txn| {
            self.remove_index_entries(txn, &token_ids)?;
            txn.delete_record(&namespace(TENANTS)?, id.as_str().as_bytes())?;
            let entry = NewAuditEntry {
                action: "tenant.purge".to_owned(),
                actor: None,
                request_id: ctx.request_id.clone(),
                client_address: ctx.client_address.clone(),
                on_behalf_of: ctx.on_behalf_of.clone(),
                details: serde_json::json!({ "tenant": id.as_str() }),
            };
            audit::append(txn, &entry, self.revision_seal()).map(|_| ())
        })?;
        self.tenant_cache.write().remove(id);
        Ok(())
    }

    /// Reads, changes and writes back one tenant's entry, with its audit entry.
    fn change_tenant(
        &self,
        actor: &Principal,
        id: &TenantId,
        action: &str,
        ctx: &RequestContext,
        mut change: impl FnMut(&mut TenantInfo) -> Result<(), TenancyError>,
    ) -> Result<TenantInfo, TenancyError> {
        actor.require_root("manage tenants")?;
        let committed = self.store.read_write_with(&TenantId::system(), |txn| {
            let mut info = read_tenant(txn, id)?
                .ok_or_else(|| TenancyError::TenantNotFound(id.to_string()))?;
            change(&mut info)?;
            write_tenant(txn, &info)?;
            let details = serde_json::json!({
                "tenant": id.as_str(),
                "state": info.state,
                "quotas": info.quotas,
            });
            audit::append(
                txn,
                &tenant_entry(actor, action, ctx, details),
                self.revision_seal(),
            )?;
            Ok::<_, TenancyError>(info)
        })?;
        self.tenant_cache.write().remove(id);
        Ok(committed.value)
    }

    /// Checks that `tenant` may be served: the system tenant always, others when
    /// registered and active.
    pub(crate) fn tenant_is_active(&self, tenant: &TenantId) -> Result<bool, TenancyError> {
        if tenant.is_system() {
            return Ok(true);
        }
        Ok(self
            .tenant(tenant)?
            .is_some_and(|info| info.state == TenantState::Active))
    }
}

fn require_state(info: &TenantInfo, state: TenantState) -> Result<(), TenancyError> {
    if info.state == state {
        Ok(())
    } else {
        Err(TenancyError::TenantNotActive {
            tenant: info.id.to_string(),
            state: info.state.to_string(),
        })
    }
}

fn read_tenant(txn: &mut dyn WriteTxn, id: &TenantId) -> Result<Option<TenantInfo>, TenancyError> {
    txn.read_record(&namespace(TENANTS)?, id.as_str().as_bytes())?
        .map(|bytes| decode("tenant", &bytes))
        .transpose()
}

fn write_tenant(txn: &mut dyn WriteTxn, info: &TenantInfo) -> Result<(), TenancyError> {
    txn.put_record(
        &namespace(TENANTS)?,
        info.id.as_str().as_bytes(),
        &encode("tenant", info)?,
    )?;
    Ok(())
}

fn tenant_entry(
    actor: &Principal,
    action: &str,
    ctx: &RequestContext,
    details: serde_json::Value,
) -> NewAuditEntry {
    NewAuditEntry {
        action: action.to_owned(),
        actor: Some(actor.token_id().to_string()),
        request_id: ctx.request_id.clone(),
        client_address: ctx.client_address.clone(),
        on_behalf_of: ctx.on_behalf_of.clone(),
        details,
    }
}

#[cfg(test)]
mod tests {
    use ostiary_store::{Page, RelationshipUpdate};

    use super::*;
    use crate::audit::{AuditFilter, Verification};
    use crate::testing::Fixture;
    use crate::{Scope, audit};

    #[test]
    fn lifecycle() {
        let fx = Fixture::new();
        let quotas = Quotas {
            max_relationships: Some(10),
            max_schema_bytes: Some(100),
            max_requests_per_second: Some(5),
        };
        let globex = TenantId::new("globex").unwrap();
        let created = fx
            .tenancy
            .create_tenant(&fx.root, &globex, quotas, "Globex", &fx.ctx)
            .unwrap();
        assert_eq!(created.state, TenantState::Active);
        assert_eq!(fx.tenancy.tenant(&globex).unwrap(), Some(created.clone()));
        let ids: Vec<String> = fx
            .tenancy
            .list_tenants(&fx.root)
            .unwrap()
            .iter()
            .map(|info| info.id.to_string())
            .collect();
        assert_eq!(ids, ["acme", "globex"]);
        assert!(matches!(
            fx.tenancy
                .create_tenant(&fx.root, &globex, quotas, "", &fx.ctx),
            Err(TenancyError::TenantExists(_))
        ));
        assert!(matches!(
            fx.tenancy
                .create_tenant(&fx.root, &TenantId::system(), quotas, "", &fx.ctx),
            Err(TenancyError::InvalidArgument(_))
        ));

        let suspended = fx
            .tenancy
            .suspend_tenant(&fx.root, &globex, &fx.ctx)
            .unwrap();
        assert_eq!(suspended.state, TenantState::Suspended);
        let err = fx
            .tenancy
            .suspend_tenant(&fx.root, &globex, &fx.ctx)
            .unwrap_err();
        assert_eq!(err.to_string(), "tenant `globex` is suspended");
        assert_eq!(
            fx.tenancy
                .resume_tenant(&fx.root, &globex, &fx.ctx)
                .unwrap()
                .state,
            TenantState::Active
        );
        assert!(
            fx.tenancy
                .resume_tenant(&fx.root, &globex, &fx.ctx)
                .is_err()
        );
        let relaxed = Quotas::default();
        assert_eq!(
            fx.tenancy
                .set_quotas(&fx.root, &globex, relaxed, &fx.ctx)
                .unwrap()
                .quotas,
            relaxed
        );
        let missing = TenantId::new("missing").unwrap();
        assert!(matches!(
            fx.tenancy.suspend_tenant(&fx.root, &missing, &fx.ctx),
            Err(TenancyError::TenantNotFound(_))
        ));

        // Every action is in the system tenant's audit log, chained.
        let actions: Vec<String> = audit::read(
            fx.store.as_ref(),
            &TenantId::system(),
            &AuditFilter::default(),
            0,
            100,
        )
        .unwrap()
        .into_iter()
        .map(|entry| entry.action)
        .collect();
        assert_eq!(
            actions,
            [
                "token.create",
                "tenant.create",
                "tenant.create",
                "tenant.suspend",
                "tenant.resume",
                "tenant.set_quotas",
            ]
        );
        assert!(matches!(
            audit::verify(fx.store.as_ref(), &TenantId::system()).unwrap(),
            Verification::Intact { n_entries: 6, .. }
        ));
    }

    #[test]
    fn only_root_manages_tenants() {
        let fx = Fixture::new();
        let admin = fx.principal(&[Scope::Admin, Scope::Check], Some(2));
        let globex = TenantId::new("globex").unwrap();
        let denied = |res: Result<TenantInfo, TenancyError>| {
            assert!(
                matches!(&res, Err(TenancyError::PermissionDenied(reason)) if reason.starts_with("only a root token may")),
                "{res:?}"
            );
        };
        denied(
            fx.tenancy
                .create_tenant(&admin, &globex, Quotas::default(), "", &fx.ctx),
        );
        denied(fx.tenancy.suspend_tenant(&admin, &fx.acme, &fx.ctx));
        denied(fx.tenancy.delete_tenant(&admin, &fx.acme, &fx.ctx));
        denied(
            fx.tenancy
                .set_quotas(&admin, &fx.acme, Quotas::default(), &fx.ctx),
        );
        assert!(matches!(
            fx.tenancy.list_tenants(&admin),
            Err(TenancyError::PermissionDenied(_))
        ));
        assert_eq!(
            fx.tenancy.tenant(&fx.acme).unwrap().unwrap().state,
            TenantState::Active
        );
    }

    #[test]
    fn delete_marks_and_purge_removes_the_data() {
        let fx = Fixture::new();
        let keep = TenantId::new("keep").unwrap();
        fx.tenancy
            .create_tenant(&fx.root, &keep, Quotas::default(), "", &fx.ctx)
            .unwrap();
        let token = fx.token(&[Scope::Check], Some(1));
        for tenant in [&fx.acme, &keep] {
            fx.store
                .write_relationships(
                    tenant,
                    &[],
                    &[RelationshipUpdate::Touch(
                        "doc:a#viewer@user:u".parse().unwrap(),
                    )],
                )
                .unwrap();
        }
        // Purging needs the mark first.
        assert!(matches!(
            fx.tenancy.purge_tenant(&fx.acme, &fx.ctx),
            Err(TenancyError::TenantNotActive { .. })
        ));
        let marked = fx
            .tenancy
            .delete_tenant(&fx.root, &fx.acme, &fx.ctx)
            .unwrap();
        assert_eq!(marked.state, TenantState::Deleting);
        let pending = fx.tenancy.tenants_pending_deletion().unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0], fx.acme);
        fx.tenancy.purge_tenant(&fx.acme, &fx.ctx).unwrap();
        assert_eq!(fx.tenancy.tenant(&fx.acme).unwrap(), None);
        assert!(fx.tenancy.tenants_pending_deletion().unwrap().is_empty());
        assert!(fx.tenancy.token_ids(&fx.acme).unwrap().is_empty());
        let count = |tenant: &TenantId| {
            let snapshot = fx.store.head_snapshot(tenant).unwrap();
            let mut out = Vec::new();
            snapshot
                .read_filtered(
                    &ostiary_types::RelationshipFilter {
                        resource_type: Some("doc".parse().unwrap()),
                        ..Default::default()
                    },
                    Page::ALL,
                    &mut out,
                )
                .unwrap()
        };
        assert_eq!(count(&fx.acme), 0);
        assert_eq!(count(&keep), 1);
        // Acme's own audit log went with it; the purge is in the system log.
        assert!(matches!(
            audit::verify(fx.store.as_ref(), &fx.acme).unwrap(),
            Verification::Intact { n_entries: 0, .. }
        ));
        let last = audit::read(
            fx.store.as_ref(),
            &TenantId::system(),
            &AuditFilter {
                action: Some("tenant.purge".to_owned()),
                ..AuditFilter::default()
            },
            0,
            10,
        )
        .unwrap();
        assert_eq!(last.len(), 1);
        assert!(fx.tenancy.authenticate(token.text.expose()).is_err());
        assert!(matches!(
            fx.tenancy.purge_tenant(&fx.acme, &fx.ctx),
            Err(TenancyError::TenantNotFound(_))
        ));
    }

    #[test]
    fn quota_checks() {
        let quotas = Quotas {
            max_relationships: Some(3),
            max_schema_bytes: Some(10),
            max_requests_per_second: None,
        };
        assert!(quotas.check_schema_bytes(10).is_ok());
        assert_eq!(
            quotas.check_schema_bytes(11).unwrap_err().to_string(),
            "invalid argument: schema of 11 bytes exceeds the tenant's limit of 10 bytes"
        );
        assert!(quotas.check_relationships(3).is_ok());
        assert!(quotas.check_relationships(4).is_err());
        assert!(Quotas::default().check_relationships(u64::MAX).is_ok());
        let parsed: Quotas = serde_json::from_str(r#"{"max-relationships": 5}"#).unwrap();
        assert_eq!(parsed.max_relationships, Some(5));
        assert!(serde_json::from_str::<Quotas>(r#"{"max-tuples": 5}"#).is_err());
    }
}
