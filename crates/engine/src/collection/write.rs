//! The write path: validation, logging, applying.

use super::seal::MAX_MUTABLE_ROWS;
use super::*;

/// An operation with its log record, checked against the record limit.
pub(super) struct Encoded {
    op: Op,
    bytes: Vec<u8>,
}

impl Collection {
    /// Checks a vector against the schema; normalises it for cosine. Returns its position.
    pub(super) fn prepare_vector(
        &self,
        point: Option<PointId>,
        name: &str,
        v: &mut [f32],
    ) -> Result<usize> {
        let schema = self.schema();
        if schema.sparse_vectors.contains_key(name) {
            return Err(self.sparse_error(
                point,
                name,
                "it is a sparse vector: give it as indices and values, not as a dense vector"
                    .into(),
            ));
        }
        let position = schema.position(name).ok_or_else(|| Error::UnknownVector {
            collection: self.name.clone(),
            name: name.to_string(),
            known: schema.names(),
        })?;
        let kind = &schema.vectors[name];
        if kind.multi_config().is_some() {
            return Err(Error::InvalidMultiVector {
                collection: self.name.clone(),
                point,
                vector: name.to_string(),
                reason: "it is a multi-vector: give a list of token vectors, not one vector".into(),
            });
        }
        if v.len() != kind.dim() {
            return Err(Error::DimensionMismatch {
                collection: self.name.clone(),
                point,
                vector: name.to_string(),
                expected: kind.dim(),
                got: v.len(),
            });
        }
        if let Some((index, &value)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
            return Err(Error::NonFinite {
                collection: self.name.clone(),
                point,
                vector: name.to_string(),
                index,
                value,
            });
        }
        if kind.distance() == Distance::Cosine {
            normalize(v);
        }
        Ok(position)
    }

    fn sparse_error(&self, point: Option<PointId>, vector: &str, reason: String) -> Error {
        Error::InvalidSparseVector {
            collection: self.name.clone(),
            point,
            vector: vector.to_string(),
            reason,
        }
    }

    /// Checks a sparse vector against the rules (a sparse vector of the schema, as many
    /// values as indices, distinct indices, finite values; errors name the position) and
    /// sorts its entries by index. Returns its position among the sparse vectors.
    pub(super) fn prepare_sparse(
        &self,
        point: Option<PointId>,
        name: &str,
        v: &mut SparseVector,
    ) -> Result<usize> {
        let schema = self.schema();
        let Some(position) = schema.sparse_position(name) else {
            if schema.vectors.contains_key(name) {
                return Err(self.sparse_error(
                    point,
                    name,
                    "it is a dense vector, not a sparse one".into(),
                ));
            }
            return Err(Error::UnknownVector {
                collection: self.name.clone(),
                name: name.to_string(),
                known: schema.names(),
            });
        };
        if v.indices.len() != v.values.len() {
            return Err(self.sparse_error(
                point,
                name,
                format!(
                    "{} indices but {} values (one value per index)",
                    v.indices.len(),
                    v.values.len()
                ),
            ));
        }
        if let Some((i, x)) = v.values.iter().enumerate().find(|(_, x)| !x.is_finite()) {
            return Err(self.sparse_error(
                point,
                name,
                format!("values[{i}] is {x}, not a finite number"),
            ));
        }
        let counts = schema
            .sparse_vectors
            .get(name)
            .is_some_and(|k| k.bm25.is_some());
        if counts
            && point.is_some()
            && let Some((i, x)) = v.values.iter().enumerate().find(|(_, x)| **x <= 0.0)
        {
            return Err(self.sparse_error(
                point,
                name,
                format!("values[{i}] is {x}: a bm25 vector's values are term counts, above 0"),
            ));
        }
        let mut order: Vec<usize> = (0..v.indices.len()).collect();
        order.sort_by_key(|&i| v.indices[i]);
        if let Some(pair) = order
            .windows(2)
            .find(|w| v.indices[w[0]] == v.indices[w[1]])
        {
            let (a, b) = (pair[0].min(pair[1]), pair[0].max(pair[1]));
            return Err(self.sparse_error(
                point,
                name,
                format!(
                    "index {} appears twice (indices[{a}] and indices[{b}]); indices must be distinct",
                    v.indices[a]
                ),
            ));
        }
        *v = SparseVector {
            indices: order.iter().map(|&i| v.indices[i]).collect(),
            values: order.iter().map(|&i| v.values[i]).collect(),
        };
        Ok(position)
    }

