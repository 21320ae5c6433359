//! Updates of existing points: payload edits and vector replacements.
//!
//! Each is a read-modify-write under the state write lock (`Collection::write_with`), so no
//! concurrent write comes between reading a point and logging its new version, and each is
//! logged as an **upsert of the resulting whole points** (vectors as stored). The log then
//! holds everything replay needs: a delta ("set key k of point p") would need the row it
//! replaces, which a published deleted bitmap may already mark deleted, leaving the point out
//! of the id map at recovery (`docs/format.md`, §3.5 `wal_watermark`). Field indexes follow
//! for the same reason as for any upsert: the new row goes to the mutable segment, checked
//! per point, and the old row is deleted.

use super::*;
use crate::point::Payload;
use crate::update::{PayloadUpdate, PointSelector};
use std::collections::HashSet;

/// A filter update is logged in operations of about this many bytes of points, each its own
/// record: the WAL's default file size (a larger record gets a file to itself), and a bound
/// on how long one operation holds the state lock.
const FILTER_UPDATE_BYTES: usize = quiver_storage::wal::DEFAULT_MAX_FILE_BYTES as usize;

impl Collection {
    /// Changes the payloads of existing points (Qdrant's set, overwrite, delete and clear
    /// payload; see [`PayloadUpdate`]). Vectors are kept as stored, a vector embedded from a
    /// payload text field too (upsert the point to embed it again); BM25 vectors, cheap to
    /// compute, follow their text field. Returns the sequence
    /// number of the (last) logged operation.
    ///
    /// - [`PointSelector::Ids`]: every id must exist, else [`Error::PointNotFound`] and
    ///   nothing changes. One logged operation: all points change or none, across a crash too.
    /// - [`PointSelector::Filter`]: the points that pass when the call starts and still pass
    ///   when the update reaches them (a point that a concurrent write makes pass meanwhile
    ///   may be left out). Logged in operations of about 64 MiB of points each, each atomic
    ///   and durable on its own, as `delete_by_filter` does: a crash may leave the first ones
    ///   applied.
    pub fn update_payload(&self, selector: &PointSelector, update: &PayloadUpdate) -> Result<u64> {
        self.check_usable()?;
        update.check().map_err(|m| self.invalid(m))?;
        match selector {
            PointSelector::Ids(ids) => {
                let mut seen = HashSet::with_capacity(ids.len());
                let ids: Vec<PointId> = ids.iter().copied().filter(|id| seen.insert(*id)).collect();
                self.write_with(|state| {
                    if let Some(id) = ids.iter().find(|id| !state.ids.contains_key(id)) {
                        return Err(self.not_found(*id));
                    }
                    let mut points = Vec::with_capacity(ids.len());
                    for &id in &ids {
                        let mut p = self.stored(state, id)?.ok_or_else(|| self.not_found(id))?;
                        let mut payload = self.stored_payload(&p)?;
                        update.apply(&mut payload);
                        p.payload = self.payload_bytes(id, &payload)?;
                        self.reanalyze(&mut p, &payload)?;
                        points.push(p);
                    }
                    self.encode(Op::Upsert(points))
                })
            }
            PointSelector::Filter(filter) => {
                let ids = self.matching_ids(filter);
                let mut rest = ids.as_slice();
                loop {
                    let seq = self.write_with(|state| {
                        let mut points = Vec::new();
                        let mut bytes = 0;
                        while bytes < FILTER_UPDATE_BYTES
                            && let Some((&id, tail)) = rest.split_first()
                        {
                            rest = tail;
                            // Deleted since the call started: skipped.
                            let Some(mut p) = self.stored(state, id)? else {
                                continue;
                            };
                            let mut payload = self.stored_payload(&p)?;
                            // Rewritten since: only if it still passes.
                            if !filter.matches(id, &payload) {
                                continue;
                            }
                            update.apply(&mut payload);
                            p.payload = self.payload_bytes(id, &payload)?;
                            self.reanalyze(&mut p, &payload)?;
                            bytes += p.encoded_len();
                            points.push(p);
                        }
                        self.encode(Op::Upsert(points))
                    })?;
                    if rest.is_empty() {
                        return Ok(seq);
                    }
                }
            }
        }
    }

