//! Bulk loading: all of a file's edges or none of them, even across a crash.
//!
//! A load is too large for one write batch, so it runs as a small redo protocol whose
//! state is the `pending_load` record in `meta`:
//!
//! 1. write the record (`committed: false`) with the sequence and id ranges the load will use;
//! 2. write the new node mappings and one event per edge, in chunks;
//! 3. commit: set `committed: true` together with the node-id counters;
//! 4. apply the events to both edge families, in chunks, each chunk advancing
//!    `applied_through` in the same batch, so no edge is applied twice;
//! 5. delete the record.
//!
//! On open, a record that is not committed is rolled back (its events and nodes are
//! deleted); a committed one is rolled forward from `applied_through`. The writer lock is
//! held throughout, so nothing interleaves with the load's sequence numbers and ids.

use rocksdb::WriteBatch;

use crate::error::{corrupt, Error, Result};
use crate::schema::{
    edge_key, meta_keys, EdgeValue, Event, NodeId, NodeKind, PendingLoad, Seq, TypeId, CF_EDGES_IN,
    CF_EDGES_OUT, CF_EVENTS, CF_META,
};
use crate::store::{check_weight, decode_bincode, decode_u32, encode_bincode, Store};

/// Edges per write batch: large enough to amortise the per-batch cost, small enough that
/// a batch stays a few megabytes.
const CHUNK: usize = 50_000;

/// A parsed file, ready to load. Nodes are given by external id once each; edges refer
/// to them by position.
#[derive(Debug, Default, Clone)]
pub struct BulkLoad {
    pub users: Vec<String>,
    pub items: Vec<String>,
    pub edges: Vec<BulkEdge>,
}

/// One row of a bulk load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BulkEdge {
    /// Index into [`BulkLoad::users`].
    pub user: u32,
    pub edge_type: TypeId,
    /// Index into [`BulkLoad::items`].
    pub item: u32,
    pub weight: f32,
    pub ts: i64,
}

/// Which part of a load is running, for progress reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadPhase {
    /// Writing the event log and the new nodes.
    Logging,
    /// Folding the events into the edge indexes.
    Applying,
}

/// What a finished load did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoadReport {
    pub edges: u64,
    pub new_users: u64,
    pub new_items: u64,
    /// Sequence numbers of the load's first and last events (equal to the log's end when
    /// the load was empty).
    pub first_seq: Seq,
    pub last_seq: Seq,
}

