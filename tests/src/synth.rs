//! Seeded synthetic e-commerce interactions, for tests and benchmarks larger than the
//! reference data sets.
//!
//! The data are planted so that a recommender has something to find, and skewed the way
//! shop logs are, so that a popularity baseline is a fair opponent:
//!
//! - Users and items belong to communities ([`community_of_user`], [`community_of_item`]).
//!   A click goes to an item of the user's community with probability
//!   [`SynthConfig::taste`], to a second community the user leans towards with probability
//!   [`SynthConfig::side_taste`], and otherwise to a popular item anywhere.
//! - Item popularity is Zipf-like over a seeded ranking, so every community has its own hits.
//! - User activity is log-normal: most users have a session or two, some are heavy users.
//! - Sessions follow a funnel: clicks, some clicked items are carted, some carted items are
//!   bought at checkout, and a few clicked items are liked. A cart or like of a pair always
//!   comes after a click of it, and a buy after its cart, in the same session.
//! - Session starts spread over `days` days with a day/night rhythm, and the rows come out
//!   ordered by timestamp, as an event stream would.
//!
//! Output is a pure function of the [`SynthConfig`]: the same configuration (seed included)
//! gives the same rows, byte for byte, on a given platform and set of crate versions. The
//! random stream is ChaCha8, whose output rand_chacha keeps stable across releases.
//! Generation streams: memory holds the popularity tables (a few bytes per user and item)
//! and the events of the sessions still in progress, never the rows already produced.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::convert::Infallible;
use std::fmt;
use std::io::{self, BufWriter, Write};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Exp, Geometric, LogNormal, WeightedAliasIndex};

/// The CSV header, exactly as gnnrec `LOAD` reads it.
pub const CSV_HEADER: &str = "user,item,type,weight,timestamp";

const DAY_SECS: i64 = 86_400;
/// Browsing stops once a session is this old; carts, likes and the checkout may follow it
/// by a few minutes (see the gap caps below).
const SESSION_BUDGET_SECS: i64 = 3_600;
/// Room kept free at the end of the time span, so that the last session's checkout still
/// falls inside it: longer than the budget plus the longest capped gaps.
const TAIL_RESERVE_SECS: i64 = 2 * 3_600;
/// Keeps one extreme draw from making a session unrealistically long.
const MAX_CLICKS_PER_SESSION: u64 = 50;

/// Mean and cap, in seconds, of the pause before each kind of event.
const CLICK_GAP: (f64, f64) = (30.0, 600.0);
const LIKE_GAP: (f64, f64) = (10.0, 120.0);
const CART_GAP: (f64, f64) = (20.0, 300.0);
const CHECKOUT_GAP: (f64, f64) = (60.0, 600.0);

/// Relative activity for each UTC hour of the day, a single market's rhythm: quiet
/// nights, a lunch bump and an evening peak.
const HOURLY_ACTIVITY: [f64; 24] = [
    0.30, 0.20, 0.15, 0.10, 0.10, 0.15, 0.30, 0.50, 0.70, 0.80, 0.85, 0.90, //
    1.00, 0.95, 0.90, 0.90, 0.95, 1.00, 1.10, 1.30, 1.40, 1.30, 1.00, 0.60,
];

/// What to generate. Build one with [`SynthConfig::for_edges`] (or `Default`) and adjust
/// fields; [`SynthConfig::validate`] says what is allowed.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthConfig {
    /// Number of users; ids are `0..users`, written `u<N>`. Not all of them need be active.
    pub users: u32,
    /// Number of items; ids are `0..items`, written `i<N>`.
    pub items: u32,
    /// Exact number of interactions (CSV rows) to produce.
    pub edges: u64,
    /// Number of taste communities; at most `items` so that none is empty.
    pub communities: u32,
    /// Seed of the random stream: everything below is a function of it and the other fields.
    pub seed: u64,
    /// First possible timestamp, unix seconds.
    pub start_ts: i64,
    /// Length of the time span in days; timestamps lie in
    /// `start_ts..start_ts + days * 86400`.
    pub days: u32,
    /// Probability that a click picks an item of the user's own community.
    pub taste: f64,
    /// Probability that a click picks an item of the user's second community.
    /// The rest (`1 - taste - side_taste`) picks a popular item of any community.
    pub side_taste: f64,
    /// Zipf exponent of item popularity (0 is uniform; 1 is very concentrated).
    pub item_skew: f64,
    /// Sigma of the log-normal user activity (0 makes all users equally active).
    pub user_skew: f64,
    /// Mean number of clicks in a session, at least 1.
    pub session_clicks: f64,
    /// Probability that a clicked item is put in the cart.
    pub cart_rate: f64,
    /// Probability that a carted item is bought at checkout.
    pub buy_rate: f64,
    /// Probability that a clicked item is liked.
    pub like_rate: f64,
}

