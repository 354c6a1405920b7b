//! [`Database`]: the library's entry point, with a typed method for every data statement.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use gnnrec_storage::{LoadPhase, NodeKind, Store};

pub use gnnrec_storage::Durability;

use crate::csv_load;
use crate::error::{Error, Result};
use crate::worker::{Worker, WorkerMode, WorkerSettings, WorkerStatus};

/// The longest external id, in bytes, of a user, an item or an edge type.
pub const MAX_ID_BYTES: usize = 4096;

/// How a database is opened.
#[derive(Debug, Clone)]
pub struct Options {
    /// When writes are acknowledged; `SET durability = full | wal` changes it later.
    pub durability: Durability,
    /// Whether the background worker keeps the model fresh (on by default); `SET worker`
    /// changes it later.
    pub worker: WorkerMode,
    /// The smallest catalogue (items with a vector) that TRAIN and worker rounds build and
    /// save an item index for. Below [`EXACT_BELOW`](crate::EXACT_BELOW), the default, the
    /// planner scores every item anyway, so the index would go unused. Without an index,
    /// the first query sent to it (`Strategy::Index`, or the planner's choice once refreshed
    /// items have grown the catalogue past `EXACT_BELOW`) builds it in memory while other
    /// queries wait. 0 always builds.
    pub index_from: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            durability: Durability::default(),
            worker: WorkerMode::On,
            index_from: crate::serving::EXACT_BELOW,
        }
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        // The worker holds a handle on the store: it stops before the store closes. Its
        // last error, if any, is what `close` would have reported.
        let _ = self.stop_worker();
    }
}

/// One interaction to add: `ADD user type item [WEIGHT w] [AT ts]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Interaction {
    pub user: String,
    pub edge_type: String,
    pub item: String,
    /// Defaults to 1.
    pub weight: Option<f32>,
    /// Unix seconds; defaults to now.
    pub at: Option<i64>,
}

impl Interaction {
    pub fn new(
        user: impl Into<String>,
        edge_type: impl Into<String>,
        item: impl Into<String>,
    ) -> Interaction {
        Interaction {
            user: user.into(),
            edge_type: edge_type.into(),
            item: item.into(),
            weight: None,
            at: None,
        }
    }

    pub fn weight(mut self, weight: f32) -> Interaction {
        self.weight = Some(weight);
        self
    }

    pub fn at(mut self, unix_seconds: i64) -> Interaction {
        self.at = Some(unix_seconds);
        self
    }
}

/// What an acknowledged `ADD` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Added {
    /// The event's sequence number in the log.
    pub seq: u64,
    pub new_user: bool,
    pub new_item: bool,
}

/// How far a `LOAD` has got, for progress bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadProgress {
    pub phase: LoadStage,
    pub done: u64,
    pub total: u64,
}

/// The stages of a `LOAD`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadStage {
    /// Reading and validating the file (done and total are bytes).
    Parsing,
    /// Writing the event log (done and total are edges).
    Logging,
    /// Updating the edge indexes (done and total are edges).
    Applying,
}

/// What a finished `LOAD` did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadSummary {
    pub edges: u64,
    pub new_users: u64,
    pub new_items: u64,
    pub seconds: f64,
}

/// Counts over the whole database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    pub users: u64,
    pub items: u64,
    pub edges: u64,
    /// Sequence number of the latest event.
    pub events: u64,
    pub trained_through: u64,
    pub models: u64,
    pub disk_bytes: u64,
}

/// A declared edge type.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeType {
    pub name: String,
    /// Default signal strength.
    pub weight: f32,
}

/// One edge seen from a node: the node at the other end and the edge's state.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeInfo {
    pub other: String,
    pub edge_type: String,
    pub weight: f32,
    pub count: u32,
    pub first_ts: i64,
    pub last_ts: i64,
}

/// A user or an item and its edges.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeInfo {
    pub id: String,
    pub edges: Vec<EdgeInfo>,
}

/// An open gnnrec database.
///
/// The database is a directory; one process at a time may have it open. Every method
/// that writes returns once the write is durable (see [`Durability`]); a method that
/// fails has changed nothing.
#[derive(Debug)]
pub struct Database {
    pub(crate) store: Arc<Store>,
    /// The newest trained model with its index, loaded on first use and swapped whole by
    /// TRAIN: a query reads one version from start to end.
    pub(crate) model: Arc<arc_swap::ArcSwapOption<crate::serving::Snapshot>>,
    /// Held while a snapshot is loaded, so that two first queries do not both load it.
    pub(crate) loading: Arc<Mutex<()>>,
    /// Held by whoever writes a model version (TRAIN, a worker round): one at a time.
    pub(crate) training: Arc<Mutex<()>>,
    /// The background worker. `None` on the worker's own handle, which never starts one.
    worker: Option<WorkerCell>,
    /// Every published model version, for subscribers (`AsyncDatabase::versions`).
    pub(crate) versions: Arc<tokio::sync::watch::Sender<u64>>,
    /// `Options::index_from`.
    pub(crate) index_from: usize,
}

