//! gnnrec-storage: the durable store of gnnrec, on RocksDB.
//!
//! Users and items are nodes with external ids mapped to dense internal ids; interactions
//! are typed edges indexed in both directions; every write is also appended to an event log;
//! trained embeddings and model checkpoints are kept by model version. `schema.rs` documents
//! the layout and its FORMAT_VERSION.
//!
//! This crate knows nothing of tensors, the GNN or the ANN index: it stores bytes and
//! vectors of `f32` for the engine.

mod error;
mod load;
pub mod raw;
pub mod schema;
mod store;

pub use error::{Error, Result};
pub use load::{BulkEdge, BulkLoad, LoadPhase, LoadReport};
pub use schema::{EdgeValue, Event, NodeId, NodeKind, Seq, StoredEmbedding, TypeDef, TypeId, FORMAT_VERSION};
pub use store::{AddOutcome, Durability, EdgeRecord, Neighbour, Stats, Store, TrainingCommit};

#[cfg(test)]
mod tests;