impl SynthConfig {
    /// A configuration for `edges` rows with proportionate sizes: about 20 rows per user and
    /// 100 per item (at least 50 users and 20 items), about 25 items per community (2 to 32
    /// communities), 30 days from 2023-11-14, and the default taste and funnel.
    pub fn for_edges(edges: u64, seed: u64) -> Self {
        let users = clamp_u32(edges / 20, 50);
        let items = clamp_u32(edges / 100, 20);
        Self {
            users,
            items,
            edges,
            communities: default_communities(items),
            seed,
            start_ts: 1_700_000_000,
            days: 30,
            taste: 0.75,
            side_taste: 0.10,
            item_skew: 0.8,
            user_skew: 1.0,
            session_clicks: 5.0,
            cart_rate: 0.20,
            buy_rate: 0.35,
            like_rate: 0.08,
        }
    }

    /// One past the last possible timestamp.
    pub fn end_ts(&self) -> i64 {
        self.start_ts + i64::from(self.days) * DAY_SECS
    }

    /// Checks that the configuration can be generated: at least one user and one item,
    /// `1 <= communities <= items`, at least one day without overflowing `i64`,
    /// probabilities in `[0, 1]` (`taste + side_taste <= 1`), skews in `[0, 5]` and
    /// `session_clicks >= 1`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |message: String| Err(ConfigError(message));
        if self.users == 0 {
            return fail("users must be at least 1".into());
        }
        if self.items == 0 {
            return fail("items must be at least 1".into());
        }
        if self.communities == 0 || self.communities > self.items {
            return fail(format!(
                "communities must be between 1 and the number of items ({}), got {}",
                self.items, self.communities
            ));
        }
        if self.days == 0 {
            return fail("days must be at least 1".into());
        }
        if self.start_ts.checked_add(i64::from(self.days) * DAY_SECS).is_none() {
            return fail("start_ts + days overflows the timestamp range".into());
        }
        for (name, p) in [
            ("taste", self.taste),
            ("side_taste", self.side_taste),
            ("cart_rate", self.cart_rate),
            ("buy_rate", self.buy_rate),
            ("like_rate", self.like_rate),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return fail(format!("{name} must be a probability in [0, 1], got {p}"));
            }
        }
        if self.taste + self.side_taste > 1.0 {
            return fail("taste + side_taste must not exceed 1".into());
        }
        // Beyond 5 the weights under- or overflow f64 and the data are degenerate anyway.
        for (name, s) in [("item_skew", self.item_skew), ("user_skew", self.user_skew)] {
            if !(0.0..=5.0).contains(&s) {
                return fail(format!("{name} must be between 0 and 5, got {s}"));
            }
        }
        if !(self.session_clicks.is_finite() && self.session_clicks >= 1.0) {
            return fail(format!("session_clicks must be finite and >= 1, got {}", self.session_clicks));
        }
        Ok(())
    }
}

impl Default for SynthConfig {
    /// 100,000 rows with seed 42.
    fn default() -> Self {
        Self::for_edges(100_000, 42)
    }
}

/// The number of communities [`SynthConfig::for_edges`] picks for `items` items: about 25
/// items each, 2 to 32 of them, never more than there are items.
pub fn default_communities(items: u32) -> u32 {
    (items / 25).clamp(2, 32).min(items)
}

fn clamp_u32(n: u64, min: u32) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX).max(min)
}

/// Why a [`SynthConfig`] cannot be generated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid synthetic data configuration: {}", self.0)
    }
}