/// The worker as the user's handle holds it: settings for the session, and the thread once
/// a model exists.
#[derive(Debug)]
struct WorkerCell {
    settings: Mutex<WorkerSettings>,
    running: Mutex<Option<Worker>>,
}

impl Database {
    /// Opens the database at `path`, creating it when the path does not exist.
    pub fn open(path: impl AsRef<Path>, options: Options) -> Result<Database> {
        let store = Store::open(path)?;
        store.set_durability(options.durability);
        let latest = store.latest_model_version()?.unwrap_or(0);
        let db = Database {
            versions: Arc::new(tokio::sync::watch::Sender::new(latest)),
            store: Arc::new(store),
            model: Arc::new(arc_swap::ArcSwapOption::empty()),
            loading: Arc::new(Mutex::new(())),
            training: Arc::new(Mutex::new(())),
            worker: Some(WorkerCell {
                settings: Mutex::new(WorkerSettings { mode: options.worker, ..WorkerSettings::default() }),
                running: Mutex::new(None),
            }),
            index_from: options.index_from,
        };
        db.start_worker()?;
        Ok(db)
    }

    /// A second handle on the same store and model for the worker thread: it shares
    /// everything but the worker.
    pub(crate) fn handle(&self) -> Database {
        Database {
            store: self.store.clone(),
            model: self.model.clone(),
            loading: self.loading.clone(),
            training: self.training.clone(),
            worker: None,
            versions: self.versions.clone(),
            index_from: self.index_from,
        }
    }

    /// Starts the worker once a model exists (it has nothing to keep fresh before).
    pub(crate) fn start_worker(&self) -> Result<()> {
        let Some(cell) = &self.worker else { return Ok(()) };
        let mut running = cell.running.lock().unwrap_or_else(|e| e.into_inner());
        if running.is_none() && self.store.latest_model_version()?.is_some() {
            let settings = *cell.settings.lock().unwrap_or_else(|e| e.into_inner());
            *running = Some(Worker::start(self.handle(), settings)?);
        }
        Ok(())
    }

    fn with_worker<T>(&self, f: impl FnOnce(Option<&Worker>) -> T) -> T {
        match &self.worker {
            Some(cell) => f(cell.running.lock().unwrap_or_else(|e| e.into_inner()).as_ref()),
            None => f(None),
        }
    }

    /// Tells the worker that something was written.
    fn wake_worker(&self) {
        self.with_worker(|w| w.map(Worker::wake));
    }

    /// The worker's settings for this session.
    pub fn worker_settings(&self) -> WorkerSettings {
        match &self.worker {
            Some(cell) => *cell.settings.lock().unwrap_or_else(|e| e.into_inner()),
            None => WorkerSettings { mode: WorkerMode::Off, ..WorkerSettings::default() },
        }
    }

    /// Changes the worker's settings (`SET worker = on | off | manual`, `SET worker.batch`,
    /// `SET worker.interval`); they last for this session.
    pub fn set_worker(&self, settings: WorkerSettings) -> Result<()> {
        if settings.batch == 0 || settings.interval.is_zero() {
            return Err(Error::Invalid("worker.batch and worker.interval must be above 0".into()));
        }
        let Some(cell) = &self.worker else { return Ok(()) };
        *cell.settings.lock().unwrap_or_else(|e| e.into_inner()) = settings;
        self.with_worker(|w| w.map(|w| w.set(settings)));
        Ok(())
    }

    /// What the worker is doing (`SHOW WORKER`); `None` before the first TRAIN.
    pub fn worker_status(&self) -> Result<Option<WorkerStatus>> {
        self.with_worker(|w| w.map(|w| w.status(self)).transpose())
    }

    /// Waits until everything written before the call is trained through (`SYNC`); in
    /// manual mode the work runs in this thread.
    pub fn sync(&self) -> Result<()> {
        self.with_worker(|w| match w {
            Some(w) => w.sync(self),
            None => Err(Error::Invalid("no model yet: run TRAIN first".into())),
        })
    }

    /// Closes the database: stops the worker and reports the last error it met. Dropping
    /// the database stops the worker too, without the report.
    pub fn close(mut self) -> Result<()> {
        self.stop_worker()
    }

    fn stop_worker(&mut self) -> Result<()> {
        let Some(cell) = &self.worker else { return Ok(()) };
        let worker = cell.running.lock().unwrap_or_else(|e| e.into_inner()).take();
        worker.map_or(Ok(()), |w| w.stop())
    }

    pub fn path(&self) -> &Path {
        self.store.path()
    }

    pub fn durability(&self) -> Durability {
        self.store.durability()
    }

    pub fn set_durability(&self, durability: Durability) {
        self.store.set_durability(durability);
    }

