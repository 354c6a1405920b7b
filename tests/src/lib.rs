//! Integration tests, benchmarks and tools of gnnrec.

pub mod synth;
