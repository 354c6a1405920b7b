//! The [`Store`]: one RocksDB database laid out as `schema.rs` describes.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, RwLock};

use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, IteratorMode, Options, PrefixRange, ReadOptions, WriteBatch,
    WriteOptions, DB,
};

use crate::error::{corrupt, Error, Result};
use crate::schema::{
    self, bincode_config, decode_edge_key, edge_key, embedding_key, meta_keys, EdgeValue, Event, NodeId,
    NodeKind, Seq, StoredEmbedding, TypeDef, TypeId, BUILTIN_TYPES, CF_EDGES_IN, CF_EDGES_OUT, CF_EMBEDDINGS,
    CF_EVENTS, CF_ITEM_IDS, CF_ITEM_NAMES, CF_META, CF_MODELS, CF_TYPES, CF_USER_IDS, CF_USER_NAMES,
    COLUMN_FAMILIES, FORMAT_VERSION,
};

/// How hard a write tries to survive a crash before it is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// In RocksDB's write-ahead log: survives a killed process, not a power loss.
    #[default]
    Wal,
    /// The write-ahead log is fsynced on every write: survives a power loss.
    Full,
}

/// Counters handed out under the writer lock. Kept in memory so that a write never reads
/// them back from disk; persisted in the same batch as the data that consumes them.
#[derive(Debug)]
pub(crate) struct WriterState {
    pub next_seq: Seq,
    pub next_user: NodeId,
    pub next_item: NodeId,
}

/// A raw key and value read from RocksDB.
pub(crate) type KeyValue = (Box<[u8]>, Box<[u8]>);

/// One edge in internal-id form.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EdgeRecord {
    pub user: NodeId,
    pub edge_type: TypeId,
    pub item: NodeId,
    pub value: EdgeValue,
}

/// The other end of an edge, seen from one node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbour {
    pub node: NodeId,
    pub edge_type: TypeId,
    pub value: EdgeValue,
}

/// What [`Store::add_edge`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddOutcome {
    pub seq: Seq,
    pub user: NodeId,
    pub item: NodeId,
    pub new_user: bool,
    pub new_item: bool,
}

/// Counts over the whole database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stats {
    pub users: u64,
    pub items: u64,
    pub edges: u64,
    pub last_seq: Seq,
    pub trained_through: Seq,
    pub models: u64,
    /// Bytes of the files in the database directory.
    pub disk_bytes: u64,
}

/// A graph of users, items and typed edges kept in RocksDB.
///
/// Writes are serialised by one writer lock (as in SQLite), so the event log has no gaps
/// and node ids are dense; reads go straight to RocksDB and never wait for writers.
pub struct Store {
    pub(crate) db: DB,
    path: PathBuf,
    pub(crate) writer: Mutex<WriterState>,
    types: RwLock<Vec<TypeDef>>,
    durability: RwLock<Durability>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish_non_exhaustive()
    }
}

pub(crate) fn db_options() -> Options {
    let mut opts = Options::default();
    opts.increase_parallelism(2);
    opts.set_max_background_jobs(2);
    opts.set_write_buffer_size(64 << 20);
    opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
    opts
}

fn cf_descriptors() -> Vec<ColumnFamilyDescriptor> {
    COLUMN_FAMILIES
        .iter()
        .map(|&name| {
            let mut opts = db_options();
            if name == CF_EDGES_OUT || name == CF_EDGES_IN {
                opts.set_merge_operator_associative("gnnrec.edge_value", schema::merge_edge_values);
            }
            ColumnFamilyDescriptor::new(name, opts)
        })
        .collect()
}

fn map_open_error(path: &Path, e: rocksdb::Error) -> Error {
    let msg = e.to_string();
    // RocksDB reports a held LOCK file as an I/O error; give it the name users know.
    if msg.contains("lock file") || msg.contains("LOCK") {
        Error::Locked(path.to_path_buf())
    } else {
        Error::RocksDb(e)
    }
}

impl Store {
    /// Opens the database at `path`, creating it when the path does not exist or is an
    /// empty directory. A bulk load that a crash interrupted is finished or undone here.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        let io = |source| Error::Io { path: path.clone(), source };
        let not_db = |reason: &str| Error::NotADatabase { path: path.clone(), reason: reason.into() };

