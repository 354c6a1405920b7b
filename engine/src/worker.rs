//! The background worker: keeps the model fresh as edges arrive.
//!
//! One named thread, woken through a bounded crossbeam channel. A writer never waits for
//! it: a wake-up that does not fit in the channel is dropped, because the worker reads what
//! happened from the event log, not from the messages. Each time it wakes it
//!
//! 1. gives the items that new events brought, and the model has no vector for, a vector
//!    inductively from their current users (milliseconds; users need nothing, their vectors
//!    are always computed from their current edges), so that a new item can be recommended
//!    at once; items the model knows move at the next round;
//! 2. once `batch` edges have arrived since the model's `trained_through`, or `interval`
//!    has passed with at least one, runs a round ([`Database::fine_tune`]): `epochs`
//!    passes (default [`DEFAULT_ROUND_EPOCHS`]) over the new target edges plus a replay
//!    sample of older ones, published as the next model version like TRAIN publishes
//!    (index saved, then model, embeddings and `trained_through` in one batch). After [`FULL_RETRAIN_ROUNDS`] rounds, or once the
//!    event log has doubled since the last full TRAIN, the round is a full TRAIN with the
//!    model's settings instead: fine-tuning only ever sees new edges and a sample of old
//!    ones, new users and items start from random rows, and the validation-based early
//!    stopping of TRAIN does not run, so its error grows with what it has not seen whole.
//!
//! Modes: `on` (the default once a model exists), `off` (nothing happens until TRAIN or
//! `SET worker = on`), `manual` (nothing happens on its own; SYNC runs the work in the
//! caller's thread, for deterministic tests and scripts).
//!
//! Writers come first: everything the worker computes (the refresh, training, embeddings and
//! the index build, all of which run on the current rayon pool) runs on the worker's own pool
//! of low-priority threads (nice +10 on Linux, as RocksDB lowers its compaction threads), one
//! per core. An idle machine gives a round every core; a busy writer is not slowed by more
//! than the scheduler's share for a nice-10 thread. The pool's threads do nothing else, so
//! their CPU time is the worker's cost (`SHOW WORKER`: cpu_seconds).

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::channel::{bounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use gnnrec_storage::{Event, NodeId, NodeKind, Seq};

use crate::{Database, Error, Result};

/// Rounds after which the worker trains from scratch instead of fine-tuning.
pub const FULL_RETRAIN_ROUNDS: u64 = 20;

/// Passes a round makes over its examples (`SET worker.epochs`). One pass leaves rows that
/// arrived since the last TRAIN barely trained; on the freshness benchmark (is each of
/// 17,539 streamed likes in its user's RECOMMEND TOP 20 just before it arrives?) 1, 2 and 3
/// passes reached 0.911, 0.929 and 0.962 of a full retrain at every block, at 0.14, 0.17
/// and 0.20 of its CPU time; 3 passes replaying 2 old edges per new one instead of 4 fell
/// back to 0.933.
pub const DEFAULT_ROUND_EPOCHS: usize = 3;

/// How long the worker lets a burst of writes gather before it looks at them.
const COALESCE: Duration = Duration::from_millis(20);

/// How long SYNC waits for the worker before it gives up.
pub const SYNC_TIMEOUT: Duration = Duration::from_secs(600);

/// Whether and how the worker runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerMode {
    On,
    Off,
    Manual,
}

impl std::fmt::Display for WorkerMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WorkerMode::On => "on",
            WorkerMode::Off => "off",
            WorkerMode::Manual => "manual",
        })
    }
}

/// The worker's settings (`SET worker = ...`, `SET worker.batch = ...`,
/// `SET worker.interval = ...`, `SET worker.epochs = ...`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WorkerSettings {
    pub mode: WorkerMode,
    /// New edges that start a round.
    pub batch: u64,
    /// Time after which a round starts if at least one edge arrived.
    pub interval: Duration,
    /// Older examples replayed per new one in a round.
    pub replay: usize,
    /// Passes a round makes over its examples (the new ones and the replayed ones).
    pub epochs: usize,
}

impl Default for WorkerSettings {
    fn default() -> WorkerSettings {
        WorkerSettings {
            mode: WorkerMode::On,
            batch: 1000,
            interval: Duration::from_secs(5),
            replay: 4,
            epochs: DEFAULT_ROUND_EPOCHS,
        }
    }
}