impl std::error::Error for ConfigError {}

/// The community user `user` belongs to. Users and items are dealt round-robin, so that
/// every community gets its share (sizes differ by at most one) even in tiny configurations.
pub fn community_of_user(cfg: &SynthConfig, user: u32) -> u32 {
    user % cfg.communities
}

/// The community item `item` belongs to (round-robin, like users).
pub fn community_of_item(cfg: &SynthConfig, item: u32) -> u32 {
    item % cfg.communities
}

/// The community a user leans towards besides their own: a seeded choice among the others.
fn side_community(cfg: &SynthConfig, user: u32) -> u32 {
    let home = community_of_user(cfg, user);
    if cfg.communities == 1 {
        return home;
    }
    let offset = 1 + splitmix64(cfg.seed ^ u64::from(user)) % u64::from(cfg.communities - 1);
    // offset < communities, so the sum fits in u64 and the result is another community.
    ((u64::from(home) + offset) % u64::from(cfg.communities)) as u32
}

/// A fast, well-mixed hash of one integer (the SplitMix64 finaliser).
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// An interaction type, in funnel order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A view of the item page; the most common signal.
    Click,
    /// Put in the cart; weight is the quantity.
    Cart,
    /// An explicit like.
    Like,
    /// Bought at checkout; weight is the quantity.
    Buy,
}

impl Kind {
    /// All kinds, in the order of [`SynthSummary::counts`].
    pub const ALL: [Kind; 4] = [Kind::Click, Kind::Cart, Kind::Like, Kind::Buy];

    /// The edge type name gnnrec uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Click => "click",
            Kind::Cart => "cart",
            Kind::Like => "like",
            Kind::Buy => "buy",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One generated interaction: an edge `user -kind-> item`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interaction {
    /// User id, `0..cfg.users`.
    pub user: u32,
    /// Item id, `0..cfg.items`.
    pub item: u32,
    /// Interaction type.
    pub kind: Kind,
    /// Always a whole number: 1 for clicks and likes, the quantity (1 to 3) for carts and buys.
    pub weight: f32,
    /// Unix seconds, in `cfg.start_ts..cfg.end_ts()`; non-decreasing along the output.
    pub ts: i64,
}

/// What a generation produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SynthSummary {
    /// Rows produced; always `cfg.edges`.
    pub rows: u64,
    /// Distinct users with at least one row.
    pub users: u32,
    /// Distinct items with at least one row.
    pub items: u32,
    /// Rows per kind, in the order of [`Kind::ALL`].
    pub counts: [u64; 4],
    /// Timestamps of the first and last rows, if any.
    pub first_ts: Option<i64>,
    /// See `first_ts`.
    pub last_ts: Option<i64>,
}

impl SynthSummary {
    /// Rows of one kind.
    pub fn count(&self, kind: Kind) -> u64 {
        self.counts[kind as usize]
    }
}

impl fmt::Display for SynthSummary {
    /// One line: rows, per-kind counts, active users and items, time range.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} rows (", self.rows)?;
        for (i, kind) in Kind::ALL.into_iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{} {kind}", self.count(kind))?;
        }
        write!(f, "), {} users, {} items", self.users, self.items)?;
        if let (Some(first), Some(last)) = (self.first_ts, self.last_ts) {
            write!(f, ", timestamps {first}..={last}")?;
        }
        Ok(())
    }
}

/// Generates `cfg.edges` interactions in timestamp order and hands each to `f`.
pub fn generate(cfg: &SynthConfig, mut f: impl FnMut(&Interaction)) -> Result<SynthSummary, ConfigError> {
    cfg.validate()?;
    let summary = Generator::new(cfg).run(|row| {
        f(row);
        Ok::<(), Infallible>(())
    });
    Ok(match summary {
        Ok(summary) => summary,
        Err(never) => match never {},
    })
}

