//! The text form of API tokens, `ost_<id>_<secret>`: generation from the operating
//! system's CSPRNG, parsing, and the stored hash of the secret.
//!
//! * `id`: 10 random bytes in lowercase base32hex (`[0-9a-v]`, 16 characters). It names the
//!   token in lists, audit entries and revocations; it is not secret.
//! * `secret`: 32 random bytes (256 bits) in the same alphabet (52 characters).
//!
//! # Why SHA-256 and not a password hash
//!
//! Password hashes (argon2, bcrypt) are slow on purpose, to make guessing low-entropy human
//! passwords expensive after a database leak. A token secret is 256 uniformly random bits:
//! guessing it is infeasible at any hash speed, so a fast hash loses nothing, while a slow
//! one would cost every request tens of milliseconds. SHA-256 keeps the stored form
//! useless to a thief (preimage resistance) and lets authentication stay cheap. The hash
//! covers the token id too, so a stored hash cannot be moved to another token.

use std::fmt;

use data_encoding::BASE32_DNSSEC;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::TenancyError;

/// The prefix every token text starts with.
pub const TOKEN_PREFIX: &str = "ost_";

/// Random bytes in a token id.
const ID_BYTES: usize = 10;
/// Random bytes in a token secret.
const SECRET_BYTES: usize = 32;
/// Characters of an encoded id (base32 without padding: 8 characters per 5 bytes).
const ID_CHARS: usize = ID_BYTES * 8 / 5;
/// Characters of an encoded secret (32 bytes: 51.2 characters, rounded up).
const SECRET_CHARS: usize = (SECRET_BYTES * 8).div_ceil(5);

/// A token's public id (16 characters of `[0-9a-v]`).
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct TokenId(String);

impl TokenId {
    /// Validates `text` as a token id.
    ///
    /// # Errors
    ///
    /// [`TenancyError::InvalidArgument`] if it is not 16 characters of `[0-9a-v]`.
    pub fn new(text: &str) -> Result<Self, TenancyError> {
        if text.len() == ID_CHARS && text.bytes().all(is_alphabet_byte) {
            Ok(Self(text.to_owned()))
        } else {
            Err(TenancyError::InvalidArgument(format!(
                "invalid token id `{text}`"
            )))
        }
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id of [`Principal::operator`](crate::Principal::operator), all zeros. Issued ids
    /// are 80 random bits, and creation refuses this one, so no token ever has it.
    pub fn operator() -> Self {
        Self("0".repeat(ID_CHARS))
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for TokenId {
    type Error = TenancyError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Self::new(&text)
    }
}

impl From<TokenId> for String {
    fn from(id: TokenId) -> Self {
        id.0
    }
}

/// The full text of a token, `ost_<id>_<secret>`: the bearer credential. It is shown once,
/// at creation or rotation, and never stored; `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenText {
    id: TokenId,
    text: String,
}

impl TokenText {
    /// Parses a presented token.
    ///
    /// # Errors
    ///
    /// [`TokenFormatError`] saying what is wrong with the text (for logs and the CLI; the
    /// server answers every authentication failure alike).
    pub fn parse(text: &str) -> Result<Self, TokenFormatError> {
        let rest = text
            .strip_prefix(TOKEN_PREFIX)
            .ok_or(TokenFormatError::MissingPrefix)?;
        let (id, secret) = rest
            .split_once('_')
            .ok_or(TokenFormatError::MissingSecret)?;
        if id.len() != ID_CHARS || !id.bytes().all(is_alphabet_byte) {
            return Err(TokenFormatError::BadId);
        }
        if secret.len() != SECRET_CHARS || !secret.bytes().all(is_alphabet_byte) {
            return Err(TokenFormatError::BadSecret);
        }
        Ok(Self {
            id: TokenId(id.to_owned()),
            text: text.to_owned(),
        })
    }

    /// Generates a new token id and secret from the operating system's CSPRNG.
    pub(crate) fn generate() -> Result<Self, TenancyError> {
        let mut id = TokenId(random_text(ID_BYTES)?);
        while id == TokenId::operator() {
            id = TokenId(random_text(ID_BYTES)?);
        }
        Self::with_new_secret(id)
    }

    /// Generates a new secret for an existing id (rotation).
    pub(crate) fn with_new_secret(id: TokenId) -> Result<Self, TenancyError> {
        let secret = random_text(SECRET_BYTES)?;
        let text = format!("{TOKEN_PREFIX}{id}_{secret}");
        Ok(Self { id, text })
    }

    /// The token's id.
    pub fn id(&self) -> &TokenId {
        &self.id
    }

    /// The full bearer text, secret included. Show it once; never log it.
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The secret part.
    fn secret(&self) -> &str {
        // The text is `ost_<id>_<secret>` by construction.
        let skip = TOKEN_PREFIX.len() + self.id.0.len() + 1;
        self.text.get(skip..).unwrap_or_default()
    }

    /// The hash stored for this token's secret.
    pub(crate) fn secret_hash(&self) -> SecretHash {
        SecretHash::of(&self.id, self.secret())
    }
}

impl fmt::Debug for TokenText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenText({TOKEN_PREFIX}{}_<redacted>)", self.id)
    }
}