    pub(super) fn prepare_point(&self, p: Point) -> Result<PreparedPoint> {
        let Point {
            id,
            mut vectors,
            mut sparse,
            multi,
            payload,
        } = p;
        for (name, v) in vectors.iter_mut() {
            self.prepare_vector(Some(id), name, v)?;
        }
        // A multi-vector's encoding goes with the dense vectors (its row in the segment).
        let mut tokens = Vec::with_capacity(multi.len());
        for (name, list) in &multi {
            let (flat, fde) = self.prepare_multi(id, name, list)?;
            tokens.push((name.clone(), flat));
            vectors.insert(name.clone(), fde);
        }
        for (name, v) in sparse.iter_mut() {
            self.prepare_sparse(Some(id), name, v)?;
        }
        if let Some(missing) = self
            .schema()
            .vectors
            .keys()
            .find(|k| !vectors.contains_key(*k))
        {
            return Err(Error::MissingVector {
                collection: self.name.clone(),
                point: id,
                name: missing.clone(),
            });
        }
        let payload = self.payload_bytes(id, &payload)?;
        // A sparse vector the point does not carry is empty.
        let sparse = self
            .schema()
            .sparse_vectors
            .keys()
            .map(|k| (k.clone(), sparse.remove(k).unwrap_or_default()))
            .collect();
        // BTreeMap iteration is schema order (the schema is a BTreeMap too).
        Ok(PreparedPoint {
            id,
            vectors: vectors.into_iter().collect(),
            sparse,
            multi: tokens,
            payload,
        })
    }

    /// A payload as the log holds it (no bytes when empty).
    pub(super) fn payload_bytes(&self, id: PointId, payload: &crate::Payload) -> Result<Vec<u8>> {
        if payload.is_empty() {
            return Ok(Vec::new());
        }
        serde_json::to_vec(payload).map_err(|e| self.invalid(format!("point {id}: payload: {e}")))
    }

    /// Freezes the mutable segment for sealing if it is over the seal threshold.
    pub(super) fn freeze_if_full(&self, state: &mut State) -> Result<()> {
        if state.mutable.bytes() >= self.config().seal_threshold_bytes {
            self.freeze(state)?;
        }
        Ok(())
    }

    /// Encodes an operation for the log, refusing one over the WAL's record limit.
    pub(super) fn encode(&self, op: Op) -> Result<Encoded> {
        let bytes = op.encode();
        if bytes.len() > quiver_storage::wal::MAX_RECORD {
            return Err(self.invalid(format!(
                "one batch encodes to {} bytes, over the {} byte limit: send smaller batches",
                bytes.len(),
                quiver_storage::wal::MAX_RECORD
            )));
        }
        Ok(Encoded { op, bytes })
    }

    /// Logs, applies and (by default) fsyncs one operation: waits first if too many segments
    /// await their seal. Returns its sequence number.
    pub(super) fn write(&self, op: Op) -> Result<u64> {
        let encoded = self.encode(op)?;
        self.write_with(|_| Ok(encoded))
    }

    /// [`Collection::write`] of an operation made from the current state: `make` runs under
    /// the state write lock, so no other write comes between what it reads and what is
    /// logged (a read-modify-write). An error from `make` changes nothing.
    pub(super) fn write_with(&self, make: impl FnOnce(&State) -> Result<Encoded>) -> Result<u64> {
        self.wait_for_room()?;
        let seq = {
            let mut state = self.state.write();
            self.check_usable()?;
            let Encoded { op, bytes } = make(&state)?;
            if let Op::Upsert(points) = &op
                && state.mutable.rows() + points.len() > MAX_MUTABLE_ROWS
                && let Err(e) = self.freeze(&mut state)
            {
                return self.fail(e);
            }
            let seq = match self.wal.append(&bytes) {
                Ok(seq) => seq,
                Err(e) => return self.fail(e),
            };
            apply(&mut state, &op, seq, self.deletion_horizon());
            self.segments.write().seq = seq;
            // The write is logged and applied: a failing freeze (log rotation) must not
            // report it as failed. It marks the collection failed; the next write reports it.
            if let Err(e) = self.freeze_if_full(&mut state) {
                log::error!(
                    "collection `{}`: freezing after write {seq} failed: {e}",
                    self.name
                );
                let _ = self.fail::<()>(e);
            }
            seq
        };
        if self.durability == Durability::Fsync
            && let Err(e) = self.wal.sync_to(seq)
        {
            return self.fail(e);
        }
        Ok(seq)
    }

