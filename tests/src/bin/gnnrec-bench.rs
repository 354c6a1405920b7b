//! gnnrec's benchmarks: commands that print figures and one JSON line, never timed tests.
//!
//! `gnnrec-bench ingest [--edges N] [--seed S] [--rounds R] [--dir DIR]`
//!   generates N interactions (default 2,000,000), LOADs them into a fresh database and, in
//!   the same run, writes the same key/value pairs straight into a fresh RocksDB with
//!   batched puts: the limit for this layout on this machine. Each side runs in a child
//!   process of its own so that its peak RSS is its own.
//! `gnnrec-bench load FILE [--dir DIR]`
//!   times the LOAD of an existing file (types it uses are declared first).
//! `gnnrec-bench quality MOVIELENS_DIR [--split test|val] [--with SETTINGS] [--seeds 42,1,2]`
//!   loads train.csv (val_train.csv), TRAINs with the defaults (plus SETTINGS), EVALs
//!   test.csv (val_test.csv) for `like` at 10 and 20, and prints the peers' figures from
//!   PEERS.md beside ours. With several seeds, each trains a fresh database; the figures
//!   are per seed, then the mean and the standard deviation across seeds (the peers'
//!   figures are single fits of far steadier methods: ALS's NDCG@20 moves 0.0002 by seed).
//! `gnnrec-bench train-scale [--edges N] [--small N] [--epochs E]`
//!   TRAINs on a synthetic graph of N edges (default 10,000,000) and, in the same run, on
//!   one of `--small` edges (default 1,000,000), each in a child process: time per epoch,
//!   time per step and peak RSS side by side. A step's cost should not grow with the graph.
//! `gnnrec-bench serve [--movielens DIR] [--items N] [--edges N] [--queries Q] [--epochs E]`
//!   RECOMMEND TOP 10 EXCLUDE SEEN for Q random users (default 2000) through the planner
//!   (the index) and by exact scoring, on MovieLens train.csv after TRAIN when DIR is given,
//!   and on a synthetic catalogue of N items (default 1,000,000; 0 skips it) trained for E
//!   epochs (default 1): latency p50/p99/max, QPS with 1 and 2 threads, recall@10 of the
//!   index against exact, seen items returned (must be 0), index build/save/load/rebuild
//!   times and memory; and recall@10 and latency of the index at ef 64 to 256.
//! `gnnrec-bench freshness MOVIELENS_DIR [--batch N] [--ingest-runs R] [--worker-runs W] [--with S]`
//!   replays MovieLens in time order: TRAIN on the first 60% of edges, stream the rest in 4
//!   blocks through ADD, EVAL each block (Recall/NDCG@20, likes of the items of the first
//!   TRAIN, so that every policy is asked about the same edges) before it arrives under
//!   three policies: no update, the worker (SYNC after each block; W runs, default 3, the
//!   median run compared: its rounds fall by timing), a full TRAIN at each boundary; and,
//!   while each block streams, before every like of a user and item the database holds,
//!   whether the item is in that user's RECOMMEND TOP 20 EXCLUDE SEEN (thousands of
//!   likes, where the block EVAL has only the few users a block shares with the past);
//!   plus ADD-to-RECOMMEND latency, the worker's CPU seconds against the retrains', and
//!   ingest with the worker on and off (the streamed edges into copies of the trained
//!   database, R alternating runs each, default 5, medians compared).

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use gnnrec_engine::{Database, Options};
use gnnrec_storage::raw::RawBaseline;
use gnnrec_storage::schema::{self, edge_key, EdgeValue, Event};
use gnnrec_tests::synth::{self, SynthConfig};

/// TRAIN allocates every tensor of a step afresh; glibc's malloc returns that memory to the
/// kernel and faults it back in (a quarter of TRAIN's wall time), mimalloc reuses it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ingest") => ingest(&args[1..]),
        Some("load") => load_file(&args[1..]),
        Some("quality") => quality(&args[1..]),
        Some("train-scale") => train_scale(&args[1..]),
        Some("train-scale-run") => child_train(&args[1..]),
        Some("serve") => serve(&args[1..]),
        Some("freshness") => freshness(&args[1..]),
        // The two sides of `ingest`, run as child processes.
        Some("ingest-store") => child_store(&args[1..]),
        Some("ingest-raw") => child_raw(&args[1..]),
        Some("-h" | "--help") | None => {
            println!("{}", USAGE);
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(format!("unknown benchmark '{other}'\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gnnrec-bench: {e}");
            ExitCode::from(2)
        }
    }
}

const USAGE: &str = "usage: gnnrec-bench ingest [--edges N] [--seed S] [--rounds R] [--dir DIR]\n       \
                     gnnrec-bench load FILE [--dir DIR]\n       \
                     gnnrec-bench quality MOVIELENS_DIR [--split test|val] [--with 'key = value, ...'] [--seeds S,S,...] [--dir DIR]\n       \
                     gnnrec-bench train-scale [--edges N] [--small N] [--epochs E] [--dir DIR]\n       \
                     gnnrec-bench serve [--movielens DIR] [--items N] [--edges N] [--queries Q] [--epochs E] [--ef EF] [--dir DIR]\n       \
                     gnnrec-bench freshness MOVIELENS_DIR [--batch N] [--ingest-runs R] [--worker-runs W] [--with S] [--dir DIR]";

type Result<T> = std::result::Result<T, String>;

fn flag<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> Result<T> {
    match args.iter().position(|a| a == name) {
        Some(i) => {
            let text = args.get(i + 1).ok_or_else(|| format!("{name} needs a value"))?;
            // Numbers may be written 10_000_000; other values keep their underscores.
            text.parse()
                .or_else(|_| text.replace('_', "").parse())
                .map_err(|_| format!("bad value '{text}' for {name}"))
        }
        None => Ok(default),
    }
}

/// Copies a closed database (a directory tree of plain files).
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    let err = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    std::fs::create_dir_all(to).map_err(|e| err(to, e))?;
    for entry in std::fs::read_dir(from).map_err(|e| err(from, e))? {
        let entry = entry.map_err(|e| err(from, e))?;
        let target = to.join(entry.file_name());
        if entry.file_type().map_err(|e| err(&entry.path(), e))?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target).map_err(|e| err(&entry.path(), e))?;
        }
    }
    Ok(())
}

fn work_dir(args: &[String]) -> Result<tempfile::TempDir> {
    let base: PathBuf = flag(args, "--dir", std::env::temp_dir())?;
    tempfile::Builder::new()
        .prefix("gnnrec-bench")
        .tempdir_in(&base)
        .map_err(|e| format!("{}: {e}", base.display()))
}

