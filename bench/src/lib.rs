//! Seeded data generators for the benchmarks.