/// What is wrong with a presented token's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenFormatError {
    /// The text does not start with `ost_`.
    #[error("token does not start with `ost_`")]
    MissingPrefix,
    /// No `_` separates the id from the secret.
    #[error("token has no secret after its id")]
    MissingSecret,
    /// The id is not 16 characters of `[0-9a-v]`.
    #[error("token id is malformed")]
    BadId,
    /// The secret is not 52 characters of `[0-9a-v]`.
    #[error("token secret is malformed")]
    BadSecret,
}

/// The SHA-256 of a token id and secret, as stored (lowercase hex).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub(crate) struct SecretHash(String);

impl SecretHash {
    fn of(id: &TokenId, secret: &str) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"ostiary-token-v1\0");
        hasher.update(id.0.as_bytes());
        hasher.update(b"\0");
        hasher.update(secret.as_bytes());
        Self(data_encoding::HEXLOWER.encode(&hasher.finalize()))
    }

    /// A hash no secret has in practice, compared against when the id is unknown so that
    /// the work done does not depend on whether the token exists.
    pub(crate) fn dummy() -> Self {
        Self("0".repeat(64))
    }

    /// Compares in constant time (for equal lengths, which stored hashes all have).
    pub(crate) fn matches(&self, other: &SecretHash) -> bool {
        bool::from(self.0.as_bytes().ct_eq(other.0.as_bytes()))
    }
}

fn is_alphabet_byte(byte: u8) -> bool {
    byte.is_ascii_digit() || (b'a'..=b'v').contains(&byte)
}

/// `n_bytes` from the operating system's CSPRNG, in lowercase base32hex.
fn random_text(n_bytes: usize) -> Result<String, TenancyError> {
    let mut bytes = vec![0u8; n_bytes];
    getrandom::fill(&mut bytes)
        .map_err(|err| TenancyError::Internal(format!("random number generator failed: {err}")))?;
    Ok(BASE32_DNSSEC.encode(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_back() {
        let token = TokenText::generate().unwrap();
        let text = token.expose();
        assert!(text.starts_with("ost_"));
        assert_eq!(text.len(), 4 + 16 + 1 + 52);
        let parsed = TokenText::parse(text).unwrap();
        assert_eq!(parsed, token);
        assert_eq!(parsed.id().as_str().len(), 16);
        assert_eq!(parsed.secret().len(), 52);
        assert_eq!(parsed.secret_hash(), token.secret_hash());
        // Debug never shows the secret.
        let debug = format!("{token:?}");
        assert!(!debug.contains(token.secret()), "{debug}");
        assert!(debug.contains(token.id().as_str()));
        // Two generations differ in id and secret.
        let other = TokenText::generate().unwrap();
        assert_ne!(other.id(), token.id());
        assert_ne!(other.secret(), token.secret());
        // A rotation keeps the id and changes the secret and its hash.
        let rotated = TokenText::with_new_secret(token.id().clone()).unwrap();
        assert_eq!(rotated.id(), token.id());
        assert!(!rotated.secret_hash().matches(&token.secret_hash()));
    }

    #[test]
    fn parse_errors() {
        let good_id = "0123456789abcdev";
        let good_secret = "v".repeat(52);
        let cases: Vec<(String, Result<(), TokenFormatError>)> = vec![
            (format!("ost_{good_id}_{good_secret}"), Ok(())),
            (
                format!("tok_{good_id}_{good_secret}"),
                Err(TokenFormatError::MissingPrefix),
            ),
            (String::new(), Err(TokenFormatError::MissingPrefix)),
            (
                format!("ost_{good_id}"),
                Err(TokenFormatError::MissingSecret),
            ),
            (
                format!("ost_{}_{good_secret}", &good_id[1..]),
                Err(TokenFormatError::BadId),
            ),
            (
                format!("ost_0123456789ABCDEV_{good_secret}"),
                Err(TokenFormatError::BadId),
            ),
            (
                format!("ost_0123456789abcdew_{good_secret}"),
                Err(TokenFormatError::BadId),
            ),
            (
                format!("ost_{good_id}_{}", &good_secret[1..]),
                Err(TokenFormatError::BadSecret),
            ),
            (
                format!("ost_{good_id}_{good_secret}x"),
                Err(TokenFormatError::BadSecret),
            ),
            (
                format!("ost_{good_id}_{}_", &good_secret[1..]),
                Err(TokenFormatError::BadSecret),
            ),
            (
                format!("ost_{good_id}_{} ", &good_secret[1..]),
                Err(TokenFormatError::BadSecret),
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(TokenText::parse(&text).map(|_| ()), expected, "{text:?}");
        }
        assert_eq!(
            TokenFormatError::MissingPrefix.to_string(),
            "token does not start with `ost_`"
        );
    }

    #[test]
    fn hashes_bind_id_and_secret() {
        let id = TokenId::new("0123456789abcdev").unwrap();
        let other_id = TokenId::new("0123456789abcdeu").unwrap();
        let hash = SecretHash::of(&id, "secret");
        assert!(hash.matches(&SecretHash::of(&id, "secret")));
        assert!(!hash.matches(&SecretHash::of(&id, "secreu")));
        assert!(!hash.matches(&SecretHash::of(&other_id, "secret")));
        assert!(!hash.matches(&SecretHash::dummy()));
        assert_eq!(hash.0.len(), 64);
        assert!(TokenId::new("short").is_err());
        assert_eq!(
            serde_json::from_str::<TokenId>("\"0123456789abcdev\"").unwrap(),
            id
        );
        assert!(serde_json::from_str::<TokenId>("\"0123456789abcdeZ\"").is_err());
    }
}