        let existing = match std::fs::metadata(&path) {
            Ok(m) if !m.is_dir() => return Err(not_db("not a directory")),
            Ok(_) => std::fs::read_dir(&path).map_err(io)?.next().is_some(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(io(e)),
        };
        if existing {
            if !path.join("CURRENT").exists() {
                return Err(not_db("no RocksDB files in the directory"));
            }
            let cfs = DB::list_cf(&Options::default(), &path).map_err(|e| map_open_error(&path, e))?;
            if let Some(missing) = COLUMN_FAMILIES.iter().find(|cf| !cfs.iter().any(|c| c == *cf)) {
                return Err(not_db(&format!("no column family '{missing}'")));
            }
        } else {
            std::fs::create_dir_all(&path).map_err(io)?;
        }

        let mut opts = db_options();
        opts.create_if_missing(!existing);
        opts.create_missing_column_families(!existing);
        let db =
            DB::open_cf_descriptors(&opts, &path, cf_descriptors()).map_err(|e| map_open_error(&path, e))?;

        let store = Store {
            db,
            path: path.clone(),
            writer: Mutex::new(WriterState { next_seq: 1, next_user: 0, next_item: 0 }),
            types: RwLock::new(Vec::new()),
            durability: RwLock::new(Durability::default()),
        };
        match store.db.get_cf(store.cf(CF_META), meta_keys::FORMAT_VERSION)? {
            Some(v) => {
                let found = decode_u32(&v).ok_or_else(|| corrupt("format version", "bad length"))?;
                if found != FORMAT_VERSION {
                    return Err(Error::FormatVersion { path, found, expected: FORMAT_VERSION });
                }
            }
            None if existing && !store.is_empty()? => {
                return Err(not_db("no format version in its metadata"));
            }
            None => store.initialize()?,
        }
        store.load_state()?;
        store.recover_bulk_load()?;
        Ok(store)
    }

