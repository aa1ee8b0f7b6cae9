//! API tokens: create, rotate, revoke, list and authenticate, with the policy on expiry
//! and the rule that no token grants more than it has.
//!
//! # No privilege escalation
//!
//! A token other than root may manage only tokens of its own tenant, needs the `admin`
//! scope for it (except to rotate or revoke itself), and may create (or rotate) only a
//! token whose scopes are a subset of its own, whose definition restriction is within its
//! own (an unrestricted token cannot come from a restricted one), and whose expiry is no
//! later than its own (a non-expiring token cannot come from an expiring one). `root` is
//! granted only by root, only to tokens of the system tenant; root may do anything in any
//! tenant.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use ostiary_store::{DatastoreExt, WriteTxn, add_duration, record_key_successor};
use ostiary_types::{ObjectType, TenantId, Timestamp};

use crate::audit::{self, NewAuditEntry};
use crate::token_text::SecretHash;
use crate::{
    AuthError, RequestContext, Scope, ScopeSet, Tenancy, TenancyError, TokenId, TokenText, decode,
    encode, namespace,
};

/// Token records, in each token's tenant.
const TOKENS: &str = "tokens";
/// Token id to tenant id, in the system tenant: how authentication finds a token.
const TOKEN_INDEX: &str = "token_index";

/// Rules on token lifetimes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenPolicy {
    /// Whether tokens without an expiry may be created (off by default: expiry is
    /// mandatory).
    pub allow_non_expiring: bool,
    /// The longest lifetime of an expiring token (from its creation); `None` is unlimited.
    pub max_lifetime: Option<Duration>,
}

impl TokenPolicy {
    /// The default maximum lifetime: 366 days.
    pub const DEFAULT_MAX_LIFETIME: Duration = Duration::from_secs(366 * 24 * 60 * 60);
}

impl Default for TokenPolicy {
    fn default() -> Self {
        Self {
            allow_non_expiring: false,
            max_lifetime: Some(Self::DEFAULT_MAX_LIFETIME),
        }
    }
}

/// What is known about a token, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TokenInfo {
    /// The token's id.
    pub id: TokenId,
    /// The tenant it acts in (the system tenant for root tokens).
    #[serde(with = "tenant_text")]
    pub tenant: TenantId,
    /// The API groups it may call.
    pub scopes: ScopeSet,
    /// If set, the only definitions (resource types) it may touch.
    pub definitions: Option<BTreeSet<ObjectType>>,
    /// When it was created.
    pub created: Timestamp,
    /// When it stops working; `None` never (if the policy allows it).
    pub expires: Option<Timestamp>,
    /// When it last authenticated (to within [`Tenancy::flush_last_used`]'s period).
    pub last_used: Option<Timestamp>,
    /// A free-form description.
    pub description: String,
    /// The token that created it (`None` for a bootstrap root token).
    pub created_by: Option<TokenId>,
}

/// A token record as stored: its info and the hashes of its valid secrets.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct StoredToken {
    #[serde(flatten)]
    info: TokenInfo,
    secrets: Vec<StoredSecret>,
}

/// One secret's hash; after a rotation the old one is valid until the grace period ends.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct StoredSecret {
    sha256: SecretHash,
    valid_until: Option<Timestamp>,
}

impl StoredSecret {
    fn valid_at(&self, now: Timestamp) -> bool {
        self.valid_until.is_none_or(|until| now < until)
    }
}

/// A request to create a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    /// The tenant the token acts in.
    pub tenant: TenantId,
    /// Its scopes (at least one).
    pub scopes: ScopeSet,
    /// An optional restriction to these definitions.
    pub definitions: Option<BTreeSet<ObjectType>>,
    /// Its expiry (mandatory unless the policy allows non-expiring tokens).
    pub expires: Option<Timestamp>,
    /// A free-form description.
    pub description: String,
}

impl NewToken {
    /// A request for a token of `tenant` with `scopes`, no definition restriction.
    pub fn new(
        tenant: TenantId,
        scopes: impl IntoIterator<Item = Scope>,
        expires: Option<Timestamp>,
        description: &str,
    ) -> Self {
        Self {
            tenant,
            scopes: scopes.into_iter().collect(),
            definitions: None,
            expires,
            description: description.to_owned(),
        }
    }
}

/// A token just created or rotated: its info and its text, which is shown only now.
#[derive(Debug, Clone)]
pub struct CreatedToken {
    /// The token.
    pub info: TokenInfo,
    /// The bearer text (`ost_<id>_<secret>`).
    pub text: TokenText,
}

/// An authenticated caller: the token it presented and what that token may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    tenant: TenantId,
    token_id: TokenId,
    scopes: ScopeSet,
    definitions: Option<BTreeSet<ObjectType>>,
    expires: Option<Timestamp>,
}

impl Principal {
    /// The server operator: root rights for callers the server authenticated by other means
    /// (a preshared key, or a server run without authentication). Its token id is
    /// [`TokenId::operator`], which no issued token has.
    pub fn operator() -> Self {
        Self {
            tenant: TenantId::system(),
            token_id: TokenId::operator(),
            scopes: ScopeSet::from([Scope::Root]),
            definitions: None,
            expires: None,
        }
    }

    /// The token's tenant (the system tenant for root).
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// The token's id (the actor in audit entries).
    pub fn token_id(&self) -> &TokenId {
        &self.token_id
    }

    /// The token's scopes.
    pub fn scopes(&self) -> &ScopeSet {
        &self.scopes
    }

    /// The token's definition restriction, if any.
    pub fn definitions(&self) -> Option<&BTreeSet<ObjectType>> {
        self.definitions.as_ref()
    }

    /// The token's expiry.
    pub fn expires(&self) -> Option<Timestamp> {
        self.expires
    }

    /// Reports whether this is a root token.
    pub fn is_root(&self) -> bool {
        self.tenant.is_system() && self.scopes.contains(Scope::Root)
    }

    /// Reports whether the token may call the API group `scope` in `tenant`: root
    /// anywhere, others only in their own tenant and with the scope.
    pub fn allows(&self, tenant: &TenantId, scope: Scope) -> bool {
        self.is_root() || (&self.tenant == tenant && self.scopes.contains(scope))
    }