/// Writes `cfg.edges` rows of CSV (after the [`CSV_HEADER`] line) to `out`, buffered.
/// An invalid configuration is an [`io::ErrorKind::InvalidInput`] error.
pub fn write_csv<W: Write>(cfg: &SynthConfig, out: W) -> io::Result<SynthSummary> {
    cfg.validate().map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut out = BufWriter::with_capacity(1 << 20, out);
    out.write_all(CSV_HEADER.as_bytes())?;
    out.write_all(b"\n")?;
    // One line buffer and one integer formatter for all rows: no allocation per row.
    let mut line = Vec::with_capacity(64);
    let mut num = itoa::Buffer::new();
    let summary = Generator::new(cfg).run(|row| {
        line.clear();
        line.push(b'u');
        line.extend_from_slice(num.format(row.user).as_bytes());
        line.extend_from_slice(b",i");
        line.extend_from_slice(num.format(row.item).as_bytes());
        line.push(b',');
        line.extend_from_slice(row.kind.as_str().as_bytes());
        line.push(b',');
        // Weights are whole numbers (see `Interaction::weight`), so no decimal point.
        line.extend_from_slice(num.format(row.weight as u32).as_bytes());
        line.push(b',');
        line.extend_from_slice(num.format(row.ts).as_bytes());
        line.push(b'\n');
        out.write_all(&line)
    })?;
    out.flush()?;
    Ok(summary)
}

/// A pending event of a session in progress. Ordered by time, then by creation order so
/// that ties come out the same way on every run.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Event {
    ts: i64,
    seq: u64,
    user: u32,
    item: u32,
    kind: Kind,
    quantity: u8,
}

/// Maps the share of rows already scheduled to a session start time, so that the rows fill
/// the time span whatever their number, with more sessions in busy hours.
struct Clock {
    /// `cumulative[h]`: activity of the hours before hour `h`; `cumulative[24]` is a day's.
    cumulative: [f64; 25],
    /// Activity from the epoch to `start_ts`.
    from: f64,
    /// Activity from `start_ts` to the end of the span less the tail reserve.
    length: f64,
}

impl Clock {
    fn new(cfg: &SynthConfig) -> Self {
        let mut cumulative = [0.0; 25];
        for (h, activity) in HOURLY_ACTIVITY.iter().enumerate() {
            cumulative[h + 1] = cumulative[h] + activity;
        }
        let mut clock = Self { cumulative, from: 0.0, length: 0.0 };
        clock.from = clock.activity_until(cfg.start_ts);
        clock.length = clock.activity_until(cfg.end_ts() - TAIL_RESERVE_SECS) - clock.from;
        clock
    }

    /// Activity from the epoch to `ts`: the integral of the hourly rhythm.
    fn activity_until(&self, ts: i64) -> f64 {
        let day = ts.div_euclid(DAY_SECS);
        let secs = ts.rem_euclid(DAY_SECS);
        let hour = (secs / 3_600) as usize;
        let within = (secs % 3_600) as f64 / 3_600.0;
        day as f64 * self.cumulative[24] + self.cumulative[hour] + within * HOURLY_ACTIVITY[hour]
    }

    /// The start time of a session begun when `progress` (in `[0, 1)`) of the rows are
    /// scheduled: the inverse of [`Clock::activity_until`] at that share of the span.
    fn at(&self, progress: f64) -> i64 {
        let per_day = self.cumulative[24];
        let mass = self.from + progress * self.length;
        let day = (mass / per_day).floor();
        let rest = mass - day * per_day;
        let hour = self.cumulative.partition_point(|&c| c <= rest).saturating_sub(1).min(23);
        let within = ((rest - self.cumulative[hour]) / HOURLY_ACTIVITY[hour]).clamp(0.0, 1.0);
        day as i64 * DAY_SECS + hour as i64 * 3_600 + (within * 3_600.0) as i64
    }
}

/// A pause drawn from an exponential distribution, at least one second so that funnel steps
/// are strictly ordered, and capped so that sessions stay bounded.
struct Gap {
    exp: Exp<f64>,
    cap: f64,
}

impl Gap {
    fn new((mean, cap): (f64, f64)) -> Self {
        Self { exp: Exp::new(1.0 / mean).expect("gap means are positive constants"), cap }
    }

    fn sample(&self, rng: &mut ChaCha8Rng) -> i64 {
        1 + self.exp.sample(rng).min(self.cap) as i64
    }
}