/// What the worker is doing and has done (`SHOW WORKER`).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerStatus {
    pub settings: WorkerSettings,
    /// Whether a round is running now.
    pub busy: bool,
    pub model_version: u64,
    /// The latest event, and how far the model is trained through.
    pub last_seq: Seq,
    pub trained_through: Seq,
    /// Events whose items have been refreshed.
    pub refreshed_through: Seq,
    /// Events not trained through yet, and the age of the oldest of them.
    pub lag_edges: u64,
    pub lag_seconds: f64,
    pub rounds: u64,
    pub full_retrains: u64,
    pub last_round_seconds: f64,
    pub last_round_loss: f64,
    /// Wall time spent in rounds and refreshes, in total.
    pub busy_seconds: f64,
    /// CPU time the worker's threads have used, in total (all cores together); in manual
    /// mode the work runs in the callers of SYNC and is not counted here.
    pub cpu_seconds: f64,
    pub last_error: Option<String>,
}

enum Msg {
    Wake,
    Sync(Sender<Result<()>>),
    Stop,
}

/// Shared between the worker thread and the database handles.
#[derive(Debug)]
struct State {
    settings: WorkerSettings,
    busy: bool,
    refreshed_through: Seq,
    /// When the oldest event not yet trained through was noticed.
    waiting_since: Option<Instant>,
    last_round: Option<Instant>,
    rounds: u64,
    full_retrains: u64,
    last_round_seconds: f64,
    last_round_loss: f64,
    busy_seconds: f64,
    cpu_seconds: f64,
    last_error: Option<String>,
}

