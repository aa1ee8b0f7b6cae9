//! Validated names, object and subject references, relationships and revisions shared by every
//! Ostiary crate.
