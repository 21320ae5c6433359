//! A data directory holding collections.
//!
//! ```text
//! DATA_DIR/
//!   quiver.meta            framed file (magic QVMETA\x1a\n): the directory's format version
//!   LOCK                   held with an exclusive file lock while a process has it open
//!   collections/<name>/    manifest, wal/, segments/ (see collection.rs and docs/format.md)
//! ```
//! Creating a collection builds it under a temporary name and renames it into place; dropping
//! renames it away before deleting, so a crash leaves either the whole collection or none.

use crate::collection::{Collection, Durability};
use crate::error::{Error, Result};
use crate::schema::{CollectionConfig, Schema};
use crate::text::TextModels;
use parking_lot::Mutex;
use quiver_storage::frame::{self, FileKind};
use quiver_storage::{IoContext, fs as qfs};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Format version of the data directory layout.
pub const DATA_DIR_KIND: FileKind = FileKind {
    magic: *b"QVMETA\x1a\n",
    version: 1,
};

const META_FILE: &str = "quiver.meta";
const COLLECTIONS_DIR: &str = "collections";

/// Options for opening a data directory.
#[derive(Debug, Clone, Default)]
pub struct DatabaseOptions {
    pub durability: Durability,
    /// Directory of the text model, for collections with text-embedded vectors; `None`: found
    /// as `quiver_embed::locate_model` does (`QUIVER_MODEL_DIR`, `~/.cache/quiver/models`,
    /// site-packages, the Hugging Face cache). Read on first use only.
    pub model_dir: Option<PathBuf>,
    /// Threads that embed text; 0 means one per CPU.
    pub embed_threads: usize,
}

/// An open data directory. Cheap to share (`Arc`); all methods take `&self`.
pub struct Database {
    root: PathBuf,
    options: DatabaseOptions,
    collections: Mutex<BTreeMap<String, Arc<Collection>>>,
    models: Arc<TextModels>,
    _lock: File,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("root", &self.root)
            .finish()
    }
}

fn validate_name(name: &str) -> Result<()> {
    let bad = |reason: &str| {
        Err(Error::InvalidName {
            name: name.to_string(),
            reason: reason.to_string(),
        })
    };
    if name.is_empty() || name.len() > 128 {
        return bad("must be 1 to 128 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return bad("may only contain ASCII letters, digits, `_` and `-`");
    }
    if name.starts_with('-') {
        return bad("must not start with `-`");
    }
    Ok(())
}

impl Database {
    /// Opens (creating if needed) a data directory and recovers every collection in it.
    pub fn open(root: impl AsRef<Path>, options: DatabaseOptions) -> Result<Database> {
        let root = root.as_ref().to_path_buf();
        let existed = root.exists();
        qfs::create_dir_durable(&root.join(COLLECTIONS_DIR))?;
        if !existed && let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
            qfs::sync_dir(parent)?;
        }
        let lock_path = root.join("LOCK");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .at(&lock_path)?;
        lock.try_lock().map_err(|e| quiver_storage::Error::Locked {
            path: root.clone(),
            source: match e {
                std::fs::TryLockError::Error(e) => e,
                std::fs::TryLockError::WouldBlock => {
                    std::io::Error::new(std::io::ErrorKind::WouldBlock, "held by another process")
                }
            },
        })?;
        let meta = root.join(META_FILE);
        if meta.exists() {
            frame::read_file(&meta, DATA_DIR_KIND)?;
        } else {
            qfs::atomic_write(&meta, &frame::encode(DATA_DIR_KIND, [0; 4], b"{}"))?;
        }
        let models = Arc::new(TextModels::new(
            options.model_dir.clone(),
            options.embed_threads,
        ));
        let db = Database {
            root,
            options,
            models,
            collections: Mutex::new(BTreeMap::new()),
            _lock: lock,
        };
        let dir = db.root.join(COLLECTIONS_DIR);
        let mut found = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).at(&dir)? {
            let path = entry.at(&dir)?.path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.starts_with('.') {
                // A create or drop interrupted by a crash.
                log::info!("removing leftover {}", path.display());
                std::fs::remove_dir_all(&path).at(&path)?;
                continue;
            }
            if validate_name(&name).is_err() || !path.is_dir() {
                continue;
            }
            let c = Collection::open(&name, &path, db.options.durability, &db.models)?;
            found.insert(name, c);
        }
        *db.collections.lock() = found;
        Ok(db)
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, BTreeMap<String, Arc<Collection>>> {
        self.collections.lock()
    }

    /// Creates a collection; fails if one with that name exists.
    pub fn create_collection(
        &self,
        name: &str,
        schema: Schema,
        config: CollectionConfig,
    ) -> Result<Arc<Collection>> {
        validate_name(name)?;
        schema.validate()?;
        for (name, value) in [
            ("compact_deleted_fraction", config.compact_deleted_fraction),
            ("filter_scan_fraction", config.filter_scan_fraction),
        ] {
            if !(value.is_finite() && (0.0..=1.0).contains(&value)) {
                return Err(Error::InvalidSchema {
                    reason: format!("{name} must be between 0 and 1, not {value}"),
                });
            }
        }
        let mut collections = self.lock();
        if collections.contains_key(name) {
            return Err(Error::CollectionExists {
                name: name.to_string(),
            });
        }
        let dir = self.root.join(COLLECTIONS_DIR);
        let tmp = dir.join(format!(".creating-{name}"));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).at(&tmp)?;
        }
        Collection::create_files(&tmp, &schema, &config)?;
        let final_dir = dir.join(name);
        std::fs::rename(&tmp, &final_dir).at(&final_dir)?;
        qfs::sync_dir(&dir)?;
        let c = Collection::open(name, &final_dir, self.options.durability, &self.models)?;
        collections.insert(name.to_string(), Arc::clone(&c));
        Ok(c)
    }

    pub fn collection(&self, name: &str) -> Result<Arc<Collection>> {
        self.lock()
            .get(name)
            .cloned()
            .ok_or_else(|| Error::CollectionNotFound {
                name: name.to_string(),
            })
    }

    pub fn list_collections(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Drops a collection and deletes its files. Handles still held elsewhere start failing.
    pub fn drop_collection(&self, name: &str) -> Result<()> {
        let mut collections = self.lock();
        let c = collections
            .remove(name)
            .ok_or_else(|| Error::CollectionNotFound {
                name: name.to_string(),
            })?;
        c.mark_dropped();
        let dir = self.root.join(COLLECTIONS_DIR);
        let from = dir.join(name);
        let to = dir.join(format!(".dropping-{name}"));
        std::fs::rename(&from, &to).at(&from)?;
        qfs::sync_dir(&dir)?;
        std::fs::remove_dir_all(&to).at(&to)?;
        Ok(())
    }
}
