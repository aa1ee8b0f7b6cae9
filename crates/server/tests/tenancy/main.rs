//! Multi-tenancy end to end (issue 8): isolation between tenants under randomized attack,
//! token lifecycle at the boundary with a driven clock, scopes and privilege escalation,
//! the audit log of every write path, rate limits and quotas. One test binary; each module
//! starts its own in-process servers (`support`).

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: helpers outside `#[test]` functions fail loudly too"
)]

mod audit;
mod isolation;
mod latency;
mod limits;
mod support;
mod tokens;
