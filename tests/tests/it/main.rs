//! The one integration-test binary of gnnrec: cross-crate behaviour at public boundaries.

mod bad_input;
mod crash;
mod deps;
mod gnn;
mod model;
mod serve;
mod worker;