    /// The directory the database lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn is_empty(&self) -> Result<bool> {
        for &name in COLUMN_FAMILIES {
            if self.db.iterator_cf(self.cf(name), IteratorMode::Start).next().transpose()?.is_some() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn initialize(&self) -> Result<()> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_META), meta_keys::FORMAT_VERSION, FORMAT_VERSION.to_be_bytes());
        for (id, (name, weight)) in BUILTIN_TYPES.iter().enumerate() {
            let def = TypeDef { name: (*name).into(), weight: *weight };
            batch.put_cf(self.cf(CF_TYPES), (id as TypeId).to_be_bytes(), encode_bincode(&def)?);
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db.write_opt(batch, &wo)?;
        Ok(())
    }

    fn load_state(&self) -> Result<()> {
        let mut types = Vec::new();
        for entry in self.db.iterator_cf(self.cf(CF_TYPES), IteratorMode::Start) {
            let (k, v) = entry?;
            let def: TypeDef = decode_bincode(&v, "edge type")?;
            if k.len() != 2 || u16::from_be_bytes([k[0], k[1]]) as usize != types.len() {
                return Err(corrupt("edge type", "type ids are not dense"));
            }
            types.push(def);
        }
        *self.types.write().unwrap_or_else(|e| e.into_inner()) = types;

        let last_seq = self.last_key_u64(CF_EVENTS)?.unwrap_or(0);
        let next_user = self.next_id(CF_USER_NAMES, meta_keys::NEXT_USER)?;
        let next_item = self.next_id(CF_ITEM_NAMES, meta_keys::NEXT_ITEM)?;
        *self.lock_writer() = WriterState { next_seq: last_seq + 1, next_user, next_item };
        Ok(())
    }

    /// The next id of a node kind: past both the persisted counter (ids of deleted nodes are
    /// never reused) and the largest id in use.
    fn next_id(&self, names_cf: &str, counter: &[u8]) -> Result<NodeId> {
        let stored = match self.db.get_cf(self.cf(CF_META), counter)? {
            Some(v) => decode_u32(&v).ok_or_else(|| corrupt("id counter", "bad length"))?,
            None => 0,
        };
        let mut it = self.db.raw_iterator_cf(self.cf(names_cf));
        it.seek_to_last();
        let in_use = match it.key() {
            Some(k) => decode_u32(k).ok_or_else(|| corrupt("node name key", "bad length"))? + 1,
            None => 0,
        };
        it.status()?;
        Ok(stored.max(in_use))
    }

    /// The largest `u64` key of a family keyed by sequence number or model version.
    fn last_key_u64(&self, cf: &str) -> Result<Option<u64>> {
        let mut it = self.db.raw_iterator_cf(self.cf(cf));
        it.seek_to_last();
        let last = match it.key() {
            Some(k) => Some(decode_u64(k).ok_or_else(|| corrupt("u64 key", format!("in {cf}")))?),
            None => None,
        };
        it.status()?;
        Ok(last)
    }

    pub(crate) fn cf(&self, name: &str) -> &ColumnFamily {
        self.db.cf_handle(name).expect("every column family is checked when the store opens")
    }

    pub(crate) fn lock_writer(&self) -> MutexGuard<'_, WriterState> {
        // A panic while holding the lock cannot leave a half-written batch behind: batches
        // are atomic, and the counters are only advanced after a successful write.
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write_options(&self) -> WriteOptions {
        let mut wo = WriteOptions::default();
        wo.set_sync(self.durability() == Durability::Full);
        wo
    }

    pub fn durability(&self) -> Durability {
        *self.durability.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_durability(&self, durability: Durability) {
        *self.durability.write().unwrap_or_else(|e| e.into_inner()) = durability;
    }

    // ---- edge types ----

    /// Every declared edge type, indexed by its id.
    pub fn types(&self) -> Vec<TypeDef> {
        self.types.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn type_id(&self, name: &str) -> Option<TypeId> {
        let types = self.types.read().unwrap_or_else(|e| e.into_inner());
        types.iter().position(|t| t.name == name).map(|i| i as TypeId)
    }

    fn require_type(&self, name: &str) -> Result<TypeId> {
        self.type_id(name).ok_or_else(|| Error::UnknownType(name.into()))
    }

    /// Declares a new edge type with its default signal strength.
    pub fn declare_type(&self, name: &str, weight: f32) -> Result<TypeId> {
        if name.is_empty() {
            return Err(Error::InvalidInput("an edge type needs a name".into()));
        }
        if !weight.is_finite() || weight < 0.0 {
            return Err(Error::InvalidInput(format!(
                "the weight of edge type '{name}' must be a finite number >= 0, got {weight}"
            )));
        }
        let _writer = self.lock_writer();
        let mut types = self.types.write().unwrap_or_else(|e| e.into_inner());
        if types.iter().any(|t| t.name == name) {
            return Err(Error::TypeExists(name.into()));
        }
        let id =
            TypeId::try_from(types.len()).map_err(|_| Error::InvalidInput("too many edge types".into()))?;
        let def = TypeDef { name: name.into(), weight };
        self.db.put_cf_opt(
            self.cf(CF_TYPES),
            id.to_be_bytes(),
            encode_bincode(&def)?,
            &self.write_options(),
        )?;
        types.push(def);
        Ok(id)
    }

    // ---- nodes ----

    pub(crate) fn ids_cf_of(kind: NodeKind) -> &'static str {
        match kind {
            NodeKind::User => CF_USER_IDS,
            NodeKind::Item => CF_ITEM_IDS,
        }
    }

    pub(crate) fn names_cf(kind: NodeKind) -> &'static str {
        match kind {
            NodeKind::User => CF_USER_NAMES,
            NodeKind::Item => CF_ITEM_NAMES,
        }
    }

    /// The internal id of a node, if it exists.
    pub fn node_id(&self, kind: NodeKind, external: &str) -> Result<Option<NodeId>> {
        match self.db.get_pinned_cf(self.cf(Self::ids_cf_of(kind)), external.as_bytes())? {
            Some(v) => Ok(Some(decode_u32(&v).ok_or_else(|| corrupt("node id", "bad length"))?)),
            None => Ok(None),
        }
    }

    /// The internal id of a node, or an error that names it.
    pub fn require_node(&self, kind: NodeKind, external: &str) -> Result<NodeId> {
        self.node_id(kind, external)?.ok_or_else(|| match kind {
            NodeKind::User => Error::UnknownUser(external.into()),
            NodeKind::Item => Error::UnknownItem(external.into()),
        })
    }

    /// The external id of a node, if it exists.
    pub fn node_name(&self, kind: NodeKind, id: NodeId) -> Result<Option<String>> {
        match self.db.get_cf(self.cf(Self::names_cf(kind)), id.to_be_bytes())? {
            Some(v) => Ok(Some(String::from_utf8(v).map_err(|e| corrupt("node name", e.to_string()))?)),
            None => Ok(None),
        }
    }

    /// One past the largest internal id handed out so far; every id of this kind is below.
    pub fn node_id_bound(&self, kind: NodeKind) -> NodeId {
        let w = self.lock_writer();
        match kind {
            NodeKind::User => w.next_user,
            NodeKind::Item => w.next_item,
        }
    }

    /// Every live node of a kind as (internal id, external id), in id order.
    pub fn nodes(&self, kind: NodeKind) -> impl Iterator<Item = Result<(NodeId, String)>> + '_ {
        self.db.iterator_cf(self.cf(Self::names_cf(kind)), IteratorMode::Start).map(|entry| {
            let (k, v) = entry?;
            let id = decode_u32(&k).ok_or_else(|| corrupt("node name key", "bad length"))?;
            let name = String::from_utf8(v.into_vec()).map_err(|e| corrupt("node name", e.to_string()))?;
            Ok((id, name))
        })
    }

    /// Resolves a node for a write, allocating an id (and adding the mappings to `batch`)
    /// when it is new. Must be called with the writer lock held.
    fn resolve_for_write(
        &self,
        w: &mut WriterState,
        batch: &mut WriteBatch,
        kind: NodeKind,
        external: &str,
    ) -> Result<(NodeId, bool)> {
        if let Some(id) = self.node_id(kind, external)? {
            return Ok((id, false));
        }
        let (next, counter) = match kind {
            NodeKind::User => (&mut w.next_user, meta_keys::NEXT_USER),
            NodeKind::Item => (&mut w.next_item, meta_keys::NEXT_ITEM),
        };
        let id = *next;
        let following = id.checked_add(1).ok_or_else(|| {
            Error::InvalidInput(format!("no {} ids left (the limit is {})", kind.as_str(), u32::MAX))
        })?;
        batch.put_cf(self.cf(Self::ids_cf_of(kind)), external.as_bytes(), id.to_be_bytes());
        batch.put_cf(self.cf(Self::names_cf(kind)), id.to_be_bytes(), external.as_bytes());
        batch.put_cf(self.cf(CF_META), counter, following.to_be_bytes());
        *next = following;
        Ok((id, true))
    }

    // ---- edges ----

    /// Adds one interaction, or folds it into the existing edge. Acknowledged means it is in
    /// the write-ahead log (fsynced too under [`Durability::Full`]).
    pub fn add_edge(
        &self,
        user: &str,
        edge_type: &str,
        item: &str,
        weight: f32,
        ts: i64,
    ) -> Result<AddOutcome> {
        let type_id = self.require_type(edge_type)?;
        check_weight(weight)?;
        let mut w = self.lock_writer();
        let mut batch = WriteBatch::default();
        let mut next = WriterState { next_seq: w.next_seq, next_user: w.next_user, next_item: w.next_item };
        let (user_id, new_user) = self.resolve_for_write(&mut next, &mut batch, NodeKind::User, user)?;
        let (item_id, new_item) = self.resolve_for_write(&mut next, &mut batch, NodeKind::Item, item)?;
        let seq = next.next_seq;
        let value = EdgeValue::single(weight, ts).encode();
        batch.merge_cf(self.cf(CF_EDGES_OUT), edge_key(user_id, type_id, item_id), value);
        batch.merge_cf(self.cf(CF_EDGES_IN), edge_key(item_id, type_id, user_id), value);
        let event = Event::AddEdge { user: user_id, edge_type: type_id, item: item_id, weight, ts };
        batch.put_cf(self.cf(schema::CF_EVENTS), seq.to_be_bytes(), event.encode());
        self.db.write_opt(batch, &self.write_options())?;
        next.next_seq += 1;
        *w = next;
        Ok(AddOutcome { seq, user: user_id, item: item_id, new_user, new_item })
    }

    /// The edge between a user and an item of one type, if it exists.
    pub fn edge(&self, user: NodeId, edge_type: TypeId, item: NodeId) -> Result<Option<EdgeValue>> {
        match self.db.get_pinned_cf(self.cf(CF_EDGES_OUT), edge_key(user, edge_type, item))? {
            Some(v) => Ok(Some(EdgeValue::decode(&v).ok_or_else(|| corrupt("edge value", "bad length"))?)),
            None => Ok(None),
        }
    }

    /// Removes one edge; an error names what does not exist.
    pub fn delete_edge(&self, user: &str, edge_type: &str, item: &str) -> Result<Seq> {
        let type_id = self.require_type(edge_type)?;
        let mut w = self.lock_writer();
        let user_id = self.require_node(NodeKind::User, user)?;
        let item_id = self.require_node(NodeKind::Item, item)?;
        if self.edge(user_id, type_id, item_id)?.is_none() {
            return Err(Error::UnknownEdge {
                user: user.into(),
                edge_type: edge_type.into(),
                item: item.into(),
            });
        }
        let seq = w.next_seq;
        let mut batch = WriteBatch::default();
        batch.delete_cf(self.cf(CF_EDGES_OUT), edge_key(user_id, type_id, item_id));
        batch.delete_cf(self.cf(CF_EDGES_IN), edge_key(item_id, type_id, user_id));
        let event = Event::DeleteEdge { user: user_id, edge_type: type_id, item: item_id };
        batch.put_cf(self.cf(CF_EVENTS), seq.to_be_bytes(), event.encode());
        self.db.write_opt(batch, &self.write_options())?;
        w.next_seq += 1;
        Ok(seq)
    }

    /// Removes a node with all its edges and its embedding. Returns the number of edges
    /// removed. The internal id is never handed out again.
    pub fn delete_node(&self, kind: NodeKind, external: &str) -> Result<u64> {
        let mut w = self.lock_writer();
        let id = self.require_node(kind, external)?;
        let (own_cf, other_cf) = match kind {
            NodeKind::User => (CF_EDGES_OUT, CF_EDGES_IN),
            NodeKind::Item => (CF_EDGES_IN, CF_EDGES_OUT),
        };
        let mut batch = WriteBatch::default();
        let mut removed = 0;
        for entry in self.prefix_iter(own_cf, &id.to_be_bytes()) {
            let (key, _) = entry?;
            let (me, edge_type, other) =
                decode_edge_key(&key).ok_or_else(|| corrupt("edge key", "bad length"))?;
            batch.delete_cf(self.cf(own_cf), edge_key(me, edge_type, other));
            batch.delete_cf(self.cf(other_cf), edge_key(other, edge_type, me));
            removed += 1;
        }
        batch.delete_cf(self.cf(Self::ids_cf_of(kind)), external.as_bytes());
        batch.delete_cf(self.cf(Self::names_cf(kind)), id.to_be_bytes());
        batch.delete_cf(self.cf(CF_EMBEDDINGS), embedding_key(kind, id));
        let event = match kind {
            NodeKind::User => Event::DeleteUser { user: id },
            NodeKind::Item => Event::DeleteItem { item: id },
        };
        batch.put_cf(self.cf(CF_EVENTS), w.next_seq.to_be_bytes(), event.encode());
        self.db.write_opt(batch, &self.write_options())?;
        w.next_seq += 1;
        Ok(removed)
    }

    pub(crate) fn prefix_iter<'a>(
        &'a self,
        cf: &str,
        prefix: &[u8],
    ) -> impl Iterator<Item = Result<KeyValue, rocksdb::Error>> + 'a {
        let mut ro = ReadOptions::default();
        ro.set_iterate_range(PrefixRange(prefix.to_vec()));
        self.db.iterator_cf_opt(self.cf(cf), ro, IteratorMode::Start)
    }

    /// The edges of a node (items of a user, or users of an item), optionally of one type.
    pub fn neighbours(
        &self,
        kind: NodeKind,
        id: NodeId,
        edge_type: Option<TypeId>,
    ) -> Result<Vec<Neighbour>> {
        let cf = match kind {
            NodeKind::User => CF_EDGES_OUT,
            NodeKind::Item => CF_EDGES_IN,
        };
        let mut prefix = id.to_be_bytes().to_vec();
        if let Some(t) = edge_type {
            prefix.extend_from_slice(&t.to_be_bytes());
        }
        self.prefix_iter(cf, &prefix)
            .map(|entry| {
                let (k, v) = entry?;
                let (_, edge_type, node) =
                    decode_edge_key(&k).ok_or_else(|| corrupt("edge key", "bad length"))?;
                let value = EdgeValue::decode(&v).ok_or_else(|| corrupt("edge value", "bad length"))?;
                Ok(Neighbour { node, edge_type, value })
            })
            .collect()
    }

    /// Every edge, ordered by (user, type, item): what training reads to build its graph.
    pub fn edges(&self) -> impl Iterator<Item = Result<EdgeRecord>> + '_ {
        self.edges_in_family(CF_EDGES_OUT)
            .map(|r| r.map(|(user, edge_type, item, value)| EdgeRecord { user, edge_type, item, value }))
    }

    /// Every edge as stored in the reverse index, ordered by (item, type, user).
    pub fn reverse_edges(&self) -> impl Iterator<Item = Result<EdgeRecord>> + '_ {
        self.edges_in_family(CF_EDGES_IN)
            .map(|r| r.map(|(item, edge_type, user, value)| EdgeRecord { user, edge_type, item, value }))
    }

    fn edges_in_family(
        &self,
        cf: &str,
    ) -> impl Iterator<Item = Result<(NodeId, TypeId, NodeId, EdgeValue)>> + '_ {
        self.db.iterator_cf(self.cf(cf), IteratorMode::Start).map(|entry| {
            let (k, v) = entry?;
            let (a, t, b) = decode_edge_key(&k).ok_or_else(|| corrupt("edge key", "bad length"))?;
            let value = EdgeValue::decode(&v).ok_or_else(|| corrupt("edge value", "bad length"))?;
            Ok((a, t, b, value))
        })
    }

    // ---- event log ----

    /// The sequence number of the latest event (0 when the log is empty).
    pub fn last_seq(&self) -> Seq {
        self.lock_writer().next_seq - 1
    }

    /// Every event with a sequence number greater than `after`, in order.
    pub fn events_since(&self, after: Seq) -> impl Iterator<Item = Result<(Seq, Event)>> + '_ {
        let start = after.saturating_add(1).to_be_bytes();
        self.db.iterator_cf(self.cf(CF_EVENTS), IteratorMode::From(&start, rocksdb::Direction::Forward)).map(
            |entry| {
                let (k, v) = entry?;
                let seq = decode_u64(&k).ok_or_else(|| corrupt("event key", "bad length"))?;
                let event = Event::decode(&v).ok_or_else(|| corrupt("event", format!("seq {seq}")))?;
                Ok((seq, event))
            },
        )
    }

    // ---- meta ----

    /// How far the model has been trained through the event log.
    pub fn trained_through(&self) -> Result<Seq> {
        match self.db.get_cf(self.cf(CF_META), meta_keys::TRAINED_THROUGH)? {
            Some(v) => decode_u64(&v).ok_or_else(|| corrupt("trained_through", "bad length")),
            None => Ok(0),
        }
    }

    /// Counts over the whole database. Edges are counted by a scan of the key-only index.
    pub fn stats(&self) -> Result<Stats> {
        let count = |cf: &str| -> Result<u64> {
            let mut it = self.db.raw_iterator_cf(self.cf(cf));
            it.seek_to_first();
            let mut n = 0;
            while it.valid() {
                n += 1;
                it.next();
            }
            it.status()?;
            Ok(n)
        };
        Ok(Stats {
            users: count(CF_USER_NAMES)?,
            items: count(CF_ITEM_NAMES)?,
            edges: count(CF_EDGES_OUT)?,
            last_seq: self.last_seq(),
            trained_through: self.trained_through()?,
            models: count(CF_MODELS)?,
            disk_bytes: dir_size(&self.path),
        })
    }

    // ---- embeddings and models ----

    /// The stored embedding of a node.
    pub fn embedding(&self, kind: NodeKind, id: NodeId) -> Result<Option<StoredEmbedding>> {
        match self.db.get_pinned_cf(self.cf(CF_EMBEDDINGS), embedding_key(kind, id))? {
            Some(v) => Ok(Some(decode_bincode(&v, "embedding")?)),
            None => Ok(None),
        }
    }

    /// Every stored embedding of one kind of node, in id order.
    pub fn embeddings(&self, kind: NodeKind) -> impl Iterator<Item = Result<(NodeId, StoredEmbedding)>> + '_ {
        self.prefix_iter(CF_EMBEDDINGS, &[embedding_key(kind, 0)[0]]).map(|entry| {
            let (k, v) = entry?;
            let (_, id) =
                schema::decode_embedding_key(&k).ok_or_else(|| corrupt("embedding key", "bad length"))?;
            Ok((id, decode_bincode(&v, "embedding")?))
        })
    }

    /// The checkpoint bytes of one model version.
    pub fn model(&self, version: u64) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get_cf(self.cf(CF_MODELS), version.to_be_bytes())?)
    }

    /// The newest model version, without reading its checkpoint.
    pub fn latest_model_version(&self) -> Result<Option<u64>> {
        self.last_key_u64(CF_MODELS)
    }

    /// The newest model version and its checkpoint bytes.
    pub fn latest_model(&self) -> Result<Option<(u64, Vec<u8>)>> {
        let mut it = self.db.raw_iterator_cf(self.cf(CF_MODELS));
        it.seek_to_last();
        let found = match (it.key(), it.value()) {
            (Some(k), Some(v)) => {
                Some((decode_u64(k).ok_or_else(|| corrupt("model key", "bad length"))?, v.to_vec()))
            }
            _ => None,
        };
        it.status()?;
        Ok(found)
    }

    /// Stores a trained model, the embeddings it produced and how far it trained through
    /// the event log, in one atomic batch: after a crash either all of it is there or none.
    pub fn commit_training(&self, commit: &TrainingCommit<'_>) -> Result<()> {
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_MODELS), commit.model_version.to_be_bytes(), commit.checkpoint);
        for (kind, id, vector) in commit.embeddings {
            let stored = StoredEmbedding { model_version: commit.model_version, vector: vector.clone() };
            batch.put_cf(self.cf(CF_EMBEDDINGS), embedding_key(*kind, *id), encode_bincode(&stored)?);
        }
        batch.put_cf(self.cf(CF_META), meta_keys::TRAINED_THROUGH, commit.trained_through.to_be_bytes());
        self.db.write_opt(batch, &self.write_options())?;
        Ok(())
    }

    /// Checks the invariants that every crash must preserve: both edge indexes hold the same
    /// triples with the same values, every edge's nodes exist, and the event log has no gaps.
    pub fn check_integrity(&self) -> Result<()> {
        let mut forward: Vec<EdgeRecord> = self.edges().collect::<Result<_>>()?;
        let mut reverse: Vec<EdgeRecord> = self.reverse_edges().collect::<Result<_>>()?;
        let order = |e: &EdgeRecord| (e.user, e.edge_type, e.item);
        forward.sort_by_key(order);
        reverse.sort_by_key(order);
        if forward != reverse {
            return Err(corrupt("edge index", "the forward and reverse indexes differ"));
        }
        for e in &forward {
            if self.node_name(NodeKind::User, e.user)?.is_none()
                || self.node_name(NodeKind::Item, e.item)?.is_none()
            {
                return Err(corrupt(
                    "edge",
                    format!("edge {}-{}-{} has a missing node", e.user, e.edge_type, e.item),
                ));
            }
        }
        let mut expected = 1;
        for entry in self.events_since(0) {
            let (seq, _) = entry?;
            if seq != expected {
                return Err(corrupt("event log", format!("expected seq {expected}, found {seq}")));
            }
            expected += 1;
        }
        if expected - 1 != self.last_seq() {
            return Err(corrupt("event log", "the log and the sequence counter disagree"));
        }
        Ok(())
    }
}

/// What [`Store::commit_training`] writes.
pub struct TrainingCommit<'a> {
    pub model_version: u64,
    pub checkpoint: &'a [u8],
    pub embeddings: &'a [(NodeKind, NodeId, Vec<f32>)],
    pub trained_through: Seq,
}

pub(crate) fn check_weight(weight: f32) -> Result<()> {
    if weight.is_finite() {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!("an edge weight must be a finite number, got {weight}")))
    }
}

pub(crate) fn decode_u32(b: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(b.try_into().ok()?))
}

pub(crate) fn decode_u64(b: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(b.try_into().ok()?))
}

pub(crate) fn encode_bincode<T: bincode::Encode>(value: &T) -> Result<Vec<u8>> {
    bincode::encode_to_vec(value, bincode_config()).map_err(|e| corrupt("value", e.to_string()))
}

pub(crate) fn decode_bincode<T: bincode::Decode<()>>(bytes: &[u8], what: &'static str) -> Result<T> {
    let (value, _) =
        bincode::decode_from_slice(bytes, bincode_config()).map_err(|e| corrupt(what, e.to_string()))?;
    Ok(value)
}

fn dir_size(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries.filter_map(|e| e.ok()?.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum()
        })
        .unwrap_or(0)
}