/// The worker as the database holds it.
#[derive(Debug)]
pub(crate) struct Worker {
    sender: Sender<Msg>,
    state: Arc<Mutex<State>>,
    /// Serialises the work itself: the thread's and a manual SYNC's.
    work: Arc<Mutex<()>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Worker {
    /// Starts the worker thread on a handle of the database.
    pub(crate) fn start(db: Database, settings: WorkerSettings) -> Result<Worker> {
        let (sender, receiver) = bounded(64);
        let refreshed_through = db.store.trained_through()?;
        let state = Arc::new(Mutex::new(State {
            settings,
            busy: false,
            refreshed_through,
            waiting_since: None,
            last_round: None,
            rounds: 0,
            full_retrains: 0,
            last_round_seconds: 0.0,
            last_round_loss: 0.0,
            busy_seconds: 0.0,
            cpu_seconds: 0.0,
            last_error: None,
        }));
        let work = Arc::new(Mutex::new(()));
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(cores)
            .thread_name(|i| format!("gnnrec-worker-{i}"))
            .start_handler(|_| lower_priority())
            .build()
            .map_err(|e| Error::Invalid(format!("cannot start the worker's threads: {e}")))?;
        let runner = Runner { db, state: state.clone(), work: work.clone() };
        let thread = std::thread::Builder::new()
            .name("gnnrec-worker".into())
            .spawn(move || {
                lower_priority();
                runner.run(receiver, pool)
            })
            .map_err(|e| Error::Invalid(format!("cannot start the worker thread: {e}")))?;
        Ok(Worker { sender, state, work, thread: Mutex::new(Some(thread)) })
    }

    /// Tells the worker that events arrived; never blocks.
    pub(crate) fn wake(&self) {
        match self.sender.try_send(Msg::Wake) {
            Ok(()) | Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {}
        }
    }

    pub(crate) fn settings(&self) -> WorkerSettings {
        lock(&self.state).settings
    }

    pub(crate) fn set(&self, settings: WorkerSettings) {
        lock(&self.state).settings = settings;
        self.wake();
    }

    pub(crate) fn status(&self, db: &Database) -> Result<WorkerStatus> {
        let last_seq = db.store.last_seq();
        let trained_through = db.store.trained_through()?;
        let model_version = db.store.latest_model_version()?.unwrap_or(0);
        let s = lock(&self.state);
        Ok(WorkerStatus {
            settings: s.settings,
            busy: s.busy,
            model_version,
            last_seq,
            trained_through,
            refreshed_through: s.refreshed_through.max(trained_through),
            lag_edges: last_seq.saturating_sub(trained_through),
            lag_seconds: if last_seq > trained_through {
                s.waiting_since.map_or(0.0, |t| t.elapsed().as_secs_f64())
            } else {
                0.0
            },
            rounds: s.rounds,
            full_retrains: s.full_retrains,
            last_round_seconds: s.last_round_seconds,
            last_round_loss: s.last_round_loss,
            busy_seconds: s.busy_seconds,
            cpu_seconds: s.cpu_seconds,
            last_error: s.last_error.clone(),
        })
    }

    /// Waits until every event before the call is trained through. In manual mode the work
    /// runs here, in the caller's thread.
    pub(crate) fn sync(&self, db: &Database) -> Result<()> {
        match self.settings().mode {
            WorkerMode::Off => {
                Err(Error::Invalid("the worker is off: SET worker = on (or manual) first".into()))
            }
            WorkerMode::Manual => {
                let runner = Runner { db: db.handle(), state: self.state.clone(), work: self.work.clone() };
                runner.catch_up(true)
            }
            WorkerMode::On => {
                let (reply, answer) = bounded(1);
                self.sender
                    .send(Msg::Sync(reply))
                    .map_err(|_| Error::Invalid("the worker has stopped".into()))?;
                answer.recv_timeout(SYNC_TIMEOUT).map_err(|_| {
                    Error::Invalid(format!("SYNC timed out after {} s", SYNC_TIMEOUT.as_secs()))
                })?
            }
        }
    }

    /// Stops the thread and waits for it; reports the last error it met, if any.
    pub(crate) fn stop(&self) -> Result<()> {
        let _ = self.sender.send(Msg::Stop);
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread {
            thread.join().map_err(|_| Error::Invalid("the worker thread panicked".into()))?;
        }
        match lock(&self.state).last_error.take() {
            Some(e) => Err(Error::Invalid(format!("the worker failed: {e}"))),
            None => Ok(()),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Lowers the calling thread's CPU priority to nice +10, so that writers and readers are
/// scheduled first. On Linux the nice value belongs to the thread, not the process. Elsewhere,
/// or if the call fails, the thread keeps its priority: the worker is then only slower to
/// yield, never wrong.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn lower_priority() {
    // SAFETY: gettid and setpriority take and return plain integers and touch no memory of
    // ours; a failure is reported through the return value, which is deliberately ignored.
    unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 10);
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

/// CPU time used so far by the pool's threads and the calling one, which do only the
/// worker's work.
fn cpu_seconds(pool: &rayon::ThreadPool) -> f64 {
    let own = cpu_time::ThreadTime::now().as_duration();
    let pool: Duration = pool.broadcast(|_| cpu_time::ThreadTime::now().as_duration()).into_iter().sum();
    (own + pool).as_secs_f64()
}

/// The worker's side: a database handle and the shared state.
struct Runner {
    db: Database,
    state: Arc<Mutex<State>>,
    work: Arc<Mutex<()>>,
}

impl Runner {
    fn run(self, receiver: Receiver<Msg>, pool: rayon::ThreadPool) {
        let mut later = std::collections::VecDeque::new();
        loop {
            let settings = lock(&self.state).settings;
            let tick = settings.interval.clamp(Duration::from_millis(10), Duration::from_secs(1));
            let msg = match later.pop_front() {
                Some(msg) => msg,
                None => match receiver.recv_timeout(tick) {
                    Ok(msg) => msg,
                    Err(RecvTimeoutError::Timeout) => Msg::Wake,
                    Err(RecvTimeoutError::Disconnected) => return,
                },
            };
            match msg {
                Msg::Stop => return,
                Msg::Sync(reply) => {
                    let outcome = pool.install(|| self.catch_up(true));
                    lock(&self.state).cpu_seconds = cpu_seconds(&pool);
                    let _ = reply.send(outcome);
                }
                Msg::Wake => {
                    if settings.mode == WorkerMode::On {
                        // One catch-up per burst of writes, not one per edge: let the burst
                        // gather, then fold its wake-ups into this one.
                        std::thread::sleep(COALESCE);
                        while let Ok(msg) = receiver.try_recv() {
                            if !matches!(msg, Msg::Wake) {
                                later.push_back(msg);
                            }
                        }
                        let outcome = pool.install(|| self.catch_up(false));
                        let mut s = lock(&self.state);
                        s.cpu_seconds = cpu_seconds(&pool);
                        if let Err(e) = outcome {
                            s.last_error = Some(e.to_string());
                        }
                    }
                }
            }
        }
    }

    /// Refreshes touched items, then runs a round when one is due (always when `force`).
    fn catch_up(&self, force: bool) -> Result<()> {
        let _work = lock(&self.work);
        if self.db.store.latest_model_version()?.is_none() {
            // Nothing to keep fresh before the first TRAIN.
            return if force { Err(Error::Invalid("no model yet: run TRAIN first".into())) } else { Ok(()) };
        }
        let started = Instant::now();
        let last_seq = self.db.store.last_seq();
        let trained_through = self.db.store.trained_through()?;
        {
            let mut s = lock(&self.state);
            if last_seq > trained_through && s.waiting_since.is_none() {
                s.waiting_since = Some(Instant::now());
            }
        }
        self.refresh(last_seq)?;
        let (due, settings) = {
            let s = lock(&self.state);
            let pending = last_seq.saturating_sub(trained_through);
            let waited = s.waiting_since.is_some_and(|t| t.elapsed() >= s.settings.interval);
            (pending > 0 && (force || pending >= s.settings.batch || waited), s.settings)
        };
        if due {
            lock(&self.state).busy = true;
            let outcome = self.round(settings);
            let mut s = lock(&self.state);
            s.busy = false;
            let report = outcome?;
            s.rounds += 1;
            s.last_round = Some(Instant::now());
            s.last_round_seconds = started.elapsed().as_secs_f64();
            s.last_round_loss = report.map_or(0.0, |r| r.loss);
            s.waiting_since =
                (self.db.store.last_seq() > self.db.store.trained_through()?).then(Instant::now);
        }
        lock(&self.state).busy_seconds += started.elapsed().as_secs_f64();
        Ok(())
    }

    /// Vectors for the items new events brought that the model has none for, from their
    /// current users, so that they can be recommended before the next round. Items the model
    /// knows keep their trained vector until the round: refreshing a popular item means
    /// reading every one of its users' histories, too much to do for every edge.
    fn refresh(&self, last_seq: Seq) -> Result<()> {
        let from = lock(&self.state).refreshed_through;
        if last_seq <= from {
            return Ok(());
        }
        let snapshot = self.db.snapshot()?;
        let mut items: Vec<NodeId> = Vec::new();
        for entry in self.db.store.events_since(from) {
            let (seq, event) = entry?;
            if seq > last_seq {
                break;
            }
            match event {
                Event::AddEdge { item, .. } | Event::DeleteEdge { item, .. } => items.push(item),
                Event::DeleteUser { .. } | Event::DeleteItem { .. } => {}
            }
        }
        items.sort_unstable();
        items.dedup();
        {
            let known = snapshot.read_items();
            items.retain(|&i| known.vector(&snapshot.model, i).is_none());
        }
        drop(snapshot);
        let mut names = Vec::with_capacity(items.len());
        for item in items {
            if let Some(name) = self.db.store.node_name(NodeKind::Item, item)? {
                names.push(name);
            }
        }
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        self.db.refresh_items(&names)?;
        lock(&self.state).refreshed_through = last_seq;
        Ok(())
    }

    /// Fine-tunes, or retrains from scratch when fine-tuning has drifted far enough.
    fn round(&self, settings: WorkerSettings) -> Result<Option<crate::TrainReport>> {
        let snapshot = self.db.snapshot()?;
        let grown = self.db.store.last_seq() > snapshot.report.base_trained_through.saturating_mul(2);
        if snapshot.report.rounds + 1 >= FULL_RETRAIN_ROUNDS || grown {
            let config = snapshot.model.hyper.clone();
            drop(snapshot);
            let report = self.db.train(&config, |_| {})?;
            lock(&self.state).full_retrains += 1;
            return Ok(Some(report));
        }
        drop(snapshot);
        self.db.fine_tune(settings.replay, settings.epochs)
    }
}