impl Store {
    /// Loads a batch of edges atomically; see the module docs for how.
    /// `progress(phase, done, total)` is called after every chunk.
    pub fn bulk_load(
        &self,
        load: &BulkLoad,
        progress: &mut dyn FnMut(LoadPhase, u64, u64),
    ) -> Result<LoadReport> {
        let types = self.types().len();
        for e in &load.edges {
            if e.user as usize >= load.users.len() || e.item as usize >= load.items.len() {
                return Err(Error::InvalidInput(
                    "a bulk edge refers to a node that is not in the load".into(),
                ));
            }
            if e.edge_type as usize >= types {
                return Err(Error::InvalidInput(format!("unknown edge type id {}", e.edge_type)));
            }
            check_weight(e.weight)?;
        }

        let mut w = self.lock_writer();
        let (user_ids, new_users) = self.resolve_bulk(NodeKind::User, &load.users, w.next_user)?;
        let (item_ids, new_items) = self.resolve_bulk(NodeKind::Item, &load.items, w.next_item)?;
        let n = load.edges.len() as u64;
        let first_seq = w.next_seq;
        let mut pending = PendingLoad {
            first_seq,
            last_seq: first_seq + n - u64::from(n > 0),
            first_user: w.next_user,
            first_item: w.next_item,
            next_user: w.next_user + new_users.len() as NodeId,
            next_item: w.next_item + new_items.len() as NodeId,
            committed: false,
            applied_through: first_seq - 1,
        };
        if n == 0 && new_users.is_empty() && new_items.is_empty() {
            return Ok(LoadReport {
                first_seq: w.next_seq - 1,
                last_seq: w.next_seq - 1,
                ..LoadReport::default()
            });
        }
        let wo = self.write_options();
        self.put_pending(&pending)?;

        // Phase 2: new nodes and the event log.
        let mut batch = WriteBatch::default();
        for (kind, new, first) in [
            (NodeKind::User, &new_users, pending.first_user),
            (NodeKind::Item, &new_items, pending.first_item),
        ] {
            let (ids_cf, names_cf) = (Store::ids_cf_of(kind), Store::names_cf(kind));
            for (offset, &index) in new.iter().enumerate() {
                let name = match kind {
                    NodeKind::User => &load.users[index],
                    NodeKind::Item => &load.items[index],
                };
                let id = first + offset as NodeId;
                batch.put_cf(self.cf(ids_cf), name.as_bytes(), id.to_be_bytes());
                batch.put_cf(self.cf(names_cf), id.to_be_bytes(), name.as_bytes());
                if batch.len() >= 2 * CHUNK {
                    self.db.write_opt(std::mem::take(&mut batch), &wo)?;
                }
            }
        }
        for (chunk_no, chunk) in load.edges.chunks(CHUNK).enumerate() {
            let base = first_seq + (chunk_no * CHUNK) as Seq;
            for (i, e) in chunk.iter().enumerate() {
                let event = Event::AddEdge {
                    user: user_ids[e.user as usize],
                    edge_type: e.edge_type,
                    item: item_ids[e.item as usize],
                    weight: e.weight,
                    ts: e.ts,
                };
                batch.put_cf(self.cf(CF_EVENTS), (base + i as Seq).to_be_bytes(), event.encode());
            }
            self.db.write_opt(std::mem::take(&mut batch), &wo)?;
            progress(LoadPhase::Logging, (chunk_no * CHUNK + chunk.len()) as u64, n);
        }
        self.db.write_opt(std::mem::take(&mut batch), &wo)?;

        // Phase 3: commit. From here on the load survives a crash.
        pending.committed = true;
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_META), meta_keys::PENDING_LOAD, encode_bincode(&pending)?);
        batch.put_cf(self.cf(CF_META), meta_keys::NEXT_USER, pending.next_user.to_be_bytes());
        batch.put_cf(self.cf(CF_META), meta_keys::NEXT_ITEM, pending.next_item.to_be_bytes());
        self.db.write_opt(batch, &wo)?;
        w.next_user = pending.next_user;
        w.next_item = pending.next_item;
        w.next_seq = pending.last_seq + 1;

        // Phase 4: apply, straight from memory.
        for (chunk_no, chunk) in load.edges.chunks(CHUNK).enumerate() {
            let mut batch = WriteBatch::default();
            for e in chunk {
                let (u, i) = (user_ids[e.user as usize], item_ids[e.item as usize]);
                self.stage_edge(&mut batch, u, e.edge_type, i, &EdgeValue::single(e.weight, e.ts));
            }
            pending.applied_through = first_seq - 1 + (chunk_no * CHUNK + chunk.len()) as Seq;
            batch.put_cf(self.cf(CF_META), meta_keys::PENDING_LOAD, encode_bincode(&pending)?);
            self.db.write_opt(batch, &wo)?;
            progress(LoadPhase::Applying, (chunk_no * CHUNK + chunk.len()) as u64, n);
        }

        // Phase 5: done.
        self.db.delete_cf_opt(self.cf(CF_META), meta_keys::PENDING_LOAD, &wo)?;
        Ok(LoadReport {
            edges: n,
            new_users: new_users.len() as u64,
            new_items: new_items.len() as u64,
            first_seq,
            last_seq: pending.last_seq,
        })
    }

    fn stage_edge(
        &self,
        batch: &mut WriteBatch,
        user: NodeId,
        edge_type: TypeId,
        item: NodeId,
        value: &EdgeValue,
    ) {
        let v = value.encode();
        batch.merge_cf(self.cf(CF_EDGES_OUT), edge_key(user, edge_type, item), v);
        batch.merge_cf(self.cf(CF_EDGES_IN), edge_key(item, edge_type, user), v);
    }

    /// Maps external ids to internal ones with batched look-ups. New nodes get ids from
    /// `next` on, in order of first appearance; their positions in `names` are returned.
    fn resolve_bulk(
        &self,
        kind: NodeKind,
        names: &[String],
        next: NodeId,
    ) -> Result<(Vec<NodeId>, Vec<usize>)> {
        let cf = self.cf(Store::ids_cf_of(kind));
        let mut ids = Vec::with_capacity(names.len());
        let mut new = Vec::new();
        for chunk in names.chunks(CHUNK) {
            let found = self.db.multi_get_cf(chunk.iter().map(|name| (cf, name.as_bytes())));
            for value in found {
                match value? {
                    Some(v) => ids.push(decode_u32(&v).ok_or_else(|| corrupt("node id", "bad length"))?),
                    None => {
                        let id = u64::from(next) + new.len() as u64;
                        let id = NodeId::try_from(id).map_err(|_| {
                            Error::InvalidInput(format!(
                                "no {} ids left (the limit is {})",
                                kind.as_str(),
                                u32::MAX
                            ))
                        })?;
                        new.push(ids.len());
                        ids.push(id);
                    }
                }
            }
        }
        Ok((ids, new))
    }

    fn put_pending(&self, pending: &PendingLoad) -> Result<()> {
        self.db.put_cf_opt(
            self.cf(CF_META),
            meta_keys::PENDING_LOAD,
            encode_bincode(pending)?,
            &self.write_options(),
        )?;
        Ok(())
    }

    /// Finishes or undoes a load that a crash interrupted. Runs once, at open.
    pub(crate) fn recover_bulk_load(&self) -> Result<()> {
        let Some(bytes) = self.db.get_cf(self.cf(CF_META), meta_keys::PENDING_LOAD)? else {
            return Ok(());
        };
        let mut pending: PendingLoad = decode_bincode(&bytes, "pending load")?;
        let mut w = self.lock_writer();
        let wo = self.write_options();
        if pending.committed {
            let events: Vec<(Seq, Event)> = self
                .events_since(pending.applied_through)
                .take_while(|e| !matches!(e, Ok((s, _)) if *s > pending.last_seq))
                .collect::<Result<_>>()?;
            for chunk in events.chunks(CHUNK) {
                let mut batch = WriteBatch::default();
                for (seq, event) in chunk {
                    let Event::AddEdge { user, edge_type, item, weight, ts } = *event else {
                        return Err(corrupt("pending load", format!("event {seq} is not an edge")));
                    };
                    self.stage_edge(&mut batch, user, edge_type, item, &EdgeValue::single(weight, ts));
                    pending.applied_through = *seq;
                }
                batch.put_cf(self.cf(CF_META), meta_keys::PENDING_LOAD, encode_bincode(&pending)?);
                self.db.write_opt(batch, &wo)?;
            }
            w.next_user = w.next_user.max(pending.next_user);
            w.next_item = w.next_item.max(pending.next_item);
        } else {
            let mut batch = WriteBatch::default();
            batch.delete_range_cf(
                self.cf(CF_EVENTS),
                pending.first_seq.to_be_bytes(),
                u64::MAX.to_be_bytes(),
            );
            for (kind, first) in [(NodeKind::User, pending.first_user), (NodeKind::Item, pending.first_item)]
            {
                let names_cf = Store::names_cf(kind);
                let it = self.db.iterator_cf(
                    self.cf(names_cf),
                    rocksdb::IteratorMode::From(&first.to_be_bytes(), rocksdb::Direction::Forward),
                );
                for entry in it {
                    let (id, name) = entry?;
                    batch.delete_cf(self.cf(names_cf), id);
                    batch.delete_cf(self.cf(Store::ids_cf_of(kind)), name);
                }
            }
            batch.put_cf(self.cf(CF_META), meta_keys::NEXT_USER, pending.first_user.to_be_bytes());
            batch.put_cf(self.cf(CF_META), meta_keys::NEXT_ITEM, pending.first_item.to_be_bytes());
            self.db.write_opt(batch, &wo)?;
            w.next_seq = pending.first_seq;
            w.next_user = pending.first_user;
            w.next_item = pending.first_item;
        }
        self.db.delete_cf_opt(self.cf(CF_META), meta_keys::PENDING_LOAD, &wo)?;
        Ok(())
    }
}