struct Generator<'a> {
    cfg: &'a SynthConfig,
    rng: ChaCha8Rng,
    clock: Clock,
    /// Session owners, weighted by activity.
    users: WeightedAliasIndex<f64>,
    /// All items, weighted by popularity.
    popular: WeightedAliasIndex<f64>,
    /// Per community `c`, its items `c + communities * j` weighted by popularity.
    by_community: Vec<WeightedAliasIndex<f64>>,
    /// Extra clicks per session beyond the first.
    extra_clicks: Geometric,
    click_gap: Gap,
    like_gap: Gap,
    cart_gap: Gap,
    checkout_gap: Gap,
    /// Sessions in progress, earliest event first.
    pending: BinaryHeap<Reverse<Event>>,
    /// Events created so far; breaks timestamp ties deterministically.
    seq: u64,
    /// Items carted in the current session, with their quantity (reused across sessions).
    carted: Vec<(u32, u8)>,
}

impl<'a> Generator<'a> {
    /// Builds the tables; `cfg` must be valid.
    fn new(cfg: &'a SynthConfig) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);

        // Popularity follows a seeded ranking, so hits are spread over the communities.
        let mut ranking: Vec<u32> = (0..cfg.items).collect();
        ranking.shuffle(&mut rng);
        let mut popularity = vec![0.0; cfg.items as usize];
        for (rank, &item) in ranking.iter().enumerate() {
            popularity[item as usize] = (rank as f64 + 1.0).powf(-cfg.item_skew);
        }
        drop(ranking);
        let communities = cfg.communities as usize;
        let by_community = (0..communities)
            .map(|c| alias(popularity[c..].iter().step_by(communities).copied().collect()))
            .collect();
        let popular = alias(popularity);

        let activity = LogNormal::new(0.0, cfg.user_skew).expect("validated user_skew");
        let users = alias((0..cfg.users).map(|_| activity.sample(&mut rng)).collect());

        Self {
            cfg,
            rng,
            clock: Clock::new(cfg),
            users,
            popular,
            by_community,
            // Mean extra clicks (1 - p) / p = session_clicks - 1.
            extra_clicks: Geometric::new(1.0 / cfg.session_clicks).expect("validated session_clicks"),
            click_gap: Gap::new(CLICK_GAP),
            like_gap: Gap::new(LIKE_GAP),
            cart_gap: Gap::new(CART_GAP),
            checkout_gap: Gap::new(CHECKOUT_GAP),
            pending: BinaryHeap::new(),
            seq: 0,
            carted: Vec::new(),
        }
    }

    /// Produces exactly `cfg.edges` rows in timestamp order.
    fn run<E>(mut self, mut f: impl FnMut(&Interaction) -> Result<(), E>) -> Result<SynthSummary, E> {
        let mut seen_users = BitSet::new(self.cfg.users);
        let mut seen_items = BitSet::new(self.cfg.items);
        let mut summary = SynthSummary::default();
        let mut emit = |event: Event| {
            let row = Interaction {
                user: event.user,
                item: event.item,
                kind: event.kind,
                weight: f32::from(event.quantity),
                ts: event.ts,
            };
            summary.rows += 1;
            summary.counts[event.kind as usize] += 1;
            summary.users += u32::from(seen_users.insert(event.user));
            summary.items += u32::from(seen_items.insert(event.item));
            summary.first_ts.get_or_insert(event.ts);
            summary.last_ts = Some(event.ts);
            f(&row)
        };

        let edges = self.cfg.edges;
        let mut scheduled = 0;
        let mut last_start = self.cfg.start_ts;
        while scheduled < edges {
            // max() guards the order, and the start of the span, against float rounding.
            let start = self.clock.at(scheduled as f64 / edges as f64).max(last_start);
            last_start = start;
            // Every later event falls after `start`, so what is due by then is final.
            while let Some(Reverse(next)) = self.pending.peek() {
                if next.ts > start {
                    break;
                }
                let next = *next;
                self.pending.pop();
                emit(next)?;
            }
            scheduled += self.session(start);
        }
        // Emitted so far: the scheduled events no longer pending. The last session may
        // overshoot; its latest events are dropped, which keeps every emitted cart, like and
        // buy preceded by its click.
        while scheduled - (self.pending.len() as u64) < edges {
            let Some(Reverse(next)) = self.pending.pop() else {
                break;
            };
            emit(next)?;
        }
        Ok(summary)
    }

