//! The pure parts of the load generator behind `bench/run`: seeded workloads (schema,
//! relationships, pre-encoded requests), latency and ratio statistics, and the Markdown report
//! written into `bench/RESULTS.md`. The binary `ostiary-loadgen` adds the network and process
//! side (servers, channels, `/proc` sampling).

pub mod report;
pub mod rng;
pub mod stats;
pub mod workload;
