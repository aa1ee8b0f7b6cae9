//! In-memory MVCC reference backend of the Ostiary datastore (tests and --datastore memory).
