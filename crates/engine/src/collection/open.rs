//! Creating and opening a collection: manifest, sealed segments, WAL replay.

use super::derived::{load_graphs, load_postings};
use super::durability::spawn_periodic_sync;
use super::*;

impl Collection {
    /// Creates the collection's files in `dir` (which must not exist yet).
    pub(crate) fn create_files(
        dir: &Path,
        schema: &Schema,
        config: &CollectionConfig,
    ) -> Result<()> {
        qfs::create_dir_durable(&dir.join(SEGMENTS_DIR))?;
        qfs::create_dir_durable(&dir.join(WAL_DIR))?;
        manifest_for(schema, config, &BTreeMap::new(), Vec::new(), 1, 0)?
            .write(dir, schema.manifest_version())?;
        Ok(())
    }

    /// Opens a collection directory: reads the manifest, maps sealed segments, replays the WAL
    /// above the manifest's watermark, and removes files no manifest refers to.
    pub(crate) fn open(name: &str, dir: &Path, shared: &Shared) -> Result<Arc<Collection>> {
        let manifest = Manifest::read(dir)?;
        let manifest_path = dir.join(quiver_storage::manifest::FILE_NAME);
        let schema: Schema =
            serde_json::from_value(manifest.schema.clone()).map_err(|e| Error::Corrupt {
                path: manifest_path.clone(),
                message: format!("schema not understood ({e}); was it written by a newer Quiver?"),
            })?;
        schema.validate()?;
        let config: CollectionConfig =
            serde_json::from_value(manifest.config.clone()).map_err(|e| Error::Corrupt {
                path: manifest_path.clone(),
                message: format!("collection settings not understood: {e}"),
            })?;
        let mut payload_indexes = BTreeMap::new();
        for (key, kind) in &manifest.payload_indexes {
            let kind = FieldKind::from_name(kind).ok_or_else(|| Error::Corrupt {
                path: manifest_path.clone(),
                message: format!("field index `{key}` has unknown kind `{kind}`"),
            })?;
            payload_indexes.insert(key.clone(), kind);
        }
        let dims = schema.dims();
        let segments_dir = dir.join(SEGMENTS_DIR);
        remove_unlisted_segments(&segments_dir, &manifest)?;

        let mut ids = BTreeMap::new();
        let mut by_id = HashMap::new();
        let mut list = Vec::new();
        let mut published = HashMap::new();
        for entry in &manifest.segments {
            let seg_dir = segments_dir.join(entry.id.to_string());
            if entry.rows > u64::from(u32::MAX) {
                return Err(Error::Corrupt {
                    path: manifest_path.clone(),
                    message: format!(
                        "segment {} has {} rows; rows are addressed by u32 offsets",
                        entry.id, entry.rows
                    ),
                });
            }
            let files = segfiles::open_segment(
                &seg_dir,
                entry.rows,
                &dims,
                schema.sparse_vectors.len(),
                &schema.multi_dims(),
            )?;
            let deleted = if entry.deleted_gen == 0 {
                vec![0; files.rows.div_ceil(64)]
            } else {
                segfiles::read_deleted(&seg_dir, entry.deleted_gen, entry.rows)?
            };
            segfiles::remove_other_deleted(&seg_dir, entry.deleted_gen)?;
            let graphs = load_graphs(name, dir, &schema, &files, &shared.pool)?;
            let postings = load_postings(name, &files)?;
            let fields = planner::load_fields(&files, &payload_indexes);
            let seg = Arc::new(Segment::sealed(
                entry.id, files, deleted, graphs, postings, fields,
            ));
            published.insert(entry.id, (entry.deleted_gen, seg.deleted.count()));
            seg.with_view(|v| -> Result<()> {
                for (row, id) in v.ids.iter().enumerate() {
                    if v.deleted.is_deleted(row as u32) {
                        continue;
                    }
                    let loc = Loc {
                        segment: entry.id,
                        offset: row as u32,
                    };
                    if let Some(other) = ids.insert(*id, loc) {
                        return Err(Error::Corrupt {
                            path: seg_dir.clone(),
                            message: format!(
                                "point {id} is live in segment {} and in segment {}",
                                other.segment, entry.id
                            ),
                        });
                    }
                }
                Ok(())
            })?;
            by_id.insert(entry.id, Arc::clone(&seg));
            list.push(seg);
        }
        let mutable = Arc::new(Segment::new_mutable(
            manifest.next_segment_id,
            dims.len(),
            schema.sparse_vectors.len(),
            schema.multi_dims().len(),
        ));
        by_id.insert(mutable.id, Arc::clone(&mutable));
        list.push(Arc::clone(&mutable));

        let mut state = State {
            ids,
            by_id,
            mutable,
            frozen: Default::default(),
            next_segment_id: manifest.next_segment_id + 1,
        };
        let wal_dir = dir.join(WAL_DIR);
        let mut reader = WalReader::open(&wal_dir)?;
        let mut replayed = 0;
        let mut first_seen = None;
        while let Some(rec) = reader.next_record()? {
            first_seen.get_or_insert(rec.seq);
            if rec.seq <= manifest.wal_watermark {
                continue;
            }
            let op = Op::decode(&rec.payload)
                .and_then(|op| op.check_against(&schema).map(|()| op))
                .map_err(|m| Error::Corrupt {
                    path: wal_dir.clone(),
                    message: format!("record {}: {m}", rec.seq),
                })?;
            // No reader yet: no deletion record is needed (horizon = every sequence number).
            apply(&mut state, &op, rec.seq, u64::MAX);
            replayed += 1;
        }
        if let Some(first) = first_seen
            && first > manifest.wal_watermark + 1
        {
            return Err(Error::Corrupt {
                path: wal_dir,
                message: format!(
                    "log starts at sequence {first} but the manifest needs everything after {}",
                    manifest.wal_watermark
                ),
            });
        }
        let end = reader.finish(manifest.wal_watermark + 1)?;
        let wal = Wal::resume(&wal_dir, &end)?;
        wal.remove_through(manifest.wal_watermark)?;

        let seq = wal.last_seq();
        let signal = Arc::new(Signal::default());
        let encoders = multi::encoders(&schema)?;
        let collection = Arc::new(Collection {
            name: name.to_string(),
            dir: dir.to_path_buf(),
            settings: RwLock::new(Arc::new(Settings {
                schema: Arc::new(schema),
                config,
            })),
            durability: shared.durability,
            wal,
            maintenance: Mutex::new(Published {
                watermark: manifest.wal_watermark,
                deleted: published,
            }),
            payload_indexes: RwLock::new(payload_indexes),
            state: RwLock::new(state),
            segments: RwLock::new(ReadState {
                list: Arc::new(list),
                seq,
            }),
            readers: Readers::default(),
            signal: Arc::clone(&signal),
            pool: Arc::clone(&shared.pool),
            _dir_lock: Arc::clone(&shared.dir_lock),
            failed: Mutex::new(None),
            dropped: AtomicBool::new(false),
            distance_computations: AtomicU64::new(0),
            recovery: RecoveryReport {
                replayed_ops: replayed,
                torn_tail_bytes: end.truncated_bytes,
            },
            models: Arc::clone(&shared.models),
            encoders,
        });
        maintenance::spawn(Arc::downgrade(&collection), signal, name)?;
        if let Durability::Periodic(every) = shared.durability {
            spawn_periodic_sync(Arc::downgrade(&collection), every);
        }
        collection.freeze_if_full(&mut collection.state.write())?;
        Ok(collection)
    }
}

