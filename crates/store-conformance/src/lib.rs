//! Conformance suite every Ostiary datastore backend runs.
