//! The conformance cases, one public function each, grouped by topic. Each takes the
//! backend's factory and builds the datastores it needs.

mod concurrency;
mod feed;
mod gc;
mod reads;
mod records;
mod writes;

pub use concurrency::*;
pub use feed::*;
pub use gc::*;
pub use reads::*;
pub use records::*;
pub use writes::*;

use crate::Capability;

/// The capabilities case `name` needs (most need none).
pub fn requirements(name: &str) -> &'static [Capability] {
    match name {
        "delete_tenant" | "delete_tenant_removes_records" => &[Capability::DeleteTenant],
        _ => &[],
    }
}
