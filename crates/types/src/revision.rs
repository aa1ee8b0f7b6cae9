//! `Revision`: the datastore's MVCC version number.

use std::fmt;
use std::str::FromStr;

use crate::TypesError;

/// A point in the datastore's history. Every committed write gets a strictly larger revision
/// than all writes before it, so reads at a revision see exactly the writes at or below it.
///
/// [`Revision::ZERO`] comes before any write (an empty store). The wire form (consistency
/// token) is the server's business; the text form here is the plain decimal number.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Revision(u64);

impl Revision {
    /// The revision before any write.
    pub const ZERO: Self = Self(0);

    /// Wraps a raw revision number.
    pub const fn new(value: u64) -> Self {
        Self(value)
    }

    /// Returns the raw revision number.
    pub const fn as_u64(self) -> u64 {
        self.0
    }

    /// Returns the next revision, or `None` when the counter is exhausted.
    pub const fn checked_next(self) -> Option<Self> {
        match self.0.checked_add(1) {
            Some(value) => Some(Self(value)),
            None => None,
        }
    }
}

impl From<u64> for Revision {
    fn from(value: u64) -> Self {
        Self(value)
    }
}

impl From<Revision> for u64 {
    fn from(revision: Revision) -> Self {
        revision.0
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for Revision {
    type Err = TypesError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        // `u64::from_str` accepts a leading `+`; a revision is digits only.
        if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
            return Err(TypesError::InvalidRevision(text.to_owned()));
        }
        text.parse()
            .map(Self)
            .map_err(|_| TypesError::InvalidRevision(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_next() {
        assert_eq!(Revision::ZERO, Revision::default());
        assert_eq!(Revision::ZERO.as_u64(), 0);
        let one = Revision::ZERO.checked_next().unwrap();
        assert_eq!(one, Revision::new(1));
        assert!(Revision::ZERO < one);
        assert_eq!(Revision::new(u64::MAX).checked_next(), None);
        assert_eq!(u64::from(Revision::from(7)), 7);
    }

    #[test]
    fn text_form() {
        assert_eq!(Revision::new(42).to_string(), "42");
        assert_eq!("42".parse::<Revision>().unwrap(), Revision::new(42));
        assert_eq!(
            "18446744073709551615".parse::<Revision>().unwrap(),
            Revision::new(u64::MAX)
        );
        for bad in ["", "+1", "-1", "1.0", "abc", "18446744073709551616"] {
            let err = bad.parse::<Revision>().unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("invalid revision `{bad}`: must be a decimal number")
            );
        }
        assert_eq!(serde_json::to_string(&Revision::new(5)).unwrap(), "5");
        assert_eq!(
            serde_json::from_str::<Revision>("5").unwrap(),
            Revision::new(5)
        );
    }
}
