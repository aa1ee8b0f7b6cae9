//! Seeded data generators for the benchmarks, and the pure parts of the gRPC load generator
//! (`ostiary-loadgen`, driven by `bench/run`).

pub mod loadgen;
