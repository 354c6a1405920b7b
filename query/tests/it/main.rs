//! Tests of the query crate at its public boundary, as one test binary.

mod golden;
mod robustness;
mod round_trip;
mod split;
