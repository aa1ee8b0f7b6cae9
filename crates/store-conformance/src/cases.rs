//! The conformance cases, one public function each, grouped by topic. Each takes the
//! backend's factory and builds the datastores it needs.

mod concurrency;
mod feed;
mod gc;
mod reads;
mod writes;

pub use concurrency::*;
pub use feed::*;
pub use gc::*;
pub use reads::*;
pub use writes::*;

use crate::Capability;

/// The capabilities case `name` needs (most need none).
pub fn requirements(name: &str) -> &'static [Capability] {
    match name {
        "delete_tenant" => &[Capability::DeleteTenant],
        _ => &[],
    }
}
