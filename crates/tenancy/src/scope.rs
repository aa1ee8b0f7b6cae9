//! Token scopes: what API groups a token may call, and the subset rule that keeps a token
//! from granting more than it has.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use crate::TenancyError;

/// One API group a token may call.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Check, CheckBulk, Expand, LookupResources, LookupSubjects.
    Check,
    /// ReadRelationships, ExportBulk, ReadSchema, ReflectSchema.
    Read,
    /// WriteRelationships, DeleteRelationships, ImportBulk.
    Write,
    /// WriteSchema.
    Schema,
    /// Watch.
    Watch,
    /// Managing the tenant's tokens and reading its audit log.
    Admin,
    /// Server-wide: tenant management and everything in every tenant. Only tokens of the
    /// [system tenant](ostiary_types::TenantId::system) hold it.
    Root,
}

impl Scope {
    /// Every scope, in order.
    pub const ALL: [Scope; 7] = [
        Scope::Check,
        Scope::Read,
        Scope::Write,
        Scope::Schema,
        Scope::Watch,
        Scope::Admin,
        Scope::Root,
    ];

    /// The scope's name as tokens, configuration and the API spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Check => "check",
            Self::Read => "read",
            Self::Write => "write",
            Self::Schema => "schema",
            Self::Watch => "watch",
            Self::Admin => "admin",
            Self::Root => "root",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = TenancyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == text)
            .ok_or_else(|| TenancyError::InvalidArgument(format!("unknown scope `{text}`")))
    }
}

/// A set of scopes.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ScopeSet(BTreeSet<Scope>);

impl ScopeSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reports whether the set holds `scope` itself (root does not imply the others here;
    /// see [`Principal::allows`](crate::Principal::allows) for that).
    pub fn contains(&self, scope: Scope) -> bool {
        self.0.contains(&scope)
    }

    /// Reports whether every scope of `self` is in `other`.
    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0.is_subset(&other.0)
    }

    /// Reports whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The scopes in order.
    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        self.0.iter().copied()
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl<const N: usize> From<[Scope; N]> for ScopeSet {
    fn from(scopes: [Scope; N]) -> Self {
        scopes.into_iter().collect()
    }
}

impl fmt::Display for ScopeSet {
    /// Writes the scopes comma-separated, e.g. `check,read`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Scope::as_str).collect();
        f.write_str(&names.join(","))
    }
}

impl FromStr for ScopeSet {
    type Err = TenancyError;

    /// Parses comma-separated scope names (`check,read`); the empty string is the empty set.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        text.split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(Scope::from_str)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for scope in Scope::ALL {
            assert_eq!(scope.as_str().parse::<Scope>().unwrap(), scope);
            assert_eq!(
                serde_json::to_string(&scope).unwrap(),
                format!("\"{scope}\"")
            );
        }
        let err = "Check".parse::<Scope>().unwrap_err();
        assert_eq!(err.to_string(), "invalid argument: unknown scope `Check`");
        let set: ScopeSet = " read, check ,".parse().unwrap();
        assert_eq!(set.to_string(), "check,read");
        assert_eq!("".parse::<ScopeSet>().unwrap(), ScopeSet::new());
        assert!("check,nope".parse::<ScopeSet>().is_err());
        assert_eq!(serde_json::to_string(&set).unwrap(), r#"["check","read"]"#);
    }

    #[test]
    fn subset_rule() {
        let check_read = ScopeSet::from([Scope::Check, Scope::Read]);
        let check = ScopeSet::from([Scope::Check]);
        let admin_check = ScopeSet::from([Scope::Admin, Scope::Check]);
        assert!(check.is_subset(&check_read));
        assert!(check_read.is_subset(&check_read));
        assert!(ScopeSet::new().is_subset(&check));
        assert!(!check_read.is_subset(&check));
        assert!(!check_read.is_subset(&admin_check));
        // Root is a scope like the others for the set; it is not a superset of anything.
        assert!(!check.is_subset(&ScopeSet::from([Scope::Root])));
        assert!(check_read.contains(Scope::Read));
        assert!(!check_read.contains(Scope::Write));
        assert!(!check_read.is_empty());
    }
}
