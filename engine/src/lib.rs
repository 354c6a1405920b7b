//! gnnrec-engine: an embedded graph database for recommendations.
//!
//! Users and items are nodes, interactions (click, cart, like, buy and declared types) are
//! typed edges kept in RocksDB; a graph neural network trained on them ranks the items a
//! user has not interacted with yet. A program talks to it through typed methods of
//! [`Database`] or through the query language with [`Database::execute`]:
//!
//! ```
//! use gnnrec_engine::{Database, Interaction, Options, TrainConfig};
//!
//! let dir = tempfile::tempdir()?;
//! let db = Database::open(dir.path().join("shop.gnnrec"), Options::default())?;
//!
//! db.add(&Interaction::new("alice", "click", "sku-1"))?;
//! db.add(&Interaction::new("alice", "buy", "sku-1").weight(2.0).at(1_700_000_000))?;
//! db.execute("ADD bob like sku-2; CREATE TYPE view WEIGHT 0.1;")?;
//!
//! let alice = db.user("alice")?;
//! assert_eq!(alice.edges.len(), 2);
//! assert_eq!(db.stats()?.edges, 3);
//!
//! let out = db.execute("SHOW USER bob")?;
//! assert_eq!(out[0].rows[0][0].to_string(), "sku-2");
//!
//! // Train the GNN, then ask for what alice has not seen yet.
//! db.train(&TrainConfig { epochs: 3, ..TrainConfig::default() }, |_epoch| {})?;
//! let recs = db.recommend("alice", 5, true, None)?;
//! assert_eq!(recs.items.len(), 1);
//! assert_eq!(recs.items[0].item, "sku-2");
//! db.close()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod ann;
mod csv_load;
mod database;
mod error;
mod exec;
mod graph;
mod metrics;
mod model;
mod nonblocking;
mod output;
mod serving;
mod training;
mod worker;

pub use database::{
    Added, Database, Durability, EdgeInfo, EdgeType, Interaction, LoadProgress, LoadStage, LoadSummary,
    NodeInfo, Options, Stats, MAX_ID_BYTES,
};
pub use error::{Error, Result};
pub use exec::Progress;
pub use metrics::Metrics;
pub use model::{Loss, Sampler};
pub use nonblocking::AsyncDatabase;
pub use output::{Output, Value};
pub use serving::{
    IndexInfo, IndexOrigin, Method, Plan, RecommendOptions, Recommendation, Recommendations, Strategy,
    EXACT_BELOW, MAX_K,
};
pub use training::{EpochReport, EvalReport, Score, TrainConfig, TrainReport};
pub use worker::{
    WorkerMode, WorkerSettings, WorkerStatus, DEFAULT_ROUND_EPOCHS, FULL_RETRAIN_ROUNDS, SYNC_TIMEOUT,
};

/// The query language, re-exported so that a program needs only this crate.
pub use gnnrec_query as query;