    /// Reports whether the token may touch resources (or subjects) of `definition`.
    pub fn allows_definition(&self, definition: &ObjectType) -> bool {
        self.is_root()
            || self
                .definitions
                .as_ref()
                .is_none_or(|allowed| allowed.contains(definition))
    }

    pub(crate) fn require_root(&self, what: &str) -> Result<(), TenancyError> {
        if self.is_root() {
            Ok(())
        } else {
            Err(TenancyError::PermissionDenied(format!(
                "only a root token may {what}"
            )))
        }
    }

    /// Checks that this token may give a token of `tenant` these attributes (create it,
    /// or hold the secret of an existing one); see the module documentation.
    fn check_grant(
        &self,
        tenant: &TenantId,
        scopes: &ScopeSet,
        definitions: Option<&BTreeSet<ObjectType>>,
        expires: Option<Timestamp>,
    ) -> Result<(), TenancyError> {
        if self.is_root() {
            return Ok(());
        }
        self.require_admin(tenant)?;
        let deny = |reason: String| Err(TenancyError::PermissionDenied(reason));
        if scopes.contains(Scope::Root) {
            return deny("only a root token may grant `root`".to_owned());
        }
        if !scopes.is_subset(&self.scopes) {
            let extra: ScopeSet = scopes
                .iter()
                .filter(|scope| !self.scopes.contains(*scope))
                .collect();
            return deny(format!(
                "cannot grant scopes `{extra}` the caller's token does not have"
            ));
        }
        if let Some(own) = &self.definitions {
            match definitions {
                None => {
                    return deny(
                        "a token restricted to definitions cannot grant an unrestricted token"
                            .to_owned(),
                    );
                }
                Some(requested) if !requested.is_subset(own) => {
                    let extra: Vec<&str> =
                        requested.difference(own).map(ObjectType::as_str).collect();
                    return deny(format!(
                        "cannot grant definitions `{}` outside the caller's restriction",
                        extra.join(",")
                    ));
                }
                Some(_) => {}
            }
        }
        if let Some(own) = self.expires {
            match expires {
                None => {
                    return deny("an expiring token cannot grant a non-expiring token".to_owned());
                }
                Some(requested) if requested > own => {
                    return deny(format!(
                        "cannot grant an expiry `{requested}` after the caller's own `{own}`"
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Checks that this token administers `tenant`'s tokens (root, or `admin` there).
    fn require_admin(&self, tenant: &TenantId) -> Result<(), TenancyError> {
        if self.is_root() {
            return Ok(());
        }
        if &self.tenant != tenant {
            return Err(TenancyError::PermissionDenied(
                "a token may only manage tokens of its own tenant".to_owned(),
            ));
        }
        if !self.scopes.contains(Scope::Admin) {
            return Err(TenancyError::PermissionDenied(
                "managing tokens needs the `admin` scope".to_owned(),
            ));
        }
        Ok(())
    }

    fn from_token(token: &TokenInfo) -> Self {
        Self {
            tenant: token.tenant.clone(),
            token_id: token.id.clone(),
            scopes: token.scopes.clone(),
            definitions: token.definitions.clone(),
            expires: token.expires,
        }
    }
}

impl Tenancy {
    /// Creates a token as `actor` (see the module documentation for what it may grant).
    /// The returned text is the only copy of the secret.
    ///
    /// # Errors
    ///
    /// [`TenancyError::PermissionDenied`] for an escalation, [`TenancyError::InvalidArgument`]
    /// for a request the policy refuses, [`TenancyError::TenantNotFound`] or
    /// [`TenancyError::TenantNotActive`], or a store error.
    pub fn create_token(
        &self,
        actor: &Principal,
        request: NewToken,
        ctx: &RequestContext,
    ) -> Result<CreatedToken, TenancyError> {
        actor.check_grant(
            &request.tenant,
            &request.scopes,
            request.definitions.as_ref(),
            request.expires,
        )?;
        self.insert_token(Some(actor.token_id()), request, ctx)
    }

    /// Creates a root token without an actor: the bootstrap credential the server makes on
    /// its first start (when [`Tenancy::has_root_token`] is false). The policy on expiry
    /// applies.
    ///
    /// # Errors
    ///
    /// As [`Tenancy::create_token`].
    pub fn create_root_token(
        &self,
        description: &str,
        expires: Option<Timestamp>,
        ctx: &RequestContext,
    ) -> Result<CreatedToken, TenancyError> {
        let request = NewToken::new(TenantId::system(), [Scope::Root], expires, description);
        self.insert_token(None, request, ctx)
    }

    /// Reports whether any root token exists.
    ///
    /// # Errors
    ///
    /// A store error.
    pub fn has_root_token(&self) -> Result<bool, TenancyError> {
        Ok(!self
            .store
            .scan_records(&TenantId::system(), &namespace(TOKENS)?, b"", 1)?
            .is_empty())
    }

    fn insert_token(
        &self,
        created_by: Option<&TokenId>,
        request: NewToken,
        ctx: &RequestContext,
    ) -> Result<CreatedToken, TenancyError> {
        let now = self.now();
        self.check_new_token(&request, now)?;
        let text = TokenText::generate()?;
        let info = TokenInfo {
            id: text.id().clone(),
            tenant: request.tenant.clone(),
            scopes: request.scopes,
            definitions: request.definitions,
            created: now,
            expires: request.expires,
            last_used: None,
            description: request.description,
            created_by: created_by.cloned(),
        };
        let stored = StoredToken {
            info: info.clone(),
            secrets: vec![StoredSecret {
                sha256: text.secret_hash(),
                valid_until: None,
            }],
        };
        // The index entry goes first: a crash between the two transactions leaves an
        // index entry without a token, which authenticates nothing.
        if !self.tenant_is_active(&info.tenant)? {
            return Err(match self.tenant(&info.tenant)? {
                None => TenancyError::TenantNotFound(info.tenant.to_string()),
                Some(tenant) => TenancyError::TenantNotActive {
                    tenant: info.tenant.to_string(),
                    state: tenant.state.to_string(),
                },
            });
        }
        let id_key = info.id.as_str().as_bytes().to_vec();
        self.store.read_write_with(&TenantId::system(), |txn| {
            txn.put_record(
                &namespace(TOKEN_INDEX)?,
                &id_key,
                info.tenant.as_str().as_bytes(),
            )
            .map_err(TenancyError::from)
        })?;
        let res = self.store.read_write_with(&info.tenant, |txn| {
            txn.put_record(&namespace(TOKENS)?, &id_key, &encode("token", &stored)?)?;
            let details = token_details(&info);
            audit::append(
                txn,
                &token_entry(created_by, "token.create", ctx, details),
                self.revision_seal(),
            )?;
            Ok(())
        });
        if let Err(err) = res {
            // Best effort: the dangling index entry is harmless anyway.
            let _ = self.store.read_write_with(&TenantId::system(), |txn| {
                txn.delete_record(&namespace(TOKEN_INDEX)?, &id_key)
                    .map_err(TenancyError::from)
            });
            return Err(err);
        }
        Ok(CreatedToken { info, text })
    }

    /// Checks a new token's tenant, scopes and expiry against the rules and the policy.
    fn check_new_token(&self, request: &NewToken, now: Timestamp) -> Result<(), TenancyError> {
        let invalid = |reason: String| Err(TenancyError::InvalidArgument(reason));
        if request.scopes.is_empty() {
            return invalid("a token needs at least one scope".to_owned());
        }
        if request.scopes.contains(Scope::Root) != request.tenant.is_system() {
            return invalid(
                "the `root` scope is for system tokens only, and system tokens are root".to_owned(),
            );
        }
        match request.expires {
            None if !self.policy.allow_non_expiring => invalid("an expiry is required".to_owned()),
            None => Ok(()),
            Some(expires) if expires <= now => {
                invalid(format!("expiry `{expires}` is not in the future"))
            }
            Some(expires) => match self.policy.max_lifetime {
                Some(max) if expires > add_duration(now, max) => invalid(format!(
                    "expiry `{expires}` exceeds the maximum token lifetime of {} seconds",
                    max.as_secs()
                )),
                _ => Ok(()),
            },
        }
    }

    /// Gives a token a new secret. The old secrets keep working for `grace` (zero: they
    /// stop at once), never past the token's expiry. Root, the token itself, or an admin
    /// of its tenant whose own token covers the rotated one's scopes, definitions and
    /// expiry (the new secret is a credential for it).
    ///
    /// # Errors
    ///
    /// [`TenancyError::PermissionDenied`], [`TenancyError::TokenNotFound`], or a store
    /// error.
    pub fn rotate_token(
        &self,
        actor: &Principal,
        tenant: &TenantId,
        id: &TokenId,
        grace: Duration,
        ctx: &RequestContext,
    ) -> Result<CreatedToken, TenancyError> {
        let text = TokenText::with_new_secret(id.clone())?;
        let now = self.now();
        let grace_end = add_duration(now, grace);
        let committed = self.store.read_write_with(tenant, |txn| {
            let mut stored =
                read_token(txn, id)?.ok_or_else(|| TenancyError::TokenNotFound(id.to_string()))?;
            if actor.token_id() != id {
                let info = &stored.info;
                actor.check_grant(
                    tenant,
                    &info.scopes,
                    info.definitions.as_ref(),
                    info.expires,
                )?;
            }
            stored.secrets.retain(|secret| secret.valid_at(now));
            for secret in &mut stored.secrets {
                secret.valid_until = Some(match secret.valid_until {
                    Some(until) => until.min(grace_end),
                    None => grace_end,
                });
            }
            stored.secrets.push(StoredSecret {
                sha256: text.secret_hash(),
                valid_until: None,
            });
            txn.put_record(
                &namespace(TOKENS)?,
                id.as_str().as_bytes(),
                &encode("token", &stored)?,
            )?;
            let mut details = token_details(&stored.info);
            details["grace_seconds"] = serde_json::json!(grace.as_secs());
            audit::append(
                txn,
                &token_entry(Some(actor.token_id()), "token.rotate", ctx, details),
                self.revision_seal(),
            )?;
            Ok::<_, TenancyError>(stored.info)
        });
        self.forget_token(id);
        Ok(CreatedToken {
            info: committed?.value,
            text,
        })
    }

    /// Revokes a token: it stops authenticating at once (in this process immediately;
    /// other processes sharing the datastore once their index entry is gone, see
    /// [`Tenancy::forget_cached_tokens`]). Root, the token itself, or an admin of its
    /// tenant.
    ///
    /// # Errors
    ///
    /// [`TenancyError::PermissionDenied`], [`TenancyError::TokenNotFound`], or a store
    /// error.
    pub fn revoke_token(
        &self,
        actor: &Principal,
        tenant: &TenantId,
        id: &TokenId,
        ctx: &RequestContext,
    ) -> Result<(), TenancyError> {
        if actor.token_id() != id {
            actor.require_admin(tenant)?;
        }
        let res = self.store.read_write_with(tenant, |txn| {
            let stored =
                read_token(txn, id)?.ok_or_else(|| TenancyError::TokenNotFound(id.to_string()))?;
            txn.delete_record(&namespace(TOKENS)?, id.as_str().as_bytes())?;
            audit::append(
                txn,
                &token_entry(
                    Some(actor.token_id()),
                    "token.revoke",
                    ctx,
                    token_details(&stored.info),
                ),
                self.revision_seal(),
            )?;
            Ok::<_, TenancyError>(())
        });
        self.forget_token(id);
        res?;
        self.store.read_write_with(&TenantId::system(), |txn| {
            txn.delete_record(&namespace(TOKEN_INDEX)?, id.as_str().as_bytes())
                .map_err(TenancyError::from)
        })?;
        Ok(())
    }

    /// Lists a tenant's tokens by id (root or an admin of the tenant).
    ///
    /// # Errors
    ///
    /// [`TenancyError::PermissionDenied`] or a store error.
    pub fn list_tokens(
        &self,
        actor: &Principal,
        tenant: &TenantId,
    ) -> Result<Vec<TokenInfo>, TenancyError> {
        actor.require_admin(tenant)?;
        let tokens = namespace(TOKENS)?;
        let pending = self.last_used.lock().clone();
        let mut out = Vec::new();
        let mut start = Vec::new();
        loop {
            let page = self.store.scan_records(tenant, &tokens, &start, 256)?;
            let Some(last) = page.last() else {
                return Ok(out);
            };
            start = record_key_successor(&last.key);
            for record in &page {
                let mut info = decode::<StoredToken>("token", &record.value)?.info;
                if let Some((_, used)) = pending.get(&info.id) {
                    info.last_used = Some(info.last_used.map_or(*used, |old| old.max(*used)));
                }
                out.push(info);
            }
        }
    }

    /// Authenticates a presented token text.
    ///
    /// The secret is hashed and compared in constant time with each stored hash, also when
    /// the id is unknown (against a dummy), so neither the answer nor the work done tells
    /// whether the id exists.
    ///
    /// # Errors
    ///
    /// [`AuthError::Invalid`] for anything wrong with the token itself,
    /// [`AuthError::Expired`] and [`AuthError::TenantNotActive`] for a correct secret, or
    /// [`AuthError::Unavailable`].
    pub fn authenticate(&self, presented: &str) -> Result<Principal, AuthError> {
        let Ok(text) = TokenText::parse(presented) else {
            return Err(AuthError::Invalid);
        };
        let now = self.now();
        let stored = self
            .lookup_token(text.id())
            .map_err(AuthError::Unavailable)?;
        let presented_hash = text.secret_hash();
        let Some(stored) = stored else {
            // Same work as for a known token with one secret.
            let _ = presented_hash.matches(&SecretHash::dummy());
            return Err(AuthError::Invalid);
        };
        // Compare with every secret (no early exit), then judge validity.
        let mut valid = false;
        for secret in &stored.secrets {
            let matched = presented_hash.matches(&secret.sha256);
            valid |= matched && secret.valid_at(now);
        }
        if !valid {
            return Err(AuthError::Invalid);
        }
        let info = &stored.info;
        if info.expires.is_some_and(|expires| expires <= now) {
            return Err(AuthError::Expired);
        }
        if !self
            .tenant_is_active(&info.tenant)
            .map_err(AuthError::Unavailable)?
        {
            return Err(AuthError::TenantNotActive);
        }
        self.last_used
            .lock()
            .insert(info.id.clone(), (info.tenant.clone(), now));
        Ok(Principal::from_token(info))
    }

    /// The tenant holding the token `id`, if it exists.
    ///
    /// # Errors
    ///
    /// A store error, or a corrupt index.
    pub fn token_tenant(&self, id: &TokenId) -> Result<Option<TenantId>, TenancyError> {
        Ok(self
            .lookup_token(id)?
            .map(|stored| stored.info.tenant.clone()))
    }

    /// Finds a token's record: in the in-memory index, else through the system tenant's
    /// id index.
    fn lookup_token(&self, id: &TokenId) -> Result<Option<Arc<StoredToken>>, TenancyError> {
        if let Some(stored) = self.token_cache.read().get(id) {
            return Ok(Some(Arc::clone(stored)));
        }
        let id_key = id.as_str().as_bytes();
        let Some(tenant) =
            self.store
                .read_record(&TenantId::system(), &namespace(TOKEN_INDEX)?, id_key)?
        else {
            return Ok(None);
        };
        let tenant = tenant_text::parse(&String::from_utf8_lossy(&tenant))
            .map_err(|err| TenancyError::Internal(format!("token index is corrupt: {err}")))?;
        let Some(bytes) = self
            .store
            .read_record(&tenant, &namespace(TOKENS)?, id_key)?
        else {
            return Ok(None);
        };
        let stored: Arc<StoredToken> = Arc::new(decode("token", &bytes)?);
        if stored.info.id != *id || stored.info.tenant != tenant {
            return Err(TenancyError::Internal(format!(
                "token record `{id}` does not match its index entry"
            )));
        }
        self.token_cache
            .write()
            .insert(id.clone(), Arc::clone(&stored));
        Ok(Some(stored))
    }

    /// Writes the last-use times noted by [`Tenancy::authenticate`] to the token records
    /// (one transaction per tenant) and returns how many it wrote. The server calls it
    /// periodically, so authentication itself never writes.
    ///
    /// # Errors
    ///
    /// A store error; the times not written are kept for the next call.
    pub fn flush_last_used(&self) -> Result<usize, TenancyError> {
        let pending: HashMap<TokenId, (TenantId, Timestamp)> =
            std::mem::take(&mut *self.last_used.lock());
        let mut by_tenant: HashMap<TenantId, Vec<(TokenId, Timestamp)>> = HashMap::new();
        for (id, (tenant, used)) in &pending {
            by_tenant
                .entry(tenant.clone())
                .or_default()
                .push((id.clone(), *used));
        }
        let mut n_written = 0;
        for (tenant, uses) in by_tenant {
            let res = self.store.read_write_with(&tenant, |txn| {
                let mut n_updated = 0;
                for (id, used) in &uses {
                    let Some(mut stored) = read_token(txn, id)? else {
                        continue;
                    };
                    if stored.info.last_used.is_some_and(|old| old >= *used) {
                        continue;
                    }
                    stored.info.last_used = Some(*used);
                    txn.put_record(
                        &namespace(TOKENS)?,
                        id.as_str().as_bytes(),
                        &encode("token", &stored)?,
                    )?;
                    n_updated += 1;
                }
                Ok::<_, TenancyError>(n_updated)
            });
            match res {
                Ok(committed) => n_written += committed.value,
                Err(err) => {
                    let mut last_used = self.last_used.lock();
                    for (id, used) in uses {
                        last_used.entry(id).or_insert((tenant.clone(), used));
                    }
                    return Err(err);
                }
            }
        }
        Ok(n_written)
    }

    /// The ids of every token of `tenant`.
    pub(crate) fn token_ids(&self, tenant: &TenantId) -> Result<Vec<Vec<u8>>, TenancyError> {
        let tokens = namespace(TOKENS)?;
        let mut out = Vec::new();
        let mut start = Vec::new();
        loop {
            let page = self.store.scan_records(tenant, &tokens, &start, 256)?;
            let Some(last) = page.last() else {
                return Ok(out);
            };
            start = record_key_successor(&last.key);
            out.extend(page.into_iter().map(|record| record.key));
        }
    }

    /// Removes tokens' entries from the id index (in a system tenant transaction).
    pub(crate) fn remove_index_entries(
        &self,
        txn: &mut dyn WriteTxn,
        token_ids: &[Vec<u8>],
    ) -> Result<(), TenancyError> {
        let index = namespace(TOKEN_INDEX)?;
        for id in token_ids {
            txn.delete_record(&index, id)?;
        }
        Ok(())
    }

    /// Empties the in-memory token index and tenant cache. A deployment where several
    /// processes share one datastore calls it on a timer (or on a change notification) so
    /// that revocations and tenant changes made elsewhere take effect; within one process
    /// they are immediate.
    pub fn forget_cached_tokens(&self) {
        self.token_cache.write().clear();
        self.tenant_cache.write().clear();
    }

    fn forget_token(&self, id: &TokenId) {
        self.token_cache.write().remove(id);
    }

    pub(crate) fn forget_tenant_tokens(&self, tenant: &TenantId) {
        self.token_cache
            .write()
            .retain(|_, stored| &stored.info.tenant != tenant);
        self.last_used
            .lock()
            .retain(|_, (token_tenant, _)| token_tenant != tenant);
    }
}

fn read_token(txn: &mut dyn WriteTxn, id: &TokenId) -> Result<Option<StoredToken>, TenancyError> {
    txn.read_record(&namespace(TOKENS)?, id.as_str().as_bytes())?
        .map(|bytes| decode("token", &bytes))
        .transpose()
}

/// What the audit log records about a token (never a secret or its hash).
fn token_details(info: &TokenInfo) -> serde_json::Value {
    serde_json::json!({
        "token": info.id,
        "scopes": info.scopes,
        "definitions": info.definitions,
        "expires": info.expires,
        "description": info.description,
    })
}

fn token_entry(
    actor: Option<&TokenId>,
    action: &str,
    ctx: &RequestContext,
    details: serde_json::Value,
) -> NewAuditEntry {
    NewAuditEntry {
        action: action.to_owned(),
        actor: actor.map(ToString::to_string),
        request_id: ctx.request_id.clone(),
        client_address: ctx.client_address.clone(),
        on_behalf_of: ctx.on_behalf_of.clone(),
        details,
    }
}

/// A tenant id as stored in token records: any valid id, or the system tenant (which the
/// validated form rejects on purpose).
mod tenant_text {
    use ostiary_types::{TenantId, TypesError};

    pub(super) fn parse(text: &str) -> Result<TenantId, TypesError> {
        if text == TenantId::SYSTEM {
            Ok(TenantId::system())
        } else {
            TenantId::new(text)
        }
    }

    pub(super) fn serialize<S: serde::Serializer>(
        tenant: &TenantId,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(tenant.as_str())
    }

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<TenantId, D::Error> {
        let text: String = serde::Deserialize::deserialize(deserializer)?;
        parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use ostiary_store::{Clock, Datastore};

    use super::*;
    use crate::audit::{self, AuditFilter, Verification};
    use crate::testing::{DAY, Fixture, HOUR};

    fn object_types(names: &[&str]) -> BTreeSet<ObjectType> {
        names
            .iter()
            .map(|name| ObjectType::new(name).unwrap())
            .collect()
    }

    fn denied(res: Result<CreatedToken, TenancyError>) -> String {
        match res {
            Err(TenancyError::PermissionDenied(reason)) => reason,
            other => panic!("expected a permission error, got {other:?}"),
        }
    }

    #[test]
    fn create_and_authenticate() {
        let fx = Fixture::new();
        let created = fx.token(&[Scope::Check, Scope::Read], Some(2));
        let principal = fx.tenancy.authenticate(created.text.expose()).unwrap();
        assert_eq!(principal.tenant(), &fx.acme);
        assert_eq!(principal.token_id(), created.text.id());
        assert_eq!(principal.scopes().to_string(), "check,read");
        assert_eq!(principal.expires(), Some(fx.in_hours(2)));
        assert!(!principal.is_root());
        assert!(principal.allows(&fx.acme, Scope::Check));
        assert!(principal.allows(&fx.acme, Scope::Read));
        assert!(!principal.allows(&fx.acme, Scope::Write));
        let other = TenantId::new("other").unwrap();
        assert!(!principal.allows(&other, Scope::Check));
        assert!(principal.allows_definition(&ObjectType::new("document").unwrap()));
        assert_eq!(created.info.created_by.as_ref(), Some(fx.root.token_id()));

        // Root can do anything anywhere.
        assert!(fx.root.is_root());
        assert!(fx.root.allows(&other, Scope::Write));
        assert!(
            fx.root
                .allows_definition(&ObjectType::new("document").unwrap())
        );

        // The token is listed (no secret in the info) and its creation audited in acme.
        let listed = fx.tenancy.list_tokens(&fx.root, &fx.acme).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, created.info.id);
        let json = serde_json::to_string(&listed[0]).unwrap();
        assert!(!json.contains(created.text.expose()), "{json}");
        let entries =
            audit::read(fx.store.as_ref(), &fx.acme, &AuditFilter::default(), 0, 10).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].action, "token.create");
        assert_eq!(
            entries[0].actor.as_deref(),
            Some(fx.root.token_id().as_str())
        );
        assert_eq!(entries[0].request_id.as_deref(), Some("req-1"));
        assert!(entries[0].details.contains(created.info.id.as_str()));
        assert!(!entries[0].details.contains(created.text.expose()));
    }

    #[test]
    fn definition_restriction() {
        let fx = Fixture::new();
        let mut request = NewToken::new(fx.acme.clone(), [Scope::Check], Some(fx.in_hours(1)), "");
        request.definitions = Some(object_types(&["document"]));
        let created = fx.tenancy.create_token(&fx.root, request, &fx.ctx).unwrap();
        let principal = fx.tenancy.authenticate(created.text.expose()).unwrap();
        assert!(principal.allows_definition(&ObjectType::new("document").unwrap()));
        assert!(!principal.allows_definition(&ObjectType::new("folder").unwrap()));
        assert_eq!(principal.definitions(), Some(&object_types(&["document"])));
    }

    #[test]
    fn unknown_id_and_wrong_secret_look_alike() {
        let fx = Fixture::new();
        let created = fx.token(&[Scope::Check], Some(1));
        let text = created.text.expose();
        let id = created.text.id().as_str();
        let wrong_secret = format!("ost_{id}_{}", "0".repeat(52));
        let unknown_id = format!("ost_{}_{}", "0".repeat(16), &text[21..]);
        let errors: Vec<String> = [
            wrong_secret.as_str(),
            unknown_id.as_str(),
            "ost_garbage",
            "",
            "Bearer x",
        ]
        .iter()
        .map(|presented| {
            let err = fx.tenancy.authenticate(presented).unwrap_err();
            assert!(matches!(err, AuthError::Invalid), "{presented}: {err:?}");
            err.to_string()
        })
        .collect();
        assert!(errors.iter().all(|message| message == "invalid token"));
        assert!(fx.tenancy.authenticate(text).is_ok());
    }

    #[test]
    fn constant_time_comparison_is_used() {
        // The hash comparison goes through `subtle`, never `==` on the hash text.
        let source = include_str!("token_text.rs");
        let body = source
            .split("pub(crate) fn matches")
            .nth(1)
            .and_then(|rest| rest.split("\n    }").next())
            .unwrap();
        assert!(body.contains(".ct_eq("), "{body}");
        assert!(!body.contains("=="), "{body}");
        // And authentication compares with every stored secret, without an early exit.
        let auth = include_str!("tokens.rs")
            .split("pub fn authenticate")
            .nth(1)
            .unwrap();
        assert!(auth.contains("valid |= matched"));
        assert!(auth.contains("SecretHash::dummy()"));
    }

    #[test]
    fn expiry_follows_the_clock() {
        let fx = Fixture::new();
        let created = fx.token(&[Scope::Check], Some(1));
        let text = created.text.expose();
        assert!(fx.tenancy.authenticate(text).is_ok());
        fx.clock.advance(HOUR - std::time::Duration::from_secs(1));
        assert!(fx.tenancy.authenticate(text).is_ok());
        fx.clock.advance(std::time::Duration::from_secs(1));
        assert!(matches!(
            fx.tenancy.authenticate(text),
            Err(AuthError::Expired)
        ));
        // Expiry is only revealed to the holder of the right secret.
        let wrong = format!("ost_{}_{}", created.text.id(), "1".repeat(52));
        assert!(matches!(
            fx.tenancy.authenticate(&wrong),
            Err(AuthError::Invalid)
        ));
    }

    #[test]
    fn policy_on_expiry() {
        let fx = Fixture::new();
        let create = |expires: Option<Timestamp>| {
            fx.tenancy.create_token(
                &fx.root,
                NewToken::new(fx.acme.clone(), [Scope::Check], expires, ""),
                &fx.ctx,
            )
        };
        let invalid = |res: Result<CreatedToken, TenancyError>| match res {
            Err(TenancyError::InvalidArgument(reason)) => reason,
            other => panic!("expected invalid argument, got {other:?}"),
        };
        assert_eq!(invalid(create(None)), "an expiry is required");
        assert!(invalid(create(Some(fx.clock.now()))).contains("is not in the future"));
        let too_late = add_duration(fx.clock.now(), TokenPolicy::DEFAULT_MAX_LIFETIME + HOUR);
        assert!(invalid(create(Some(too_late))).contains("exceeds the maximum token lifetime"));
        let at_max = add_duration(fx.clock.now(), TokenPolicy::DEFAULT_MAX_LIFETIME);
        assert!(create(Some(at_max)).is_ok());
        assert_eq!(
            invalid(fx.tenancy.create_token(
                &fx.root,
                NewToken::new(fx.acme.clone(), [], Some(fx.in_hours(1)), ""),
                &fx.ctx,
            )),
            "a token needs at least one scope"
        );
        // Root only in the system tenant, and system tokens are root.
        assert!(
            invalid(fx.tenancy.create_token(
                &fx.root,
                NewToken::new(fx.acme.clone(), [Scope::Root], Some(fx.in_hours(1)), ""),
                &fx.ctx,
            ))
            .contains("system tokens only")
        );
        assert!(
            invalid(fx.tenancy.create_token(
                &fx.root,
                NewToken::new(TenantId::system(), [Scope::Check], Some(fx.in_hours(1)), ""),
                &fx.ctx,
            ))
            .contains("system tokens only")
        );

        // A policy that allows non-expiring tokens, without a lifetime cap.
        let lenient = Fixture::with_policy(TokenPolicy {
            allow_non_expiring: true,
            max_lifetime: None,
        });
        let forever = lenient.token(&[Scope::Check], None);
        assert_eq!(forever.info.expires, None);
        lenient.clock.advance(3650 * DAY);
        assert!(lenient.tenancy.authenticate(forever.text.expose()).is_ok());
    }

    #[test]
    fn tokens_need_an_active_tenant() {
        let fx = Fixture::new();
        let nowhere = TenantId::new("nowhere").unwrap();
        let res = fx.tenancy.create_token(
            &fx.root,
            NewToken::new(nowhere, [Scope::Check], Some(fx.in_hours(1)), ""),
            &fx.ctx,
        );
        assert!(
            matches!(res, Err(TenancyError::TenantNotFound(_))),
            "{res:?}"
        );
        fx.tenancy
            .suspend_tenant(&fx.root, &fx.acme, &fx.ctx)
            .unwrap();
        let res = fx.tenancy.create_token(
            &fx.root,
            NewToken::new(fx.acme.clone(), [Scope::Check], Some(fx.in_hours(1)), ""),
            &fx.ctx,
        );
        assert!(
            matches!(&res, Err(TenancyError::TenantNotActive { state, .. }) if state == "suspended"),
            "{res:?}"
        );
    }

    #[test]
    fn rotation_keeps_the_old_secret_for_the_grace_period() {
        let fx = Fixture::new();
        let admin = fx.principal(&[Scope::Admin, Scope::Check], Some(48));
        let created = fx.token(&[Scope::Check], Some(24));
        let old = created.text.expose().to_owned();
        let rotated = fx
            .tenancy
            .rotate_token(
                &admin,
                &fx.acme,
                created.text.id(),
                10 * 60 * std::time::Duration::from_secs(1),
                &fx.ctx,
            )
            .unwrap();
        assert_eq!(rotated.text.id(), created.text.id());
        assert_ne!(rotated.text.expose(), old);
        assert_eq!(rotated.info.scopes, created.info.scopes);
        let new = rotated.text.expose().to_owned();
        assert!(fx.tenancy.authenticate(&old).is_ok());
        assert!(fx.tenancy.authenticate(&new).is_ok());
        fx.clock.advance(std::time::Duration::from_secs(9 * 60));
        assert!(fx.tenancy.authenticate(&old).is_ok());
        fx.clock.advance(std::time::Duration::from_secs(60));
        assert!(matches!(
            fx.tenancy.authenticate(&old),
            Err(AuthError::Invalid)
        ));
        assert!(fx.tenancy.authenticate(&new).is_ok());

        // A rotation without grace cuts the previous secret off at once, and a second
        // rotation never extends an earlier grace period.
        let third = fx
            .tenancy
            .rotate_token(&admin, &fx.acme, created.text.id(), HOUR, &fx.ctx)
            .unwrap();
        let fourth = fx
            .tenancy
            .rotate_token(
                &admin,
                &fx.acme,
                created.text.id(),
                std::time::Duration::ZERO,
                &fx.ctx,
            )
            .unwrap();
        assert!(matches!(
            fx.tenancy.authenticate(&new),
            Err(AuthError::Invalid)
        ));
        assert!(matches!(
            fx.tenancy.authenticate(third.text.expose()),
            Err(AuthError::Invalid)
        ));
        assert!(fx.tenancy.authenticate(fourth.text.expose()).is_ok());

        // Rotation is audited, with the grace period and without secrets.
        let rotations = audit::read(
            fx.store.as_ref(),
            &fx.acme,
            &AuditFilter {
                action: Some("token.rotate".to_owned()),
                ..AuditFilter::default()
            },
            0,
            10,
        )
        .unwrap();
        assert_eq!(rotations.len(), 3);
        assert!(rotations[0].details.contains("\"grace_seconds\":600"));
        assert_eq!(
            rotations[0].actor.as_deref(),
            Some(admin.token_id().as_str())
        );

        // Unknown tokens cannot be rotated.
        let unknown = TokenId::new("0000000000000000").unwrap();
        assert!(matches!(
            fx.tenancy
                .rotate_token(&admin, &fx.acme, &unknown, HOUR, &fx.ctx),
            Err(TenancyError::TokenNotFound(_))
        ));
    }

    #[test]
    fn revocation_is_immediate() {
        let fx = Fixture::new();
        let admin = fx.principal(&[Scope::Admin], Some(48));
        let created = fx.token(&[Scope::Check], Some(24));
        let text = created.text.expose();
        // Authenticate first so that the token sits in the in-memory index.
        assert!(fx.tenancy.authenticate(text).is_ok());
        fx.tenancy
            .revoke_token(&admin, &fx.acme, created.text.id(), &fx.ctx)
            .unwrap();
        assert!(matches!(
            fx.tenancy.authenticate(text),
            Err(AuthError::Invalid)
        ));
        let listed = fx.tenancy.list_tokens(&admin, &fx.acme).unwrap();
        assert!(listed.iter().all(|info| info.id != created.info.id));
        assert!(matches!(
            fx.tenancy
                .revoke_token(&admin, &fx.acme, created.text.id(), &fx.ctx),
            Err(TenancyError::TokenNotFound(_))
        ));
        // A fresh service over the same store agrees (nothing lingers in the index record).
        let other = Tenancy::new(fx.store.clone(), fx.clock.clone(), TokenPolicy::default());
        assert!(matches!(other.authenticate(text), Err(AuthError::Invalid)));
        // A token may revoke itself without `admin`.
        let checker = fx.principal(&[Scope::Check], Some(1));
        fx.tenancy
            .revoke_token(&checker, &fx.acme, checker.token_id(), &fx.ctx)
            .unwrap();
    }

    #[test]
    fn no_privilege_escalation() {
        let fx = Fixture::new();
        let admin = fx.principal(&[Scope::Admin, Scope::Check, Scope::Read], Some(24));
        let request = |scopes: &[Scope], expires: Option<Timestamp>| {
            NewToken::new(fx.acme.clone(), scopes.iter().copied(), expires, "")
        };
        let in_hour = Some(fx.in_hours(1));

        // Within its own powers: fine, including another admin.
        assert!(
            fx.tenancy
                .create_token(&admin, request(&[Scope::Check], in_hour), &fx.ctx)
                .is_ok()
        );
        assert!(
            fx.tenancy
                .create_token(
                    &admin,
                    request(&[Scope::Admin, Scope::Read], in_hour),
                    &fx.ctx
                )
                .is_ok()
        );
        // More scopes than it has.
        let reason = denied(fx.tenancy.create_token(
            &admin,
            request(&[Scope::Check, Scope::Write, Scope::Schema], in_hour),
            &fx.ctx,
        ));
        assert_eq!(
            reason,
            "cannot grant scopes `write,schema` the caller's token does not have"
        );
        // Root, from a non-root token, in its tenant or the system tenant.
        assert_eq!(
            denied(fx.tenancy.create_token(
                &admin,
                request(&[Scope::Root, Scope::Check], in_hour),
                &fx.ctx,
            )),
            "only a root token may grant `root`"
        );
        assert_eq!(
            denied(fx.tenancy.create_token(
                &admin,
                NewToken::new(TenantId::system(), [Scope::Root], in_hour, ""),
                &fx.ctx,
            )),
            "a token may only manage tokens of its own tenant"
        );
        // Another tenant.
        let globex = TenantId::new("globex").unwrap();
        fx.tenancy
            .create_tenant(&fx.root, &globex, Default::default(), "", &fx.ctx)
            .unwrap();
        assert_eq!(
            denied(fx.tenancy.create_token(
                &admin,
                NewToken::new(globex.clone(), [Scope::Check], in_hour, ""),
                &fx.ctx,
            )),
            "a token may only manage tokens of its own tenant"
        );
        // Without `admin`, not even a weaker token.
        let checker = fx.principal(&[Scope::Check], Some(24));
        assert_eq!(
            denied(
                fx.tenancy
                    .create_token(&checker, request(&[Scope::Check], in_hour), &fx.ctx)
            ),
            "managing tokens needs the `admin` scope"
        );
        // A later expiry than its own, or none at all (even where the policy allows it).
        assert!(
            denied(fx.tenancy.create_token(
                &admin,
                request(&[Scope::Check], Some(fx.in_hours(25))),
                &fx.ctx,
            ))
            .starts_with("cannot grant an expiry")
        );
        let lenient = Fixture::with_policy(TokenPolicy {
            allow_non_expiring: true,
            max_lifetime: None,
        });
        let lenient_admin = lenient.principal(&[Scope::Admin, Scope::Check], Some(24));
        assert_eq!(
            denied(lenient.tenancy.create_token(
                &lenient_admin,
                NewToken::new(lenient.acme.clone(), [Scope::Check], None, ""),
                &lenient.ctx,
            )),
            "an expiring token cannot grant a non-expiring token"
        );

        // Definition restrictions only narrow.
        let mut restricted_request = request(&[Scope::Admin, Scope::Check], Some(fx.in_hours(24)));
        restricted_request.definitions = Some(object_types(&["document", "folder"]));
        let restricted = fx
            .tenancy
            .create_token(&fx.root, restricted_request, &fx.ctx)
            .unwrap();
        let restricted = fx.tenancy.authenticate(restricted.text.expose()).unwrap();
        assert_eq!(
            denied(fx.tenancy.create_token(
                &restricted,
                request(&[Scope::Check], in_hour),
                &fx.ctx
            )),
            "a token restricted to definitions cannot grant an unrestricted token"
        );
        let mut wider = request(&[Scope::Check], in_hour);
        wider.definitions = Some(object_types(&["document", "user"]));
        assert_eq!(
            denied(fx.tenancy.create_token(&restricted, wider, &fx.ctx)),
            "cannot grant definitions `user` outside the caller's restriction"
        );
        let mut narrower = request(&[Scope::Check], in_hour);
        narrower.definitions = Some(object_types(&["document"]));
        assert!(
            fx.tenancy
                .create_token(&restricted, narrower, &fx.ctx)
                .is_ok()
        );

        // Rotating a stronger token would hand over its secret: refused.
        let writer = fx.token(&[Scope::Write], Some(2));
        assert!(matches!(
            fx.tenancy
                .rotate_token(&admin, &fx.acme, writer.text.id(), HOUR, &fx.ctx),
            Err(TenancyError::PermissionDenied(_))
        ));
        // But a token may rotate itself, even without `admin`.
        let rotated = fx
            .tenancy
            .rotate_token(&checker, &fx.acme, checker.token_id(), HOUR, &fx.ctx)
            .unwrap();
        assert_eq!(rotated.info.scopes, *checker.scopes());
        // Revoking others needs `admin`; listing too.
        assert!(matches!(
            fx.tenancy
                .revoke_token(&checker, &fx.acme, writer.text.id(), &fx.ctx),
            Err(TenancyError::PermissionDenied(_))
        ));
        assert!(matches!(
            fx.tenancy.list_tokens(&checker, &fx.acme),
            Err(TenancyError::PermissionDenied(_))
        ));
        assert!(matches!(
            fx.tenancy.list_tokens(&admin, &globex),
            Err(TenancyError::PermissionDenied(_))
        ));

        // Root can create anything anywhere, including root tokens.
        let root_created = fx
            .tenancy
            .create_token(
                &fx.root,
                NewToken::new(TenantId::system(), [Scope::Root], Some(fx.in_hours(1)), ""),
                &fx.ctx,
            )
            .unwrap();
        assert!(
            fx.tenancy
                .authenticate(root_created.text.expose())
                .unwrap()
                .is_root()
        );
        assert!(
            fx.tenancy
                .create_token(
                    &fx.root,
                    NewToken::new(
                        globex,
                        Scope::ALL.into_iter().filter(|s| *s != Scope::Root),
                        in_hour,
                        ""
                    ),
                    &fx.ctx,
                )
                .is_ok()
        );
    }

    #[test]
    fn suspended_and_deleted_tenants_refuse_their_tokens() {
        let fx = Fixture::new();
        let created = fx.token(&[Scope::Check], Some(24));
        let text = created.text.expose();
        fx.tenancy
            .suspend_tenant(&fx.root, &fx.acme, &fx.ctx)
            .unwrap();
        assert!(matches!(
            fx.tenancy.authenticate(text),
            Err(AuthError::TenantNotActive)
        ));
        fx.tenancy
            .resume_tenant(&fx.root, &fx.acme, &fx.ctx)
            .unwrap();
        assert!(fx.tenancy.authenticate(text).is_ok());
        fx.tenancy
            .delete_tenant(&fx.root, &fx.acme, &fx.ctx)
            .unwrap();
        assert!(matches!(
            fx.tenancy.authenticate(text),
            Err(AuthError::TenantNotActive)
        ));
        fx.tenancy.purge_tenant(&fx.acme, &fx.ctx).unwrap();
        assert!(matches!(
            fx.tenancy.authenticate(text),
            Err(AuthError::Invalid)
        ));
        // The id index holds nothing of the purged tenant.
        let index = namespace(TOKEN_INDEX).unwrap();
        assert_eq!(
            fx.store
                .read_record(
                    &TenantId::system(),
                    &index,
                    created.text.id().as_str().as_bytes()
                )
                .unwrap(),
            None
        );
        // Root still works.
        assert!(fx.tenancy.list_tenants(&fx.root).unwrap().is_empty());
    }

    #[test]
    fn last_use_is_recorded_without_writing_on_authentication() {
        let fx = Fixture::new();
        let created = fx.token(&[Scope::Check], Some(24));
        let head = fx.store.head_revision().unwrap();
        fx.clock.advance(HOUR);
        fx.tenancy.authenticate(created.text.expose()).unwrap();
        let used_at = fx.clock.now();
        assert_eq!(
            fx.store.head_revision().unwrap(),
            head,
            "authentication wrote"
        );
        // Listed from memory before the flush.
        let listed = fx.tenancy.list_tokens(&fx.root, &fx.acme).unwrap();
        assert_eq!(listed[0].last_used, Some(used_at));
        // Root's own use is pending too: two tokens, two tenants.
        assert_eq!(fx.tenancy.flush_last_used().unwrap(), 2);
        assert_eq!(fx.tenancy.flush_last_used().unwrap(), 0);
        let fresh = Tenancy::new(fx.store.clone(), fx.clock.clone(), TokenPolicy::default());
        let listed = fresh.list_tokens(&fx.root, &fx.acme).unwrap();
        assert_eq!(listed[0].last_used, Some(used_at));
        // Token writes are all in acme's audit chain, which stays intact.
        assert!(matches!(
            audit::verify(fx.store.as_ref(), &fx.acme).unwrap(),
            Verification::Intact { n_entries: 1, .. }
        ));
        assert!(fx.tenancy.has_root_token().unwrap());
    }
}
