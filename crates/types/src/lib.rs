//! Validated names, object and subject references, relationships and revisions shared by every
//! Ostiary crate.
//!
//! This is the bottom layer of the workspace: it does no I/O, is not async and depends on no
//! other Ostiary crate. The rules and text forms follow SpiceDB v1.54:
//!
//! * names: [`ObjectType`], [`RelationName`], [`CaveatName`], [`ObjectId`] (including the
//!   subject wildcard `*`) and [`TenantId`], plus the `is_valid_*` checks the schema compiler
//!   reuses to report its own errors;
//! * references: [`ObjectRef`] (`document:readme`) and [`SubjectRef`] (`user:alice`,
//!   `group:eng#member`, `user:*`);
//! * [`Relationship`] with its text form
//!   `document:readme#viewer@user:alice[caveat:{"k":1}][expiration:2025-01-01T00:00:00Z]`,
//!   its identity [`RelationshipKey`], [`ContextualizedCaveat`] and [`Timestamp`];
//! * [`Revision`], the MVCC version number;
//! * [`RelationshipFilter`] and [`SubjectFilter`], as in SpiceDB's `ReadRelationships` and
//!   `DeleteRelationships`;
//! * [`TypesError`], the one error type.
//!
//! Every type's `Display` writes the canonical text form and `FromStr` parses it back, and
//! `serde` uses the same strings (a [`Revision`] is a plain number).
//!
//! ```
//! use ostiary_types::Relationship;
//!
//! let rel: Relationship = "document:readme#viewer@group:eng#member".parse()?;
//! assert_eq!(rel.resource().object_id().as_str(), "readme");
//! assert_eq!(rel.subject().relation().map(|r| r.as_str()), Some("member"));
//! assert_eq!(rel.to_string(), "document:readme#viewer@group:eng#member");
//! # Ok::<(), ostiary_types::TypesError>(())
//! ```

mod error;
mod filter;
mod names;
mod refs;
mod relationship;
mod revision;
mod timestamp;

pub use error::TypesError;
pub use filter::{RelationFilter, RelationshipFilter, SubjectFilter};
pub use names::{
    CaveatName, ObjectId, ObjectType, RelationName, TenantId, is_valid_identifier,
    is_valid_object_id, is_valid_qualified_name,
};
pub use refs::{ObjectRef, SubjectRef};
pub use relationship::{ContextualizedCaveat, Relationship, RelationshipKey};
pub use revision::Revision;
pub use timestamp::Timestamp;