    /// Queues one session starting at `start`; returns the number of events queued (>= 1).
    fn session(&mut self, start: i64) -> u64 {
        let user = self.users.sample(&mut self.rng) as u32;
        let home = community_of_user(self.cfg, user);
        let side = side_community(self.cfg, user);
        let clicks = 1 + self.extra_clicks.sample(&mut self.rng).min(MAX_CLICKS_PER_SESSION - 1);
        let deadline = start + SESSION_BUDGET_SECS;
        let before = self.seq;
        let mut t = start;
        let mut last = start;
        self.carted.clear();
        for _ in 0..clicks {
            // The first click always fits: a gap is far shorter than the budget.
            t += self.click_gap.sample(&mut self.rng);
            if t > deadline {
                break;
            }
            let item = self.pick_item(home, side);
            self.push(t, user, item, Kind::Click, 1);
            last = last.max(t);
            if self.rng.gen_bool(self.cfg.like_rate) {
                let liked = t + self.like_gap.sample(&mut self.rng);
                self.push(liked, user, item, Kind::Like, 1);
                last = last.max(liked);
            }
            if self.rng.gen_bool(self.cfg.cart_rate) {
                let quantity = self.quantity();
                let carted = t + self.cart_gap.sample(&mut self.rng);
                self.push(carted, user, item, Kind::Cart, quantity);
                self.carted.push((item, quantity));
                last = last.max(carted);
            }
        }
        // One checkout after browsing, so each buy follows its cart; a second apart keeps
        // the buys of a basket in order.
        if !self.carted.is_empty() {
            let mut paid = last + self.checkout_gap.sample(&mut self.rng);
            for i in 0..self.carted.len() {
                if self.rng.gen_bool(self.cfg.buy_rate) {
                    let (item, quantity) = self.carted[i];
                    self.push(paid, user, item, Kind::Buy, quantity);
                    paid += 1;
                }
            }
        }
        self.seq - before
    }

    fn pick_item(&mut self, home: u32, side: u32) -> u32 {
        let r: f64 = self.rng.gen();
        let community = if r < self.cfg.taste {
            home
        } else if r < self.cfg.taste + self.cfg.side_taste {
            side
        } else {
            return self.popular.sample(&mut self.rng) as u32;
        };
        let j = self.by_community[community as usize].sample(&mut self.rng) as u32;
        community + self.cfg.communities * j
    }

    /// Most baskets hold one of an item, some two or three.
    fn quantity(&mut self) -> u8 {
        match self.rng.gen::<f64>() {
            x if x < 0.80 => 1,
            x if x < 0.95 => 2,
            _ => 3,
        }
    }

    fn push(&mut self, ts: i64, user: u32, item: u32, kind: Kind, quantity: u8) {
        self.pending.push(Reverse(Event { ts, seq: self.seq, user, item, kind, quantity }));
        self.seq += 1;
    }
}

fn alias(weights: Vec<f64>) -> WeightedAliasIndex<f64> {
    WeightedAliasIndex::new(weights).expect("weights are positive and finite")
}

/// Which ids have been seen, one bit each.
struct BitSet(Vec<u64>);

impl BitSet {
    fn new(len: u32) -> Self {
        Self(vec![0; (len as usize).div_ceil(64)])
    }