fn ingest(args: &[String]) -> Result<()> {
    let edges: u64 = flag(args, "--edges", 2_000_000)?;
    let seed: u64 = flag(args, "--seed", 42)?;
    let rounds: usize = flag(args, "--rounds", 1)?;
    let dir = work_dir(args)?;
    let csv = dir.path().join("edges.csv");
    let cfg = SynthConfig::for_edges(edges, seed);
    let started = Instant::now();
    let file = std::fs::File::create(&csv).map_err(|e| e.to_string())?;
    let summary = synth::write_csv(&cfg, std::io::BufWriter::with_capacity(1 << 20, file))
        .map_err(|e| e.to_string())?;
    eprintln!("generated {summary} in {:.1}s", started.elapsed().as_secs_f64());

    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut store_runs = Vec::new();
    let mut raw_runs = Vec::new();
    // Alternate the two sides so that a noisy neighbour hurts both alike.
    for round in 0..rounds {
        for (side, runs) in [("ingest-store", &mut store_runs), ("ingest-raw", &mut raw_runs)] {
            let target = dir.path().join(format!("{side}-{round}"));
            let out = Command::new(&me)
                .arg(side)
                .arg(&csv)
                .arg(&target)
                .args(["--edges", &edges.to_string(), "--seed", &seed.to_string()])
                .output()
                .map_err(|e| e.to_string())?;
            if !out.status.success() {
                return Err(format!("{side} failed: {}", String::from_utf8_lossy(&out.stderr)));
            }
            let line = String::from_utf8_lossy(&out.stdout);
            let run: serde_json::Value =
                serde_json::from_str(line.trim()).map_err(|e| format!("{side}: {e}"))?;
            runs.push(run);
            std::fs::remove_dir_all(&target).map_err(|e| e.to_string())?;
        }
    }
    let median = |runs: &[serde_json::Value], key: &str| {
        let mut v: Vec<f64> = runs.iter().filter_map(|r| r[key].as_f64()).collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let store_rate = median(&store_runs, "edges_per_s");
    let raw_rate = median(&raw_runs, "edges_per_s");
    let ratio = store_rate / raw_rate;
    let machine = machine();
    println!("ingest: {edges} synthetic edges (seed {seed}), median of {rounds} round(s), {machine}");
    println!("{:<28} {:>14} {:>14} {:>12}", "", "edges/s", "peak RSS MB", "disk MB");
    for (name, runs, rate) in
        [("gnnrec LOAD", &store_runs, store_rate), ("raw RocksDB batched puts", &raw_runs, raw_rate)]
    {
        println!(
            "{name:<28} {rate:>14.0} {:>14.1} {:>12.1}",
            median(runs, "peak_rss_mb"),
            median(runs, "disk_mb")
        );
    }
    println!("ratio LOAD / raw: {ratio:.3}");
    let json = serde_json::json!({
        "bench": "ingest",
        "edges": edges,
        "seed": seed,
        "rounds": rounds,
        "load_edges_per_s": store_rate.round(),
        "raw_edges_per_s": raw_rate.round(),
        "ratio": (ratio * 1000.0).round() / 1000.0,
        "load_peak_rss_mb": median(&store_runs, "peak_rss_mb"),
        "raw_peak_rss_mb": median(&raw_runs, "peak_rss_mb"),
        "load_disk_mb": median(&store_runs, "disk_mb"),
        "raw_disk_mb": median(&raw_runs, "disk_mb"),
        "machine": machine,
    });
    println!("{json}");
    Ok(())
}

/// One LOAD into a fresh database; prints one JSON line.
fn child_store(args: &[String]) -> Result<()> {
    let [csv, target, ..] = args else { return Err("usage: ingest-store CSV DIR".into()) };
    let db = Database::open(target, Options::default()).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let summary = db.load_csv(csv, |_| {}).map_err(|e| e.to_string())?;
    let seconds = started.elapsed().as_secs_f64();
    db.close().map_err(|e| e.to_string())?;
    print_run(summary.edges, seconds, Path::new(target));
    Ok(())
}

/// A pre-encoded put: column family, key, value.
type Put = (&'static str, Vec<u8>, Vec<u8>);

/// The same key/value pairs as the store writes for the generated edges, as batched puts
/// in the store's order (new nodes, then the event log, then both edge indexes) and batch
/// size. Encoding happens before the clock starts: only the writes are timed.
fn child_raw(args: &[String]) -> Result<()> {
    let [_csv, target, rest @ ..] = args else { return Err("usage: ingest-raw CSV DIR".into()) };
    let edges: u64 = flag(rest, "--edges", 2_000_000)?;
    let seed: u64 = flag(rest, "--seed", 42)?;
    let cfg = SynthConfig::for_edges(edges, seed);
    let type_ids = ["click", "cart", "like", "buy"];
    let (mut users, mut items) = (std::collections::HashSet::new(), std::collections::HashSet::new());
    let (mut nodes, mut events, mut edge_puts) = (Vec::<Put>::new(), Vec::<Put>::new(), Vec::<Put>::new());
    let mut seq = 0u64;
    synth::generate(&cfg, |r| {
        seq += 1;
        let t = type_ids.iter().position(|t| *t == r.kind.as_str()).unwrap_or(0) as u16;
        for (kind, id, fresh) in [("u", r.user, users.insert(r.user)), ("i", r.item, items.insert(r.item))] {
            if fresh {
                let name = format!("{kind}{id}").into_bytes();
                let (ids_cf, names_cf) = if kind == "u" {
                    (schema::CF_USER_IDS, schema::CF_USER_NAMES)
                } else {
                    (schema::CF_ITEM_IDS, schema::CF_ITEM_NAMES)
                };
                nodes.push((ids_cf, name.clone(), id.to_be_bytes().to_vec()));
                nodes.push((names_cf, id.to_be_bytes().to_vec(), name));
            }
        }
        let value = EdgeValue::single(r.weight, r.ts).encode().to_vec();
        let event = Event::AddEdge { user: r.user, edge_type: t, item: r.item, weight: r.weight, ts: r.ts };
        events.push((schema::CF_EVENTS, seq.to_be_bytes().to_vec(), event.encode().to_vec()));
        edge_puts.push((schema::CF_EDGES_OUT, edge_key(r.user, t, r.item).to_vec(), value.clone()));
        edge_puts.push((schema::CF_EDGES_IN, edge_key(r.item, t, r.user).to_vec(), value));
    })
    .map_err(|e| e.to_string())?;

    // The store writes 50,000 edges per batch.
    const EDGES_PER_BATCH: usize = 50_000;
    let db = RawBaseline::create(target).map_err(|e| e.to_string())?;
    let started = Instant::now();
    for (puts, per_batch) in
        [(&nodes, 2 * EDGES_PER_BATCH), (&events, EDGES_PER_BATCH), (&edge_puts, 2 * EDGES_PER_BATCH)]
    {
        for batch in puts.chunks(per_batch) {
            db.put_batch(batch.iter().map(|(cf, k, v)| (*cf, k.as_slice(), v.as_slice())))
                .map_err(|e| e.to_string())?;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    drop(db);
    print_run(seq, seconds, Path::new(target));
    Ok(())
}

fn print_run(edges: u64, seconds: f64, dir: &Path) {
    let json = serde_json::json!({
        "edges": edges,
        "seconds": seconds,
        "edges_per_s": edges as f64 / seconds,
        "peak_rss_mb": peak_rss_mb(),
        "disk_mb": dir_bytes(dir) as f64 / 1e6,
    });
    println!("{json}");
}

fn load_file(args: &[String]) -> Result<()> {
    let csv = args.first().ok_or("usage: gnnrec-bench load FILE [--dir DIR]")?;
    let dir = work_dir(args)?;
    let db = Database::open(dir.path().join("db"), Options::default()).map_err(|e| e.to_string())?;
    // Declare the file's edge types that the database does not know yet.
    let text = std::fs::read_to_string(csv).map_err(|e| format!("{csv}: {e}"))?;
    let mut declared: Vec<String> = db.types().into_iter().map(|t| t.name).collect();
    for line in text.lines().skip(1) {
        if let Some(t) = line.split(',').nth(2) {
            if !declared.iter().any(|d| d == t) {
                db.create_type(t, 1.0).map_err(|e| e.to_string())?;
                declared.push(t.to_owned());
            }
        }
    }
    let started = Instant::now();
    let summary = db.load_csv(csv, |_| {}).map_err(|e| e.to_string())?;
    let seconds = started.elapsed().as_secs_f64();
    let machine = machine();
    println!(
        "load {csv}: {} edges in {seconds:.3}s ({:.0} edges/s), {machine}",
        summary.edges,
        summary.edges as f64 / seconds
    );
    let json = serde_json::json!({
        "bench": "load",
        "file": csv,
        "edges": summary.edges,
        "seconds": seconds,
        "edges_per_s": summary.edges as f64 / seconds,
        "peak_rss_mb": peak_rss_mb(),
        "machine": machine,
    });
    println!("{json}");
    Ok(())
}

fn train_scale(args: &[String]) -> Result<()> {
    let edges: u64 = flag(args, "--edges", 10_000_000)?;
    let small: u64 = flag(args, "--small", 1_000_000)?;
    let epochs: u64 = flag(args, "--epochs", 1)?;
    let dir = work_dir(args)?;
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut runs = Vec::new();
    for n in [small, edges] {
        let out = Command::new(&me)
            .arg("train-scale-run")
            .arg(dir.path().join(format!("db-{n}")))
            .args(["--edges", &n.to_string(), "--epochs", &epochs.to_string()])
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!("training on {n} edges failed: {}", String::from_utf8_lossy(&out.stderr)));
        }
        let run: serde_json::Value =
            serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).map_err(|e| e.to_string())?;
        runs.push(run);
    }
    let machine = machine();
    println!("train-scale: synthetic graphs, {epochs} epoch(s) each, {machine}");
    println!(
        "{:>12} {:>10} {:>10} {:>8} {:>10} {:>10} {:>10} {:>10} {:>12}",
        "edges", "users", "items", "steps", "s/epoch", "ms/step", "rows/step", "us/row", "peak RSS MB"
    );
    for r in &runs {
        let f = |key: &str| r[key].as_f64().unwrap_or(f64::NAN);
        println!(
            "{:>12} {:>10} {:>10} {:>8} {:>10.1} {:>10.2} {:>10.0} {:>10.3} {:>12.0}",
            r["edges"],
            r["users"],
            r["items"],
            r["steps"],
            f("epoch_seconds"),
            f("step_ms"),
            f("rows_per_step"),
            f("us_per_row"),
            f("peak_rss_mb")
        );
    }
    let ratio =
        |key: &str| runs[1][key].as_f64().unwrap_or(f64::NAN) / runs[0][key].as_f64().unwrap_or(f64::NAN);
    let nodes = |r: &serde_json::Value| {
        r["users"].as_f64().unwrap_or(f64::NAN) + r["items"].as_f64().unwrap_or(f64::NAN)
    };
    let (step_ratio, row_ratio, nodes_ratio) =
        (ratio("step_ms"), ratio("us_per_row"), nodes(&runs[1]) / nodes(&runs[0]));
    println!(
        "large / small: nodes x{nodes_ratio:.1}, ms/step x{step_ratio:.2}, us per gathered row x{row_ratio:.2} \
         (a step's work is its distinct rows, bounded by the batch)"
    );
    let json = serde_json::json!({
        "bench": "train-scale",
        "runs": runs,
        "nodes_ratio": nodes_ratio,
        "step_ratio": step_ratio,
        "row_cost_ratio": row_ratio,
        "machine": machine,
    });
    println!("{json}");
    Ok(())
}

/// Generates, loads and trains one synthetic graph; prints one JSON line.
fn child_train(args: &[String]) -> Result<()> {
    let target = args.first().ok_or("usage: train-scale-run DIR --edges N --epochs E")?;
    let edges: u64 = flag(args, "--edges", 1_000_000)?;
    let epochs: usize = flag(args, "--epochs", 1)?;
    let csv = Path::new(target).with_extension("csv");
    let cfg = SynthConfig::for_edges(edges, 42);
    let file = std::fs::File::create(&csv).map_err(|e| e.to_string())?;
    synth::write_csv(&cfg, std::io::BufWriter::with_capacity(1 << 20, file)).map_err(|e| e.to_string())?;
    let db = Database::open(target, Options::default()).map_err(|e| e.to_string())?;
    db.load_csv(&csv, |_| {}).map_err(|e| e.to_string())?;
    std::fs::remove_file(&csv).map_err(|e| e.to_string())?;
    let config = gnnrec_engine::TrainConfig { epochs, refit: 0, ..Default::default() };
    let mut reports = Vec::new();
    let started = Instant::now();
    let report = db.train(&config, |e| reports.push(e)).map_err(|e| e.to_string())?;
    let total = started.elapsed().as_secs_f64();
    let steps: usize = reports.iter().map(|r| r.steps).sum();
    let step_seconds: f64 =
        reports.iter().map(|r| r.step_seconds * r.steps as f64).sum::<f64>() / steps.max(1) as f64;
    let epoch_seconds: f64 = reports.iter().map(|r| r.seconds).sum::<f64>() / reports.len().max(1) as f64;
    let rows_per_step: f64 =
        reports.iter().map(|r| r.rows_per_step * r.steps as f64).sum::<f64>() / steps.max(1) as f64;
    let json = serde_json::json!({
        "edges": edges,
        "users": report.users,
        "items": report.items,
        "examples": report.examples,
        "steps": steps,
        "epoch_seconds": epoch_seconds,
        "step_ms": step_seconds * 1000.0,
        "rows_per_step": rows_per_step,
        "us_per_row": step_seconds * 1e6 / rows_per_step.max(1.0),
        "train_seconds": total,
        "peak_rss_mb": peak_rss_mb(),
    });
    println!("{json}");
    Ok(())
}

fn quality(args: &[String]) -> Result<()> {
    let data = PathBuf::from(args.first().ok_or("usage: gnnrec-bench quality MOVIELENS_DIR")?);
    let split: String = flag(args, "--split", "test".to_owned())?;
    let (train_file, test_file) = match split.as_str() {
        "test" => ("train.csv", "test.csv"),
        "val" => ("val_train.csv", "val_test.csv"),
        other => return Err(format!("--split is test or val, not '{other}'")),
    };
    let with: String = flag(args, "--with", String::new())?;
    let config = train_config(args)?;
    let seeds: String = flag(args, "--seeds", config.seed.to_string())?;
    let seeds: Vec<u64> = seeds
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .map_err(|_| format!("--seeds: '{s}' is not a seed (whole numbers, comma-separated)"))
        })
        .collect::<Result<_>>()?;
    let dir = work_dir(args)?;
    let mut runs = Vec::with_capacity(seeds.len());
    for &seed in &seeds {
        let config = gnnrec_engine::TrainConfig { seed, ..config.clone() };
        let path = dir.path().join(format!("db-{seed}"));
        runs.push(quality_run(&data, train_file, test_file, &config, &path)?);
        // Each run has its own database; only the figures are kept.
        std::fs::remove_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let peers = std::fs::read_to_string(data.join("PEERS.md")).unwrap_or_default();
    let peer = |key: &str| {
        peers
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('=')?.trim().parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    let (best_recall, best_ndcg, lightgcn_s) =
        (peer("BEST_RECALL20"), peer("BEST_NDCG20"), peer("LIGHTGCN_TRAIN_S"));
    let machine = machine();
    println!("quality on MovieLens ({split} split: {train_file} -> {test_file}), {machine}");
    if split == "val" {
        println!("(PEERS.md holds test-split figures: the ratios below compare across splits)");
    }
    let first = &runs[0];
    println!(
        "users evaluated {}, held-out edges {}, skipped {}",
        first.at20.users, first.at20.edges, first.at20.skipped
    );
    if runs.len() > 1 {
        println!(
            "{:<8} {:>9} {:>9} {:>9} {:>9} {:>8} {:>7}",
            "seed", "R@10", "R@20", "N@10", "N@20", "train s", "epochs"
        );
        for (seed, r) in seeds.iter().zip(&runs) {
            println!(
                "{seed:<8} {:>9.4} {:>9.4} {:>9.4} {:>9.4} {:>8.1} {:>4} ({})",
                r.at10.metrics.recall,
                r.at20.metrics.recall,
                r.at10.metrics.ndcg,
                r.at20.metrics.ndcg,
                r.report.seconds,
                r.report.epochs,
                r.report.best_epoch
            );
        }
        println!("mean over {} seeds, and the standard deviation across them:", runs.len());
    }
    let stat = |f: &dyn Fn(&QualityRun) -> f64| mean_sd(&runs.iter().map(f).collect::<Vec<_>>());
    let recall10 = stat(&|r| r.at10.metrics.recall);
    let recall20 = stat(&|r| r.at20.metrics.recall);
    let ndcg10 = stat(&|r| r.at10.metrics.ndcg);
    let ndcg20 = stat(&|r| r.at20.metrics.ndcg);
    let train_seconds = stat(&|r| r.report.seconds);
    println!("{:<12} {:>9} {:>9} {:>9} {:>9}", "metric", "gnnrec", "(sd)", "best peer", "ratio");
    for (name, (ours, sd), best) in [
        ("Recall@10", recall10, f64::NAN),
        ("Recall@20", recall20, best_recall),
        ("NDCG@10", ndcg10, f64::NAN),
        ("NDCG@20", ndcg20, best_ndcg),
        ("HitRate@20", stat(&|r| r.at20.metrics.hit_rate), f64::NAN),
        ("MRR", stat(&|r| r.at20.metrics.mrr), f64::NAN),
        ("AUC", stat(&|r| r.at20.metrics.auc), f64::NAN),
    ] {
        println!("{name:<12} {ours:>9.4} {sd:>9.4} {best:>9.4} {:>9.3}", ours / best);
    }
    println!(
        "train {:.1}s ({} epochs, best {}), LightGCN peer {lightgcn_s:.1}s, ratio {:.3}; scoring all test users {:.2}s; peak RSS {:.0} MB",
        train_seconds.0,
        first.report.epochs,
        first.report.best_epoch,
        train_seconds.0 / lightgcn_s,
        first.score_seconds,
        peak_rss_mb()
    );
    let per_seed: Vec<serde_json::Value> = seeds
        .iter()
        .zip(&runs)
        .map(|(seed, r)| {
            serde_json::json!({
                "seed": seed,
                "recall10": r.at10.metrics.recall,
                "recall20": r.at20.metrics.recall,
                "ndcg10": r.at10.metrics.ndcg,
                "ndcg20": r.at20.metrics.ndcg,
                "train_seconds": r.report.seconds,
                "epochs": r.report.epochs,
                "best_epoch": r.report.best_epoch,
                "val_ndcg20": r.report.val_ndcg,
            })
        })
        .collect();
    // The top-level figures are means over the seeds (one seed: that run's).
    let json = serde_json::json!({
        "bench": "quality",
        "split": split,
        "seeds": seeds,
        "recall10": recall10.0,
        "recall20": recall20.0,
        "ndcg10": ndcg10.0,
        "ndcg20": ndcg20.0,
        "recall20_sd": recall20.1,
        "ndcg20_sd": ndcg20.1,
        "best_peer_recall20": best_recall,
        "best_peer_ndcg20": best_ndcg,
        "recall20_ratio": recall20.0 / best_recall,
        "ndcg20_ratio": ndcg20.0 / best_ndcg,
        "train_seconds": train_seconds.0,
        "lightgcn_train_seconds": lightgcn_s,
        "epochs": first.report.epochs,
        "best_epoch": first.report.best_epoch,
        "val_ndcg20": first.report.val_ndcg,
        "per_seed": per_seed,
        "peak_rss_mb": peak_rss_mb(),
        "with": with,
        "machine": machine,
    });
    println!("{json}");
    Ok(())
}

/// One quality run: a fresh database, LOAD, TRAIN, EVAL at 20 and at 10.
struct QualityRun {
    report: gnnrec_engine::TrainReport,
    at20: gnnrec_engine::EvalReport,
    at10: gnnrec_engine::EvalReport,
    score_seconds: f64,
}

fn quality_run(
    data: &Path,
    train_file: &str,
    test_file: &str,
    config: &gnnrec_engine::TrainConfig,
    path: &Path,
) -> Result<QualityRun> {
    let db = Database::open(path, Options::default()).map_err(|e| e.to_string())?;
    db.create_type("view", 0.5).map_err(|e| e.to_string())?;
    db.load_csv(data.join(train_file), |_| {}).map_err(|e| e.to_string())?;
    let report = db
        .train(config, |e| {
            eprintln!(
                "seed {}  epoch {:>3}  loss {:.4}  val ndcg@20 {:.4}  {:.1}s",
                config.seed, e.epoch, e.loss, e.val_ndcg, e.seconds
            )
        })
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let at20 = db.evaluate(data.join(test_file), 20, Some("like")).map_err(|e| e.to_string())?;
    let score_seconds = started.elapsed().as_secs_f64();
    let at10 = db.evaluate(data.join(test_file), 10, Some("like")).map_err(|e| e.to_string())?;
    Ok(QualityRun { report, at20, at10, score_seconds })
}

/// Mean and sample standard deviation (0 for a single value).
fn mean_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    if values.len() < 2 {
        return (mean, 0.0);
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

/// Peak resident set size of this process, from /proc (Linux).
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries.filter_map(|e| e.ok()?.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum()
        })
        .unwrap_or(0)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines().find_map(|l| {
                l.strip_prefix("model name").map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{cores} cores, {cpu}")
}

/// RECOMMEND TOP 10 EXCLUDE SEEN through the index and by exact scoring, side by side, on
/// MovieLens (when its directory is given) and on a synthetic catalogue of `--items` items.
fn serve(args: &[String]) -> Result<()> {
    let movielens: String = flag(args, "--movielens", String::new())?;
    let items: u32 = flag(args, "--items", 1_000_000)?;
    let edges: u64 = flag(args, "--edges", u64::from(items) * 5)?;
    let queries: usize = flag(args, "--queries", 2000)?;
    let epochs: usize = flag(args, "--epochs", 1)?;
    let ef: usize = flag(args, "--ef", 0)?;
    let ef = (ef > 0).then_some(ef);
    let dir = work_dir(args)?;
    let machine = machine();
    let mut runs = Vec::new();
    if !movielens.is_empty() {
        let path = dir.path().join("movielens");
        let db = Database::open(&path, serve_options()).map_err(|e| e.to_string())?;
        db.create_type("view", 0.5).map_err(|e| e.to_string())?;
        db.load_csv(Path::new(&movielens).join("train.csv"), |_| {}).map_err(|e| e.to_string())?;
        db.train(&gnnrec_engine::TrainConfig::default(), |_| {}).map_err(|e| e.to_string())?;
        runs.push(serve_run("movielens", db, &path, queries, ef)?);
    }
    if items > 0 {
        // Nearly uniform popularity, so that almost every item of the catalogue has an edge
        // (an item exists once something touches it).
        let cfg = SynthConfig {
            users: (items / 5).max(50),
            items,
            edges,
            item_skew: 0.2,
            ..SynthConfig::for_edges(edges, 42)
        };
        let path = dir.path().join("synthetic");
        let csv = dir.path().join("synthetic.csv");
        let file = std::fs::File::create(&csv).map_err(|e| e.to_string())?;
        synth::write_csv(&cfg, std::io::BufWriter::with_capacity(1 << 20, file))
            .map_err(|e| e.to_string())?;
        let db = Database::open(&path, serve_options()).map_err(|e| e.to_string())?;
        db.load_csv(&csv, |_| {}).map_err(|e| e.to_string())?;
        std::fs::remove_file(&csv).map_err(|e| e.to_string())?;
        let config = gnnrec_engine::TrainConfig { epochs, refit: 0, ..Default::default() };
        let started = Instant::now();
        db.train(&config, |e| eprintln!("epoch {} loss {:.4} {:.1}s", e.epoch, e.loss, e.seconds))
            .map_err(|e| e.to_string())?;
        eprintln!("trained ({epochs} epoch(s)) and indexed in {:.1}s", started.elapsed().as_secs_f64());
        runs.push(serve_run("synthetic", db, &path, queries, ef)?);
    }
    println!("serve: RECOMMEND TOP 10 EXCLUDE SEEN, index vs exact scoring, {machine}");
    for r in &runs {
        let f = |key: &str| r[key].as_f64().unwrap_or(f64::NAN);
        println!(
            "{} ({} items, {} queries): recall@10 {:.4}, seen items returned {}, index fell back to exact {} times; the planner picks {}",
            r["data"], r["items"], r["queries"], f("recall10"), r["seen_returned"], r["index_fallbacks"], r["planner_choice"]
        );
        println!(
            "  latency ms      p50      p99      max\n  index      {:>8.3} {:>8.3} {:>8.3}\n  exact      {:>8.3} {:>8.3} {:>8.3}",
            f("index_p50_ms"),
            f("index_p99_ms"),
            f("index_max_ms"),
            f("exact_p50_ms"),
            f("exact_p99_ms"),
            f("exact_max_ms")
        );
        println!(
            "  exact / index: p50 x{:.1}, p99 x{:.1}; index QPS 1 thread {:.0}, 2 threads {:.0}; exact QPS 1 thread {:.0}",
            f("exact_p50_ms") / f("index_p50_ms"),
            f("exact_p99_ms") / f("index_p99_ms"),
            f("index_qps_1"),
            f("index_qps_2"),
            f("exact_qps_1")
        );
        println!(
            "  index: build {:.2}s, save {:.2}s, load {:.3}s, rebuild at open {:.2}s; memory {:.1} MB, disk {:.1} MB; peak RSS {:.0} MB",
            f("build_seconds"),
            f("save_seconds"),
            f("load_seconds"),
            f("rebuild_seconds"),
            f("index_memory_mb"),
            f("index_disk_mb"),
            f("peak_rss_mb")
        );
        for point in r["ef_sweep"].as_array().into_iter().flatten() {
            let g = |key: &str| point[key].as_f64().unwrap_or(f64::NAN);
            println!(
                "  ef {:>4}: recall@10 {:.4}, p50 {:.3} ms, p99 {:.3} ms",
                point["ef"],
                g("recall10"),
                g("p50_ms"),
                g("p99_ms")
            );
        }
    }
    println!("{}", serde_json::json!({ "bench": "serve", "runs": runs, "machine": machine }));
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// The serve benchmark measures the index itself, on small catalogues too: TRAIN builds and
/// saves it whatever the catalogue's size.
fn serve_options() -> Options {
    Options { index_from: 0, ..Options::default() }
}

/// Queries `queries` random users of a trained database both ways, then measures the
/// index's save, load and rebuild by reopening the database.
fn serve_run(
    data: &str,
    db: Database,
    path: &Path,
    queries: usize,
    ef: Option<usize>,
) -> Result<serde_json::Value> {
    use gnnrec_engine::{IndexOrigin, Method, RecommendOptions, Strategy};
    use rand::{Rng, SeedableRng};
    let e = |e: gnnrec_engine::Error| e.to_string();
    let built = db.index_info().map_err(e)?;
    let (build_seconds, save_seconds) = match built.origin {
        IndexOrigin::Built { build_seconds, save_seconds } => (build_seconds, save_seconds),
        ref other => return Err(format!("expected an index built by TRAIN, found: {other}")),
    };
    // Users drawn at random among those with edges (ids are u<N> in both data sets).
    let stats = db.stats().map_err(e)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut users: Vec<(String, std::collections::HashSet<String>)> = Vec::with_capacity(queries);
    let mut attempts = 0;
    while users.len() < queries && attempts < queries * 50 {
        attempts += 1;
        let name = if data == "movielens" {
            format!("u{}", rng.gen_range(1..=stats.users.max(1) * 2))
        } else {
            format!("u{}", rng.gen_range(0..stats.users.max(1) * 2))
        };
        if let Ok(info) = db.user(&name) {
            if !info.edges.is_empty() {
                let seen = info.edges.into_iter().map(|e| e.other).collect();
                users.push((name, seen));
            }
        }
    }
    let options = |strategy| {
        let mut o = RecommendOptions::new(10);
        o.exclude_seen = true;
        o.strategy = strategy;
        o.ef = ef;
        o
    };
    // The index is asked for explicitly: on a small catalogue the planner would score exactly.
    let (index_options, exact_options) = (options(Strategy::Index), options(Strategy::Exact));
    let planner =
        db.explain_recommend(&users.first().ok_or("no user with edges")?.0, &options(Strategy::Auto));
    let planner = planner.map_err(e)?.method.to_string();
    let (mut index_ms, mut exact_ms) = (Vec::new(), Vec::new());
    let (mut hits, mut wanted, mut seen_returned, mut fallbacks) = (0usize, 0usize, 0usize, 0usize);
    let mut truths: Vec<std::collections::HashSet<String>> = Vec::with_capacity(users.len());
    // Each way in its own pass over the users: an exact scan streams every item vector
    // through the caches, and interleaved with it the index would be timed on cold caches.
    let mut answers = Vec::with_capacity(users.len());
    for (user, _) in &users {
        let t = Instant::now();
        answers.push(db.recommend_with(user, &index_options).map_err(e)?);
        index_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    for ((user, seen), fast) in users.iter().zip(answers) {
        let t = Instant::now();
        let exact = db.recommend_with(user, &exact_options).map_err(e)?;
        exact_ms.push(t.elapsed().as_secs_f64() * 1e3);
        if !matches!(fast.plan.method, Method::Index { .. }) {
            fallbacks += 1;
        }
        let truth: std::collections::HashSet<&str> = exact.items.iter().map(|r| r.item.as_str()).collect();
        hits += fast.items.iter().filter(|r| truth.contains(r.item.as_str())).count();
        wanted += truth.len();
        seen_returned += fast.items.iter().chain(&exact.items).filter(|r| seen.contains(&r.item)).count();
        truths.push(exact.items.into_iter().map(|r| r.item).collect());
    }
    // The breadth against recall and latency, on the same users (the index, 1 thread).
    let mut sweep = Vec::new();
    for breadth in [64usize, 96, 128, 192, 256] {
        let mut o = options(Strategy::Index);
        o.ef = Some(breadth);
        let (mut ms, mut found, mut returned) = (Vec::new(), 0usize, 0usize);
        for ((user, seen), truth) in users.iter().zip(&truths) {
            let t = Instant::now();
            let r = db.recommend_with(user, &o).map_err(e)?;
            ms.push(t.elapsed().as_secs_f64() * 1e3);
            found += r.items.iter().filter(|x| truth.contains(&x.item)).count();
            returned += r.items.iter().filter(|x| seen.contains(&x.item)).count();
        }
        seen_returned += returned;
        ms.sort_by(f64::total_cmp);
        sweep.push(serde_json::json!({
            "ef": breadth,
            "recall10": found as f64 / wanted.max(1) as f64,
            "p50_ms": percentile(&ms, 0.5),
            "p99_ms": percentile(&ms, 0.99),
        }));
    }
    let qps = |threads: usize, options: &RecommendOptions| -> Result<f64> {
        let started = Instant::now();
        let chunk = users.len().div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            let handles: Vec<_> = users
                .chunks(chunk)
                .map(|part| {
                    let db = &db;
                    scope.spawn(move || -> Result<()> {
                        for (user, _) in part {
                            db.recommend_with(user, options).map_err(|e| e.to_string())?;
                        }
                        Ok(())
                    })
                })
                .collect();
            handles
                .into_iter()
                .try_for_each(|h| h.join().map_err(|_| "a query thread panicked".to_owned())?)
        })?;
        Ok(users.len() as f64 / started.elapsed().as_secs_f64())
    };
    let (index_qps_1, index_qps_2) = (qps(1, &index_options)?, qps(2, &index_options)?);
    let exact_qps_1 = qps(1, &exact_options)?;
    index_ms.sort_by(f64::total_cmp);
    exact_ms.sort_by(f64::total_cmp);
    let peak = peak_rss_mb();
    drop(db);

    // Reopen: the first query loads the saved index; then without it: rebuilt at open.
    let reopen = |what: &str| -> Result<f64> {
        let db = Database::open(path, serve_options()).map_err(e)?;
        let info = db.index_info().map_err(e)?;
        match info.origin {
            IndexOrigin::Loaded { seconds } if what == "load" => Ok(seconds),
            IndexOrigin::Rebuilt { seconds, .. } if what == "rebuild" => Ok(seconds),
            other => Err(format!("expected the index to {what}, found: {other}")),
        }
    };
    let load_seconds = reopen("load")?;
    std::fs::remove_dir_all(path.join("index")).map_err(|e| e.to_string())?;
    let rebuild_seconds = reopen("rebuild")?;

    Ok(serde_json::json!({
        "data": data,
        "items": built.items,
        "queries": users.len(),
        "recall10": hits as f64 / wanted.max(1) as f64,
        "seen_returned": seen_returned,
        "index_fallbacks": fallbacks,
        "planner_choice": planner,
        "index_p50_ms": percentile(&index_ms, 0.5),
        "index_p99_ms": percentile(&index_ms, 0.99),
        "index_max_ms": percentile(&index_ms, 1.0),
        "exact_p50_ms": percentile(&exact_ms, 0.5),
        "exact_p99_ms": percentile(&exact_ms, 0.99),
        "exact_max_ms": percentile(&exact_ms, 1.0),
        "index_qps_1": index_qps_1,
        "index_qps_2": index_qps_2,
        "exact_qps_1": exact_qps_1,
        "build_seconds": build_seconds,
        "save_seconds": save_seconds,
        "load_seconds": load_seconds,
        "rebuild_seconds": rebuild_seconds,
        "index_memory_mb": built.memory_bytes as f64 / 1e6,
        "index_disk_mb": built.disk_bytes as f64 / 1e6,
        "peak_rss_mb": peak,
        "ef_sweep": sweep,
    }))
}

/// MovieLens replayed in time order: train on the first 60% of edges, stream the rest in 4
/// blocks through ADD, and EVAL each block before it arrives under three policies side by
/// side: (a) no update after the first TRAIN, (b) the worker, (c) a full TRAIN at each
/// block boundary.
/// One MovieLens rating: user, item, type, weight, timestamp.
type Rating = (String, String, String, f32, i64);

/// The defaults, changed by `--with "key = value, ..."` as TRAIN WITH would change them.
fn train_config(args: &[String]) -> Result<gnnrec_engine::TrainConfig> {
    let with: String = flag(args, "--with", String::new())?;
    let mut config = gnnrec_engine::TrainConfig::default();
    if !with.is_empty() {
        match gnnrec_engine::query::parse_statement(&format!("TRAIN WITH {with}")) {
            Ok(gnnrec_engine::query::Statement::Train { with, .. }) => {
                config.apply(&with).map_err(|e| e.to_string())?
            }
            Ok(_) => unreachable!("a TRAIN statement parses as TRAIN"),
            Err(e) => return Err(format!("--with: {e}")),
        }
    }
    Ok(config)
}

fn freshness(args: &[String]) -> Result<()> {
    use gnnrec_engine::{Interaction, WorkerMode};
    let data = PathBuf::from(args.first().ok_or("usage: gnnrec-bench freshness MOVIELENS_DIR")?);
    let batch: u64 = flag(args, "--batch", gnnrec_engine::WorkerSettings::default().batch)?;
    let ingest_runs: usize = flag(args, "--ingest-runs", 5)?;
    let worker_runs: usize = flag(args, "--worker-runs", 3)?;
    if worker_runs == 0 {
        return Err("--worker-runs must be at least 1".into());
    }
    let text = std::fs::read_to_string(data.join("edges.csv")).map_err(|e| format!("edges.csv: {e}"))?;
    let mut rows: Vec<Rating> = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let bad = || format!("edges.csv:{}: expected user,item,type,weight,timestamp", n + 1);
        if f.len() != 5 {
            return Err(bad());
        }
        let weight = f[3].parse().map_err(|_| bad())?;
        let ts = f[4].parse().map_err(|_| bad())?;
        rows.push((f[0].to_owned(), f[1].to_owned(), f[2].to_owned(), weight, ts));
    }
    rows.sort_by_key(|r| r.4);
    let cut = rows.len() * 6 / 10;
    let block_len = (rows.len() - cut).div_ceil(4);
    let dir = work_dir(args)?;
    let write = |name: &str, part: &[Rating]| -> Result<PathBuf> {
        let path = dir.path().join(name);
        let mut out = String::from("user,item,type,weight,timestamp\n");
        for (u, i, t, w, ts) in part {
            out.push_str(&format!("{u},{i},{t},{w},{ts}\n"));
        }
        std::fs::write(&path, out).map_err(|e| e.to_string())?;
        Ok(path)
    };
    let initial = write("initial.csv", &rows[..cut])?;
    let initial_users: std::collections::HashSet<&str> = rows[..cut].iter().map(|r| r.0.as_str()).collect();
    let initial_items: std::collections::HashSet<&str> = rows[..cut].iter().map(|r| r.1.as_str()).collect();
    let blocks: Vec<&[Rating]> = rows[cut..].chunks(block_len).collect();
    // Each block's EVAL asks about the items of the first TRAIN only. An item added later
    // has no vector under "no update", where EVAL would skip its edges and with them the
    // users who have no other: the policies would be measured on different users.
    let block_files: Vec<PathBuf> = blocks
        .iter()
        .enumerate()
        .map(|(k, b)| {
            let known: Vec<Rating> =
                b.iter().filter(|r| initial_items.contains(r.1.as_str())).cloned().collect();
            write(&format!("block{k}.csv"), &known)
        })
        .collect::<Result<_>>()?;

    let e = |e: gnnrec_engine::Error| e.to_string();
    let config = train_config(args)?;
    // One first TRAIN; every run below starts from a copy of it.
    let base = dir.path().join("base");
    {
        let db =
            Database::open(&base, Options { worker: WorkerMode::Off, ..Options::default() }).map_err(e)?;
        db.create_type("view", 0.5).map_err(e)?;
        db.load_csv(&initial, |_| {}).map_err(e)?;
        db.train(&config, |_| {}).map_err(e)?;
        db.close().map_err(e)?;
    }
    let open_copy = |name: &str, mode: WorkerMode| -> Result<Database> {
        let path = dir.path().join(name);
        copy_dir(&base, &path)?;
        let db = Database::open(&path, Options { worker: mode, ..Options::default() }).map_err(e)?;
        if mode == WorkerMode::On {
            let mut settings = db.worker_settings();
            settings.batch = batch;
            db.set_worker(settings).map_err(e)?;
        }
        Ok(db)
    };
    let mut results = Vec::new();
    let mut latencies_ms: Vec<f64> = Vec::new();
    // The worker's rounds fall where its timer and batch size put them, so its figure moves
    // from run to run: it runs several times and the median run is the one compared.
    let policies = std::iter::once(("none", 0))
        .chain((0..worker_runs).map(|run| ("worker", run)))
        .chain(std::iter::once(("retrain", 0)));
    for (policy, run) in policies {
        let mode = if policy == "worker" { WorkerMode::On } else { WorkerMode::Off };
        let name = format!("{policy}-{run}");
        let db = open_copy(&name, mode)?;
        let (mut recall, mut ndcg, mut eval_users, mut update_seconds, mut retrain_cpu) =
            (Vec::new(), Vec::new(), Vec::new(), 0.0f64, 0.0f64);
        let (mut known_users, mut known_items) = (initial_users.clone(), initial_items.clone());
        let mut next_hits: Vec<(usize, usize)> = Vec::new();
        for (k, block) in blocks.iter().enumerate() {
            let m = db.evaluate(&block_files[k], 20, Some("like")).map_err(e)?;
            recall.push(m.metrics.recall);
            ndcg.push(m.metrics.ndcg);
            eval_users.push(m.users);
            let (mut hits, mut asked) = (0, 0);
            for (n, (u, i, t, w, ts)) in block.iter().enumerate() {
                // Before each like of a user and an item the database already holds: is the
                // item among the user's RECOMMEND TOP 20 EXCLUDE SEEN right now?
                if t == "like" && known_users.contains(u.as_str()) && known_items.contains(i.as_str()) {
                    let r = db.recommend(u, 20, true, Some("like")).map_err(e)?;
                    asked += 1;
                    hits += usize::from(r.items.iter().any(|x| &x.item == i));
                }
                db.add(&Interaction::new(u.as_str(), t.as_str(), i.as_str()).weight(*w).at(*ts))
                    .map_err(e)?;
                known_users.insert(u.as_str());
                known_items.insert(i.as_str());
                if policy == "worker" && n % 50 == 0 {
                    // The ADD is acknowledged: how long until this user's RECOMMEND shows it?
                    let acked = Instant::now();
                    let r = db.recommend(u, 10, true, None).map_err(e)?;
                    if r.items.iter().any(|x| &x.item == i) {
                        return Err(format!("RECOMMEND {u} still shows {i} after its ADD"));
                    }
                    latencies_ms.push(acked.elapsed().as_secs_f64() * 1e3);
                }
            }
            let started = Instant::now();
            let cpu = cpu_time::ProcessTime::now();
            match policy {
                "worker" => db.sync().map_err(e)?,
                "retrain" => {
                    db.train(&config, |_| {}).map_err(e)?;
                    retrain_cpu += cpu.elapsed().as_secs_f64();
                }
                _ => {}
            }
            update_seconds += started.elapsed().as_secs_f64();
            next_hits.push((hits, asked));
        }
        let status = db.worker_status().map_err(e)?;
        let busy = status.as_ref().map_or(0.0, |s| s.busy_seconds);
        // The worker's threads do nothing else; a TRAIN's CPU is the whole process's meanwhile.
        let cpu =
            if policy == "worker" { status.as_ref().map_or(0.0, |s| s.cpu_seconds) } else { retrain_cpu };
        let rounds = status.as_ref().map_or(0, |s| s.rounds);
        let full = status.as_ref().map_or(0, |s| s.full_retrains);
        db.close().map_err(e)?;
        std::fs::remove_dir_all(dir.path().join(&name)).map_err(|e| e.to_string())?;
        results.push(serde_json::json!({
            "policy": policy,
            "run": run,
            "recall20": recall,
            "ndcg20": ndcg,
            "eval_users": eval_users,
            "next_hit20": next_hits.iter().map(|&(h, n)| h as f64 / n.max(1) as f64).collect::<Vec<_>>(),
            "next_asked": next_hits.iter().map(|&(_, n)| n).collect::<Vec<_>>(),
            "mean_next_hit20": next_hits.iter().map(|h| h.0).sum::<usize>() as f64
                / next_hits.iter().map(|h| h.1).sum::<usize>().max(1) as f64,
            "mean_recall20": recall.iter().sum::<f64>() / recall.len() as f64,
            "mean_ndcg20": ndcg.iter().sum::<f64>() / ndcg.len() as f64,
            "update_seconds": if policy == "worker" { busy } else { update_seconds },
            "update_cpu_seconds": cpu,
            "sync_wait_seconds": if policy == "worker" { update_seconds } else { 0.0 },
            "rounds": rounds,
            "full_retrains": full,
        }));
    }
    latencies_ms.sort_by(f64::total_cmp);

    // Ingest with the worker on against off: the same stream of ADDs (no probes, no EVAL)
    // into copies of the same trained database, in alternating order, median of the runs.
    let (mut ingest_on, mut ingest_off) = (Vec::new(), Vec::new());
    for run in 0..ingest_runs {
        let order =
            if run % 2 == 0 { [WorkerMode::Off, WorkerMode::On] } else { [WorkerMode::On, WorkerMode::Off] };
        for mode in order {
            let db = open_copy(&format!("ingest-{run}-{mode}"), mode)?;
            let started = Instant::now();
            for (u, i, t, w, ts) in &rows[cut..] {
                db.add(&Interaction::new(u.as_str(), t.as_str(), i.as_str()).weight(*w).at(*ts))
                    .map_err(e)?;
            }
            let rate = (rows.len() - cut) as f64 / started.elapsed().as_secs_f64();
            db.close().map_err(e)?;
            std::fs::remove_dir_all(dir.path().join(format!("ingest-{run}-{mode}")))
                .map_err(|e| e.to_string())?;
            if mode == WorkerMode::On {
                ingest_on.push(rate)
            } else {
                ingest_off.push(rate)
            }
        }
    }
    let (on_runs, off_runs) = (ingest_on.clone(), ingest_off.clone());
    ingest_on.sort_by(f64::total_cmp);
    ingest_off.sort_by(f64::total_cmp);
    let (on_rate, off_rate) = (percentile(&ingest_on, 0.5), percentile(&ingest_off, 0.5));
    let ingest_ratio = on_rate / off_rate;
    let f = |r: &serde_json::Value, key: &str| r[key].as_f64().unwrap_or(f64::NAN);
    // A per-block list of figures, and a policy's name with its run.
    let list = |r: &serde_json::Value, key: &str| {
        r[key].as_array().map_or(String::new(), |v| {
            v.iter().map(|x| format!("{:.4}", x.as_f64().unwrap_or(f64::NAN))).collect::<Vec<_>>().join(" ")
        })
    };
    let label = |r: &serde_json::Value| match r["policy"].as_str().unwrap_or("") {
        "worker" => format!("worker #{}", r["run"].as_u64().unwrap_or(0) + 1),
        other => other.to_owned(),
    };
    let machine = machine();
    println!(
        "freshness on MovieLens: first {cut} edges by time trained, then {} edges in {} blocks; {machine}",
        rows.len() - cut,
        blocks.len()
    );
    println!(
        "{:<10} {:>40} {:>40} {:>10} {:>10}",
        "policy", "Recall@20 per block", "NDCG@20 per block", "mean R@20", "mean N@20"
    );
    for r in &results {
        println!(
            "{:<10} {:>40} {:>40} {:>10.4} {:>10.4}",
            label(r),
            list(r, "recall20"),
            list(r, "ndcg20"),
            f(r, "mean_recall20"),
            f(r, "mean_ndcg20")
        );
    }
    let (none, retrain) = (&results[0], &results[results.len() - 1]);
    let mut workers: Vec<&serde_json::Value> = results[1..results.len() - 1].iter().collect();
    workers.sort_by(|a, b| f(a, "mean_recall20").total_cmp(&f(b, "mean_recall20")));
    // The median run (the lower of the two middle ones for an even count).
    let worker = workers[(workers.len() - 1) / 2];
    let worker_recalls: Vec<f64> = workers.iter().map(|w| f(w, "mean_recall20")).collect();
    let recall_ratio = f(worker, "mean_recall20") / f(retrain, "mean_recall20");
    let compute_ratio = f(worker, "update_cpu_seconds") / f(retrain, "update_cpu_seconds");
    let wall_ratio = f(worker, "update_seconds") / f(retrain, "update_seconds");
    println!(
        "block EVAL users per block (users the database already held, likes of items of the first TRAIN): {}",
        none["eval_users"].as_array().map_or(String::new(), |v| v
            .iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(" "))
    );
    println!(
        "{:<10} {:>40} {:>10}   (before each streamed like of a user and item the database holds: is the item in RECOMMEND TOP 20 EXCLUDE SEEN?)",
        "policy", "next like in top 20, per block", "overall"
    );
    for r in &results {
        println!("{:<10} {:>40} {:>10.4}", label(r), list(r, "next_hit20"), f(r, "mean_next_hit20"));
    }
    let asked: Vec<u64> =
        none["next_asked"].as_array().map_or(Vec::new(), |v| v.iter().filter_map(|x| x.as_u64()).collect());
    let mut next_workers: Vec<f64> =
        results[1..results.len() - 1].iter().map(|w| f(w, "mean_next_hit20")).collect();
    next_workers.sort_by(f64::total_cmp);
    let next_worker = next_workers[(next_workers.len() - 1) / 2];
    let next_ratio = next_worker / f(retrain, "mean_next_hit20");
    println!(
        "next like in top 20 ({} likes asked: {:?} per block): worker (median run) {next_worker:.4} / retrain {:.4} = x{next_ratio:.3}; none {:.4}",
        asked.iter().sum::<u64>(),
        asked,
        f(retrain, "mean_next_hit20"),
        f(none, "mean_next_hit20")
    );
    println!(
        "worker runs' mean Recall@20, sorted: {}; the median run is compared",
        worker_recalls.iter().map(|r| format!("{r:.4}")).collect::<Vec<_>>().join(" ")
    );
    println!(
        "worker / retrain: Recall@20 x{recall_ratio:.3}, CPU x{compute_ratio:.3} ({:.1} CPU s in {} rounds, {} full, against {:.1} CPU s of retraining; wall {:.1}s against {:.1}s, x{wall_ratio:.3}); worker beats no-update: {}",
        f(worker, "update_cpu_seconds"),
        worker["rounds"],
        worker["full_retrains"],
        f(retrain, "update_cpu_seconds"),
        f(worker, "update_seconds"),
        f(retrain, "update_seconds"),
        f(worker, "mean_recall20") > f(none, "mean_recall20")
    );
    println!(
        "ADD to RECOMMEND: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms ({} samples)",
        percentile(&latencies_ms, 0.5),
        percentile(&latencies_ms, 0.99),
        percentile(&latencies_ms, 1.0),
        latencies_ms.len(),
    );
    println!(
        "ingest of the {} streamed edges, median of {ingest_runs} alternating runs: worker on {on_rate:.0} edges/s, off {off_rate:.0} (x{ingest_ratio:.3}); runs on {}, off {}",
        rows.len() - cut,
        on_runs.iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>().join(" "),
        off_runs.iter().map(|r| format!("{r:.0}")).collect::<Vec<_>>().join(" "),
    );
    println!(
        "{}",
        serde_json::json!({
            "bench": "freshness",
            "policies": results,
            "worker_runs_mean_recall20": worker_recalls,
            "worker_runs_next_hit20": next_workers,
            "next_hit20_ratio_worker_retrain": next_ratio,
            "recall_ratio_worker_retrain": recall_ratio,
            "compute_ratio_worker_retrain": compute_ratio,
            "wall_ratio_worker_retrain": wall_ratio,
            "ingest_ratio_on_off": ingest_ratio,
            "ingest_on_edges_per_s": on_runs,
            "ingest_off_edges_per_s": off_runs,
            "add_to_recommend_p50_ms": percentile(&latencies_ms, 0.5),
            "add_to_recommend_p99_ms": percentile(&latencies_ms, 0.99),
            "machine": machine,
        })
    );
    Ok(())
}
