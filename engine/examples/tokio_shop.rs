//! gnnrec inside a small tokio application: one task streams shoppers' clicks, one listens
//! for the model versions the background worker publishes, and the main task asks for
//! recommendations. Run with `cargo run --release -p gnnrec-engine --example tokio_shop`.

use gnnrec_engine::{AsyncDatabase, Database, Interaction, Options, TrainConfig};

/// Two tastes: even users like even items, odd users odd ones.
fn interaction(n: u64) -> Interaction {
    let (user, round) = (n % 200, n / 200);
    let item = (round * 7 + user * 3) % 50 * 2 + user % 2;
    let kind = if n.is_multiple_of(3) { "like" } else { "click" };
    Interaction::new(format!("u{user}"), kind, format!("i{item}")).at(1_700_000_000 + n as i64)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let db = AsyncDatabase::new(Database::open(dir.path().join("shop.gnnrec"), Options::default())?);
    for n in 0..3000 {
        db.add(interaction(n)).await?;
    }
    let report = db.train(TrainConfig { epochs: 5, ..TrainConfig::default() }).await?;
    println!("trained model version {} on {} edges", report.model_version, report.edges);
    db.execute("SET worker.batch = 200; SET worker.interval = 100ms").await?;

    // Announce every model version the worker publishes.
    let mut versions = db.versions();
    let listener = tokio::spawn(async move {
        let mut seen = Vec::new();
        while versions.changed().await.is_ok() {
            let version = *versions.borrow_and_update();
            println!("model version {version} published");
            seen.push(version);
        }
        seen
    });

    // New shoppers keep clicking while the worker keeps the model fresh.
    let writer = {
        let db = db.clone();
        tokio::spawn(async move {
            for n in 3000..4000 {
                db.add(interaction(n)).await?;
            }
            Ok::<_, gnnrec_engine::Error>(())
        })
    };
    writer.await??;
    db.sync().await?;
    for user in ["u10", "u11"] {
        let recs = db.recommend(user, 5, true).await?;
        let items: Vec<&str> = recs.items.iter().map(|r| r.item.as_str()).collect();
        println!("{user} (model version {}): {}", recs.model_version, items.join(", "));
    }
    drop(db);
    let seen = listener.await?;
    println!("{} new versions while the shop ran", seen.len());
    Ok(())
}