    /// Sets bit `i`; true if it was clear.
    fn insert(&mut self, i: u32) -> bool {
        let word = &mut self.0[i as usize / 64];
        let bit = 1u64 << (i % 64);
        let new = *word & bit == 0;
        *word |= bit;
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    fn rows(cfg: &SynthConfig) -> Vec<Interaction> {
        let mut out = Vec::new();
        let summary = generate(cfg, |row| out.push(*row)).unwrap();
        assert_eq!(summary.rows, out.len() as u64);
        out
    }

    fn csv(cfg: &SynthConfig) -> Vec<u8> {
        let mut out = Vec::new();
        write_csv(cfg, &mut out).unwrap();
        out
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let cfg = SynthConfig::for_edges(20_000, 7);
        let a = csv(&cfg);
        assert_eq!(a, csv(&cfg));
        let b = csv(&SynthConfig { seed: 8, ..cfg });
        assert_ne!(a, b);
    }

    #[test]
    fn exact_row_count() {
        for edges in [0, 1, 2, 7, 100, 1_234, 50_000] {
            let cfg = SynthConfig::for_edges(edges, edges);
            let text = String::from_utf8(csv(&cfg)).unwrap();
            assert_eq!(text.lines().count() as u64, edges + 1, "edges = {edges}");
            assert_eq!(rows(&cfg).len() as u64, edges);
        }
    }

    #[test]
    fn csv_rows_are_well_formed_and_match_the_callback() {
        let cfg = SynthConfig::for_edges(30_000, 3);
        let text = String::from_utf8(csv(&cfg)).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some(CSV_HEADER));
        let expected = rows(&cfg);
        let mut count = 0;
        for (line, row) in lines.zip(&expected) {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), 5, "{line}");
            let user: u32 = fields[0].strip_prefix('u').unwrap().parse().unwrap();
            let item: u32 = fields[1].strip_prefix('i').unwrap().parse().unwrap();
            let weight: u32 = fields[3].parse().unwrap();
            let ts: i64 = fields[4].parse().unwrap();
            assert!(user < cfg.users && item < cfg.items, "{line}");
            assert!((cfg.start_ts..cfg.end_ts()).contains(&ts), "{line}");
            assert_eq!(
                (user, item, fields[2], weight as f32, ts),
                (row.user, row.item, row.kind.as_str(), row.weight, row.ts)
            );
            count += 1;
        }
        assert_eq!(count, expected.len());
    }

    #[test]
    fn rows_are_in_time_order_and_fill_the_span() {
        let cfg = SynthConfig { days: 7, ..SynthConfig::for_edges(50_000, 11) };
        let rows = rows(&cfg);
        assert!(rows.windows(2).all(|w| w[0].ts <= w[1].ts));
        let span = (cfg.end_ts() - cfg.start_ts) as f64;
        let first = (rows[0].ts - cfg.start_ts) as f64 / span;
        let last = (rows[rows.len() - 1].ts - cfg.start_ts) as f64 / span;
        assert!(first < 0.01 && last > 0.95, "first {first}, last {last}");
    }

    #[test]
    fn funnel_is_ordered() {
        let cfg = SynthConfig::for_edges(100_000, 5);
        let mut clicked = HashSet::new();
        let mut carted = HashSet::new();
        let mut orphans = 0;
        let summary = generate(&cfg, |row| {
            let pair = (row.user, row.item);
            let preceded = match row.kind {
                Kind::Click => true,
                Kind::Cart | Kind::Like => clicked.contains(&pair),
                Kind::Buy => carted.contains(&pair) && clicked.contains(&pair),
            };
            orphans += u32::from(!preceded);
            match row.kind {
                Kind::Click => clicked.insert(pair),
                Kind::Cart => carted.insert(pair),
                Kind::Like | Kind::Buy => false,
            };
        })
        .unwrap();
        assert_eq!(orphans, 0, "a cart or like without a click, or a buy without a cart");
        let [clicks, carts, likes, buys] = summary.counts;
        assert_eq!(clicks + carts + likes + buys, cfg.edges);
        assert!(buys < carts && carts < clicks, "{summary}");
        assert!(likes > 0 && likes < carts, "{summary}");
        assert!(clicks as f64 > 0.6 * cfg.edges as f64, "{summary}");
    }

    #[test]
    fn weights_are_quantities() {
        for row in rows(&SynthConfig::for_edges(20_000, 9)) {
            match row.kind {
                Kind::Click | Kind::Like => assert_eq!(row.weight, 1.0),
                Kind::Cart | Kind::Buy => assert!([1.0, 2.0, 3.0].contains(&row.weight)),
            }
        }
    }

    #[test]
    fn item_popularity_and_user_activity_are_skewed() {
        let cfg = SynthConfig::for_edges(200_000, 13);
        let rows = rows(&cfg);
        let share_of_top_decile = |mut counts: Vec<u64>| {
            counts.sort_unstable_by(|a, b| b.cmp(a));
            let top: u64 = counts[..counts.len() / 10].iter().sum();
            top as f64 / rows.len() as f64
        };
        let mut per_item = vec![0; cfg.items as usize];
        let mut per_user = vec![0; cfg.users as usize];
        for row in &rows {
            per_item[row.item as usize] += 1;
            per_user[row.user as usize] += 1;
        }
        let items = share_of_top_decile(per_item);
        let users = share_of_top_decile(per_user);
        assert!(items > 0.4, "top 10% of items have {items:.2} of rows");
        assert!(users > 0.3, "top 10% of users have {users:.2} of rows");
    }

    #[test]
    fn users_mostly_stay_in_their_community() {
        let cfg = SynthConfig::for_edges(200_000, 17);
        assert!(cfg.communities >= 8);
        let mut per_user: HashMap<u32, (u32, u32)> = HashMap::new();
        for row in rows(&cfg) {
            let home = community_of_user(&cfg, row.user) == community_of_item(&cfg, row.item);
            let entry = per_user.entry(row.user).or_default();
            entry.0 += u32::from(home);
            entry.1 += 1;
        }
        let (home, total) = per_user.values().fold((0, 0), |(h, t), &(uh, ut)| (h + uh, t + ut));
        let overall = f64::from(home) / f64::from(total);
        assert!(overall > 0.7, "{overall:.2} of rows in the user's community");
        let active: Vec<_> = per_user.values().filter(|(_, t)| *t >= 10).collect();
        let loyal = active.iter().filter(|(h, t)| h * 2 > *t).count();
        assert!(
            loyal * 10 > active.len() * 9,
            "{loyal} of {} active users mostly in their community",
            active.len()
        );
    }

    #[test]
    fn communities_partition_users_and_items() {
        let cfg = SynthConfig::for_edges(10_000, 1);
        for c in 0..cfg.communities {
            assert!((0..cfg.items).any(|i| community_of_item(&cfg, i) == c));
            assert!((0..cfg.users).any(|u| community_of_user(&cfg, u) == c));
        }
        for u in 0..cfg.users {
            assert_ne!(side_community(&cfg, u), community_of_user(&cfg, u));
            assert!(side_community(&cfg, u) < cfg.communities);
        }
    }

    #[test]
    fn for_edges_scales() {
        let small = SynthConfig::for_edges(10, 0);
        assert!(small.users >= 50 && small.items >= 20 && small.communities >= 2);
        small.validate().unwrap();
        let big = SynthConfig::for_edges(10_000_000, 0);
        assert_eq!((big.users, big.items, big.communities), (500_000, 100_000, 32));
        big.validate().unwrap();
    }

    #[test]
    fn invalid_configs_are_errors() {
        let ok = SynthConfig::default();
        let bad = [
            SynthConfig { users: 0, ..ok.clone() },
            SynthConfig { communities: 0, ..ok.clone() },
            SynthConfig { communities: ok.items + 1, ..ok.clone() },
            SynthConfig { days: 0, ..ok.clone() },
            SynthConfig { start_ts: i64::MAX - 10, ..ok.clone() },
            SynthConfig { taste: 0.95, ..ok.clone() },
            SynthConfig { like_rate: f64::NAN, ..ok.clone() },
            SynthConfig { item_skew: -1.0, ..ok.clone() },
            SynthConfig { session_clicks: 0.5, ..ok.clone() },
        ];
        for cfg in bad {
            assert!(generate(&cfg, |_| {}).is_err(), "{cfg:?}");
            let err = write_csv(&cfg, io::sink()).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        }
    }

    #[test]
    fn one_community_one_item_one_user() {
        let cfg = SynthConfig { users: 1, items: 1, communities: 1, ..SynthConfig::for_edges(500, 2) };
        let rows = rows(&cfg);
        assert_eq!(rows.len(), 500);
        assert!(rows.iter().all(|r| r.user == 0 && r.item == 0));
    }
}