/// The manifest of a collection (the one constructor: creation and publishing use it).
pub(super) fn manifest_for(
    schema: &Schema,
    config: &CollectionConfig,
    payload_indexes: &BTreeMap<String, FieldKind>,
    segments: Vec<SegmentEntry>,
    next_segment_id: u64,
    wal_watermark: u64,
) -> Result<Manifest> {
    let json = |v: serde_json::Result<serde_json::Value>| {
        v.map_err(|e| Error::InvalidSchema {
            reason: e.to_string(),
        })
    };
    Ok(Manifest {
        schema: json(serde_json::to_value(schema))?,
        config: json(serde_json::to_value(config))?,
        segments,
        next_segment_id,
        wal_watermark,
        payload_indexes: payload_indexes
            .iter()
            .map(|(k, v)| (k.clone(), v.name().to_string()))
            .collect(),
    })
}

/// Removes segment directories the manifest does not name (a crash between writing a segment
/// and publishing the manifest, or after publishing but before removing merged segments).
pub(super) fn remove_unlisted_segments(segments_dir: &Path, manifest: &Manifest) -> Result<()> {
    let entries = std::fs::read_dir(segments_dir).map_err(|source| quiver_storage::Error::Io {
        path: segments_dir.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| quiver_storage::Error::Io {
            path: segments_dir.to_path_buf(),
            source,
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Only what Quiver writes here: `<id>` and `<id>.tmp` directories. Anything else is
        // left alone with a warning.
        let Some(id) = name
            .strip_suffix(".tmp")
            .unwrap_or(&name)
            .parse::<u64>()
            .ok()
            .filter(|_| entry.path().is_dir())
        else {
            log::warn!(
                "{}: not a segment directory; left alone",
                entry.path().display()
            );
            continue;
        };
        let listed = !name.ends_with(".tmp") && manifest.segments.iter().any(|s| s.id == id);
        if !listed {
            log::info!("removing unpublished segment {}", entry.path().display());
            let path = entry.path();
            std::fs::remove_dir_all(&path)
                .map_err(|source| quiver_storage::Error::Io { path, source })?;
        }
    }
    Ok(())
}