    /// Inserts or replaces points. All points are validated before anything changes: one bad
    /// point rejects the whole batch. A vector embedded from text that a point does not carry
    /// is computed from the point's payload field (see [`crate::TextEmbedding`]), a BM25
    /// vector too (see [`crate::Bm25`]). Returns the operation's sequence number.
    pub fn upsert(&self, mut points: Vec<Point>) -> Result<u64> {
        self.check_usable()?;
        self.embed_missing(&mut points)?;
        self.analyze_missing(&mut points)?;
        let prepared = points
            .into_iter()
            .map(|p| self.prepare_point(p))
            .collect::<Result<Vec<_>>>()?;
        self.write(Op::Upsert(prepared))
    }

    /// Fills the text-embedded vectors the points do not carry from their payloads.
    pub(super) fn embed_missing(&self, points: &mut [Point]) -> Result<()> {
        for (name, kind) in &self.schema().vectors {
            let Some(spec) = kind.embedding() else {
                continue;
            };
            let mut which = Vec::new();
            let mut texts = Vec::new();
            for (i, p) in points.iter().enumerate() {
                if p.vectors.contains_key(name) {
                    continue;
                }
                match p.payload.get(&spec.field) {
                    Some(serde_json::Value::String(text)) => {
                        which.push(i);
                        texts.push(text.as_str());
                    }
                    other => {
                        let found = match other {
                            None => "it has no such field".to_string(),
                            Some(v) => format!("it holds {}", json_kind(v)),
                        };
                        return Err(self.invalid(format!(
                            "point {}: vector `{name}` is embedded from the text in payload field `{}`, but {found}",
                            p.id, spec.field
                        )));
                    }
                }
            }
            if texts.is_empty() {
                continue;
            }
            let vectors = self.embed_text(name, &texts)?;
            for (i, v) in which.into_iter().zip(vectors) {
                if let Some(p) = points.get_mut(i) {
                    p.vectors.insert(name.clone(), v);
                }
            }
        }
        Ok(())
    }

    /// Embeds texts with the model of vector `vector_name` (which must be declared as embedded
    /// from text): one vector per text, as an upsert would store it. Use it to search with a
    /// text query.
    pub fn embed_text(&self, vector_name: &str, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let schema = self.schema();
        let kind = schema
            .vectors
            .get(vector_name)
            .ok_or_else(|| Error::UnknownVector {
                collection: self.name.clone(),
                name: vector_name.to_string(),
                known: schema.names(),
            })?;
        let Some(spec) = kind.embedding() else {
            return Err(self.invalid(format!(
                "vector `{vector_name}` is not embedded from text: search it with a vector"
            )));
        };
        self.models
            .embed(&self.name, vector_name, &spec.model, texts, kind.dim())
    }

    /// Deletes points by id; ids that do not exist are ignored. Returns how many existed.
    pub fn delete(&self, ids: &[PointId]) -> Result<usize> {
        let existing = {
            let state = self.state.read();
            ids.iter().filter(|id| state.ids.contains_key(id)).count()
        };
        self.write(Op::Delete(ids.to_vec()))?;
        Ok(existing)
    }

    /// Deletes the points whose payload passes `filter` (those matching when the call starts;
    /// logged as a delete of their ids). Returns how many were deleted.
    pub fn delete_by_filter(&self, filter: &Filter) -> Result<usize> {
        self.check_usable()?;
        let ids = self.matching_ids(filter);
        if ids.is_empty() {
            return Ok(0);
        }
        let mut deleted = 0;
        // Keep each logged record well under the WAL's record limit.
        for chunk in ids.chunks(100_000) {
            deleted += self.delete(chunk)?;
        }
        Ok(deleted)
    }
}

pub(super) fn normalize(v: &mut [f32]) {
    let norm = quiver_kernels::norm_squared(v).sqrt();
    if norm > 0.0 {
        for x in v.iter_mut() {
            *x /= norm;
        }
    }
}

/// A JSON value's type, for messages.
pub(super) fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}