    /// Replaces the named vectors of existing points, keeping their other vectors and their
    /// payloads (Qdrant's update vectors). Vectors are checked and normalised as by upsert
    /// (known name, dimension, finite values; cosine vectors normalised); every id must exist,
    /// else [`Error::PointNotFound`]. Any error changes nothing; one logged operation, so all
    /// points change or none. A point listed twice gets both changes, in order. Returns the
    /// operation's sequence number.
    ///
    /// There is no vector deletion: every point has all of the collection's vectors. A
    /// server answering Qdrant's `points/vectors/delete` should refuse it as an invalid
    /// request ([`Error::InvalidRequest`]), saying so.
    pub fn update_vectors(
        &self,
        points: Vec<(PointId, BTreeMap<String, Vec<f32>>)>,
    ) -> Result<u64> {
        self.check_usable()?;
        let mut changes = Vec::with_capacity(points.len());
        for (id, vectors) in points {
            let mut by_position = Vec::with_capacity(vectors.len());
            for (name, mut v) in vectors {
                let position = self.prepare_vector(Some(id), &name, &mut v)?;
                by_position.push((position, v));
            }
            changes.push((id, by_position));
        }
        self.write_with(|state| {
            if let Some((id, _)) = changes.iter().find(|(id, _)| !state.ids.contains_key(id)) {
                return Err(self.not_found(*id));
            }
            let mut points: Vec<PreparedPoint> = Vec::with_capacity(changes.len());
            let mut index: HashMap<PointId, usize> = HashMap::with_capacity(changes.len());
            for (id, vectors) in changes {
                let at = match index.get(&id) {
                    Some(&at) => at,
                    None => {
                        let p = self.stored(state, id)?.ok_or_else(|| self.not_found(id))?;
                        points.push(p);
                        index.insert(id, points.len() - 1);
                        points.len() - 1
                    }
                };
                let Some(p) = points.get_mut(at) else {
                    continue;
                };
                for (position, v) in vectors {
                    if let Some((_, slot)) = p.vectors.get_mut(position) {
                        *slot = v;
                    }
                }
            }
            self.encode(Op::Upsert(points))
        })
    }

    fn not_found(&self, point: PointId) -> Error {
        Error::PointNotFound {
            collection: self.name.clone(),
            point,
        }
    }

    /// Point `id` as an upsert logs it (vectors in schema order, payload bytes), read from
    /// its current row; `None` if it does not exist. Under the state lock.
    fn stored(&self, state: &State, id: PointId) -> Result<Option<PreparedPoint>> {
        let Some(loc) = state.ids.get(&id) else {
            return Ok(None);
        };
        let corrupt = |message: String| Error::Corrupt {
            path: self.dir.clone(),
            message: format!("point {id}: {message}"),
        };
        let seg = state.by_id.get(&loc.segment).ok_or_else(|| {
            corrupt(format!(
                "the id map points to segment {}, which is not open",
                loc.segment
            ))
        })?;
        let schema = self.schema();
        seg.with_view(|v| {
            let mut vectors = Vec::with_capacity(schema.vectors.len());
            for (position, (name, kind)) in schema.vectors.iter().enumerate() {
                let row = v.vector(position, kind.dim(), loc.offset);
                if row.len() != kind.dim() {
                    return Err(corrupt(format!(
                        "vector `{name}` is missing from row {} of segment {}",
                        loc.offset, seg.id
                    )));
                }
                vectors.push((name.clone(), row.to_vec()));
            }
            let sparse = schema
                .sparse_vectors
                .keys()
                .enumerate()
                .map(|(j, name)| (name.clone(), v.sparse_row(j, loc.offset)))
                .collect();
            let multi = schema
                .multi_vectors()
                .zip(&v.multi)
                .map(|((name, _), rows)| (name.clone(), rows.row(loc.offset).to_vec()))
                .collect();
            Ok(Some(PreparedPoint {
                id,
                vectors,
                sparse,
                multi,
                payload: v.payload(loc.offset).to_vec(),
            }))
        })
    }

    /// A stored point's payload, parsed; one that does not parse is an error (editing it as
    /// empty would lose it).
    fn stored_payload(&self, p: &PreparedPoint) -> Result<Payload> {
        parse_payload(&p.payload).map_err(|e| Error::Corrupt {
            path: self.dir.clone(),
            message: format!("point {}: {e}", p.id),
        })
    }
}