    /// Adds one interaction, or folds it into the existing edge.
    pub fn add(&self, interaction: &Interaction) -> Result<Added> {
        check_id("user", &interaction.user)?;
        check_id("item", &interaction.item)?;
        let weight = interaction.weight.unwrap_or(1.0);
        let at = interaction.at.unwrap_or_else(now);
        let outcome =
            self.store.add_edge(&interaction.user, &interaction.edge_type, &interaction.item, weight, at)?;
        self.wake_worker();
        Ok(Added { seq: outcome.seq, new_user: outcome.new_user, new_item: outcome.new_item })
    }

    /// Loads an interaction file: all of it, or, on the first malformed row, nothing.
    pub fn load_csv(
        &self,
        path: impl AsRef<Path>,
        mut progress: impl FnMut(LoadProgress),
    ) -> Result<LoadSummary> {
        let path = path.as_ref();
        let started = Instant::now();
        let size =
            std::fs::metadata(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?.len();
        progress(LoadProgress { phase: LoadStage::Parsing, done: 0, total: size });
        let type_id = |name: &str| self.store.type_id(name);
        let load = csv_load::parse_file(path, &type_id, now())?;
        progress(LoadProgress { phase: LoadStage::Parsing, done: size, total: size });
        let report = self.store.bulk_load(&load, &mut |phase, done, total| {
            let phase = match phase {
                LoadPhase::Logging => LoadStage::Logging,
                LoadPhase::Applying => LoadStage::Applying,
            };
            progress(LoadProgress { phase, done, total });
        })?;
        self.wake_worker();
        Ok(LoadSummary {
            edges: report.edges,
            new_users: report.new_users,
            new_items: report.new_items,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// Removes one edge.
    pub fn delete_edge(&self, user: &str, edge_type: &str, item: &str) -> Result<()> {
        self.store.delete_edge(user, edge_type, item)?;
        self.wake_worker();
        Ok(())
    }

    /// Removes a user and every edge of theirs; returns how many edges went with them.
    pub fn delete_user(&self, user: &str) -> Result<u64> {
        let removed = self.store.delete_node(NodeKind::User, user)?;
        self.wake_worker();
        Ok(removed)
    }

    /// Removes an item and every edge to it; returns how many edges went with it.
    pub fn delete_item(&self, item: &str) -> Result<u64> {
        let id = self.store.require_node(NodeKind::Item, item)?;
        let removed = self.store.delete_node(NodeKind::Item, item)?;
        // Searches of the current model skip it from the next statement on. (Without this
        // they would still never return it: every answer is checked against the store.)
        if let Some(snapshot) = self.model.load_full() {
            snapshot.bury(id);
        }
        self.wake_worker();
        Ok(removed)
    }

    /// Declares an edge type with its default signal strength.
    pub fn create_type(&self, name: &str, weight: f32) -> Result<()> {
        check_id("edge type", name)?;
        self.store.declare_type(name, weight)?;
        Ok(())
    }

    pub fn types(&self) -> Vec<EdgeType> {
        self.store.types().into_iter().map(|t| EdgeType { name: t.name, weight: t.weight }).collect()
    }

    pub fn stats(&self) -> Result<Stats> {
        let s = self.store.stats()?;
        Ok(Stats {
            users: s.users,
            items: s.items,
            edges: s.edges,
            events: s.last_seq,
            trained_through: s.trained_through,
            models: s.models,
            disk_bytes: s.disk_bytes,
        })
    }

    /// A user and the items they interacted with.
    pub fn user(&self, user: &str) -> Result<NodeInfo> {
        self.node(NodeKind::User, user)
    }

    /// An item and the users who interacted with it.
    pub fn item(&self, item: &str) -> Result<NodeInfo> {
        self.node(NodeKind::Item, item)
    }

    fn node(&self, kind: NodeKind, external: &str) -> Result<NodeInfo> {
        let id = self.store.require_node(kind, external)?;
        let other_kind = match kind {
            NodeKind::User => NodeKind::Item,
            NodeKind::Item => NodeKind::User,
        };
        let types = self.store.types();
        let mut edges = Vec::new();
        for n in self.store.neighbours(kind, id, None)? {
            let other = self.store.node_name(other_kind, n.node)?.unwrap_or_else(|| format!("#{}", n.node));
            let edge_type = types
                .get(n.edge_type as usize)
                .map_or_else(|| format!("#{}", n.edge_type), |t| t.name.clone());
            edges.push(EdgeInfo {
                other,
                edge_type,
                weight: n.value.weight,
                count: n.value.count,
                first_ts: n.value.first_ts,
                last_ts: n.value.last_ts,
            });
        }
        Ok(NodeInfo { id: external.to_owned(), edges })
    }
}

pub(crate) fn check_id(what: &str, id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::Invalid(format!("empty {what} id")));
    }
    if id.len() > MAX_ID_BYTES {
        return Err(Error::Invalid(format!(
            "{what} id is {} bytes long, the limit is {MAX_ID_BYTES}",
            id.len()
        )));
    }
    Ok(())
}

pub(crate) fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}
