//! The preshared-key check: every authzed request must carry `authorization: Bearer <key>`
//! with one of the configured keys, or it is refused with `Unauthenticated`.

use std::sync::Arc;

use tonic::service::Interceptor;
use tonic::{Request, Status};

/// A tonic interceptor accepting any of the configured keys; with none, it accepts everything
/// (`--insecure-no-auth`).
#[derive(Clone)]
pub(crate) struct Authenticator {
    keys: Arc<[String]>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The keys are secrets: never print them.
        f.debug_struct("Authenticator")
            .field("n_keys", &self.keys.len())
            .finish()
    }
}

impl Authenticator {
    /// Accepts bearer tokens equal to one of `keys`.
    pub(crate) fn new(keys: Vec<String>) -> Self {
        Self { keys: keys.into() }
    }
}

impl Interceptor for Authenticator {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        if self.keys.is_empty() {
            return Ok(request);
        }
        let Some(header) = request.metadata().get("authorization") else {
            return Err(Status::unauthenticated("missing `authorization` header"));
        };
        let presented = header
            .to_str()
            .ok()
            .and_then(|value| {
                value
                    .strip_prefix("Bearer ")
                    .or_else(|| value.strip_prefix("bearer "))
            })
            .map(str::trim);
        match presented {
            Some(token) if self.keys.iter().any(|key| constant_time_eq(key, token)) => Ok(request),
            Some(_) => Err(Status::unauthenticated("invalid preshared key")),
            None => Err(Status::unauthenticated(
                "`authorization` header must be `Bearer <key>`",
            )),
        }
    }
}

/// Compares without an early exit on the first differing byte.
fn constant_time_eq(left: &str, right: &str) -> bool {
    left.len() == right.len()
        && left
            .bytes()
            .zip(right.bytes())
            .fold(0_u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(keys: &[&str], header: Option<&str>) -> Result<(), tonic::Code> {
        let mut auth = Authenticator::new(keys.iter().map(|key| (*key).to_owned()).collect());
        let mut request = Request::new(());
        if let Some(header) = header {
            request
                .metadata_mut()
                .insert("authorization", header.parse().unwrap());
        }
        auth.call(request)
            .map(|_| ())
            .map_err(|status| status.code())
    }

    #[test]
    fn bearer_keys_are_required() {
        assert_eq!(call(&["k1", "k2"], Some("Bearer k2")), Ok(()));
        assert_eq!(
            call(&["k1"], Some("Bearer nope")),
            Err(tonic::Code::Unauthenticated)
        );
        assert_eq!(call(&["k1"], Some("k1")), Err(tonic::Code::Unauthenticated));
        assert_eq!(call(&["k1"], None), Err(tonic::Code::Unauthenticated));
        assert_eq!(call(&[], None), Ok(()));
    }
}
