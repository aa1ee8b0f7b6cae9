//! The subcommands, one module each.

pub(crate) mod client;
pub(crate) mod schema;
pub(crate) mod serve;
pub(crate) mod transfer;
pub(crate) mod validate;
