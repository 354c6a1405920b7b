//! The async face of gnnrec, for tokio applications.
//!
//! gnnrec's work is blocking (RocksDB, training, index searches). [`AsyncDatabase`] runs
//! each call on tokio's blocking pool (`spawn_blocking`), so that an async task awaits it
//! without stalling the runtime's worker threads, and [`AsyncDatabase::versions`] yields
//! every model version TRAIN or the background worker publishes.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use gnnrec_engine::{AsyncDatabase, Database, Interaction, Options, TrainConfig};
//!
//! let dir = tempfile::tempdir()?;
//! let db = AsyncDatabase::new(Database::open(dir.path().join("shop"), Options::default())?);
//! db.add(Interaction::new("alice", "like", "sku-1")).await?;
//! db.add(Interaction::new("bob", "like", "sku-2")).await?;
//! let mut versions = db.versions();
//! db.train(TrainConfig { epochs: 1, ..TrainConfig::default() }).await?;
//! versions.changed().await?;
//! assert_eq!(*versions.borrow(), 1);
//! let recs = db.recommend("alice", 5, true).await?;
//! assert_eq!(recs.items[0].item, "sku-2");
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;

use tokio::sync::watch;

use crate::{
    Added, Database, Error, Interaction, Output, Recommendations, Result, Score, TrainConfig, TrainReport,
};

/// A [`Database`] for async code; cheap to clone and share between tasks.
#[derive(Debug, Clone)]
pub struct AsyncDatabase {
    db: Arc<Database>,
}

impl AsyncDatabase {
    pub fn new(db: Database) -> AsyncDatabase {
        AsyncDatabase { db: Arc::new(db) }
    }

    /// The blocking database, for calls that have no async version here.
    pub fn blocking(&self) -> &Database {
        &self.db
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| Error::Invalid(format!("a blocking gnnrec call did not finish: {e}")))?
    }

    /// Runs statements of the query language.
    pub async fn execute(&self, text: impl Into<String>) -> Result<Vec<Output>> {
        let text = text.into();
        self.run(move |db| db.execute(&text)).await
    }

    pub async fn add(&self, interaction: Interaction) -> Result<Added> {
        self.run(move |db| db.add(&interaction)).await
    }

    pub async fn train(&self, config: TrainConfig) -> Result<TrainReport> {
        self.run(move |db| db.train(&config, |_| {})).await
    }

    pub async fn score(&self, user: impl Into<String>, item: impl Into<String>) -> Result<Score> {
        let (user, item) = (user.into(), item.into());
        self.run(move |db| db.score(&user, &item, None)).await
    }

    pub async fn recommend(
        &self,
        user: impl Into<String>,
        k: usize,
        exclude_seen: bool,
    ) -> Result<Recommendations> {
        let user = user.into();
        self.run(move |db| db.recommend(&user, k, exclude_seen, None)).await
    }

    pub async fn similar(&self, item: impl Into<String>, k: usize) -> Result<Recommendations> {
        let item = item.into();
        self.run(move |db| db.similar(&item, k)).await
    }

    /// Waits until everything added before the call is trained through (`SYNC`).
    pub async fn sync(&self) -> Result<()> {
        self.run(|db| db.sync()).await
    }

    /// The model versions as they are published: the current one (0 before the first
    /// TRAIN) first, then each new one.
    pub fn versions(&self) -> watch::Receiver<u64> {
        self.db.versions.subscribe()
    }
}
