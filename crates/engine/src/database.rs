//! A data directory holding collections.
//!
//! ```text
//! DATA_DIR/
//!   quiver.meta            framed file (magic QVMETA\x1a\n): the directory's format version
//!   LOCK                   held with an exclusive file lock while a process has it open
//!   aliases                framed file (magic QVALIAS\n): alias -> collection, JSON (aliases.rs);
//!                          absent until the first alias
//!   collections/<name>/    manifest, wal/, segments/ (see collection/ and docs/format.md)
//! ```
//! Creating a collection builds it under a temporary name and renames it into place; dropping
//! renames it away before deleting, so a crash leaves either the whole collection or none.
//! Aliases and collection names never overlap. Dropping a collection removes its aliases
//! after its directory is gone; aliases left naming no collection by a crash in between are
//! removed at the next open.

use crate::aliases::{self, AliasAction, AliasMap};
use crate::collection::{Collection, DirLock, Durability, Shared};
use crate::error::{Error, Result};
use crate::schema::{CollectionConfig, Schema};
use crate::text::TextModels;
use parking_lot::Mutex;
use quiver_embed_api::TextEmbedder;
use quiver_storage::frame::{self, FileKind};
use quiver_storage::{IoContext, fs as qfs};
use std::collections::BTreeMap;
use std::fs::OpenOptions;
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
#[derive(Clone, Default)]
pub struct DatabaseOptions {
    pub durability: Durability,
    /// Computes the vectors that collections declare as embedded from text
    /// ([`crate::VectorKind::Text`]), shared by all collections: the built-in model is
    /// `quiver_embed::LazyEmbedder` (loaded on first use). `None`: points must bring those
    /// vectors, and embedding a text is an error ([`Error::NoTextEmbedder`]); opening,
    /// recovering and searching by vector never need an embedder.
    pub text_embedder: Option<Arc<dyn TextEmbedder>>,
    /// Threads that build graphs and codes when segments are sealed or merged, shared by the
    /// collections; 0 means one per CPU.
    pub build_threads: usize,
}

impl std::fmt::Debug for DatabaseOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseOptions")
            .field("durability", &self.durability)
            .field(
                "text_embedder",
                &self.text_embedder.as_ref().map(|e| (e.model(), e.dim())),
            )
            .field("build_threads", &self.build_threads)
            .finish()
    }
}

/// An open data directory. Cheap to share (`Arc`); all methods take `&self`.
///
/// Locks, in this order: `collections` → `aliases` → `damaged`.
pub struct Database {
    root: PathBuf,
    collections: Mutex<BTreeMap<String, Arc<Collection>>>,
    /// As in the `aliases` file; changed only with `collections` held, so that a collection
    /// cannot be created or dropped in the middle of a change.
    aliases: Mutex<AliasMap>,
    /// Collections that failed to open, with the reason: listed, and droppable.
    damaged: Mutex<BTreeMap<String, String>>,
    shared: Shared,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("root", &self.root)
            .finish()
    }
}

/// Checks a collection or alias name.
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
        let models = Arc::new(TextModels::new(options.text_embedder.clone()));
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(options.build_threads)
            .thread_name(|i| format!("quiver-build-{i}"))
            .build()
            .map_err(|e| Error::Unavailable {
                collection: String::new(),
                reason: format!("cannot start the build threads: {e}"),
            })?;
        let db = Database {
            root,
            collections: Mutex::new(BTreeMap::new()),
            aliases: Mutex::new(AliasMap::new()),
            damaged: Mutex::new(BTreeMap::new()),
            shared: Shared {
                durability: options.durability,
                models,
                pool: Arc::new(pool),
                dir_lock: Arc::new(DirLock { _file: lock }),
            },
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
            // One damaged collection must not keep the others (or its own drop) out of reach.
            match Collection::open(&name, &path, &db.shared) {
                Ok(c) => {
                    found.insert(name, c);
                }
                Err(e) => {
                    log::error!("collection `{name}` cannot be opened: {e}");
                    db.damaged.lock().insert(name, e.to_string());
                }
            }
        }
        let mut aliases = aliases::load(&db.root)?;
        let damaged = db.damaged.lock().clone();
        let before = aliases.len();
        aliases.retain(|alias, target| {
            let known = found.contains_key(target) || damaged.contains_key(target);
            if !known {
                // A drop interrupted between removing the directory and the aliases.
                log::info!("removing alias `{alias}` of collection `{target}`, which is gone");
            }
            known
        });
        if aliases.len() != before {
            aliases::save(&db.root, &aliases)?;
        }
        *db.collections.lock() = found;
        *db.aliases.lock() = aliases;
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
        self.shared.models.check_schema(&schema)?;
        config.validate()?;
        let mut collections = self.lock();
        let dir = self.root.join(COLLECTIONS_DIR);
        if collections.contains_key(name) || dir.join(name).exists() {
            return Err(Error::CollectionExists {
                name: name.to_string(),
            });
        }
        if let Some(target) = self.aliases.lock().get(name) {
            return Err(Error::AliasExists {
                alias: name.to_string(),
                collection: target.clone(),
            });
        }
        let tmp = dir.join(format!(".creating-{name}"));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).at(&tmp)?;
        }
        Collection::create_files(&tmp, &schema, &config)?;
        let final_dir = dir.join(name);
        std::fs::rename(&tmp, &final_dir).at(&final_dir)?;
        qfs::sync_dir(&dir)?;
        let c = Collection::open(name, &final_dir, &self.shared)?;
        collections.insert(name.to_string(), Arc::clone(&c));
        Ok(c)
    }

    /// The collection named `name`, or the one alias `name` names.
    pub fn collection(&self, name: &str) -> Result<Arc<Collection>> {
        let target = {
            let collections = self.lock();
            if let Some(c) = collections.get(name) {
                return Ok(Arc::clone(c));
            }
            let target = self.aliases.lock().get(name).cloned();
            if let Some(c) = target.as_ref().and_then(|t| collections.get(t)) {
                return Ok(Arc::clone(c));
            }
            target.unwrap_or_else(|| name.to_string())
        };
        Err(self.unavailable(&target))
    }

    /// Why there is no open collection `name`: damaged, or not found.
    fn unavailable(&self, name: &str) -> Error {
        match self.damaged.lock().get(name) {
            Some(reason) => Error::CollectionDamaged {
                name: name.to_string(),
                reason: reason.clone(),
            },
            None => Error::CollectionNotFound {
                name: name.to_string(),
            },
        }
    }

    pub fn list_collections(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Collections that could not be opened, with the reason. They can be dropped.
    pub fn damaged_collections(&self) -> BTreeMap<String, String> {
        self.damaged.lock().clone()
    }

    /// Drops a collection (a damaged one too; not by an alias) and deletes its files and its
    /// aliases. Handles still held elsewhere start failing.
    pub fn drop_collection(&self, name: &str) -> Result<()> {
        let (removed, had_aliases) = {
            let mut collections = self.lock();
            let mut aliases = self.aliases.lock();
            let before = aliases.len();
            aliases.retain(|_, target| target != name);
            (collections.remove(name), aliases.len() != before)
        };
        match removed {
            // Waits for its maintenance to finish, without holding the collections lock.
            Some(c) => c.mark_dropped(),
            None => {
                if self.damaged.lock().remove(name).is_none() {
                    return Err(Error::CollectionNotFound {
                        name: name.to_string(),
                    });
                }
            }
        }
        let dir = self.root.join(COLLECTIONS_DIR);
        let from = dir.join(name);
        let to = dir.join(format!(".dropping-{name}"));
        std::fs::rename(&from, &to).at(&from)?;
        qfs::sync_dir(&dir)?;
        if had_aliases {
            // The current set: changes made meanwhile are in it too.
            let aliases = self.aliases.lock();
            aliases::save(&self.root, &aliases)?;
        }
        std::fs::remove_dir_all(&to).at(&to)?;
        Ok(())
    }

    /// Applies alias changes in order, all or nothing: the first action that fails (an alias
    /// name that is not valid or is a collection's name, a missing target collection or
    /// alias to rename) leaves every alias as it was. The new set is durable before it
    /// returns and before anyone can resolve it.
    pub fn update_aliases(&self, actions: &[AliasAction]) -> Result<()> {
        let collections = self.lock();
        let damaged = self.damaged.lock().clone();
        let is_collection =
            |name: &str| collections.contains_key(name) || damaged.contains_key(name);
        let mut aliases = self.aliases.lock();
        let mut next = aliases.clone();
        for action in actions {
            match action {
                AliasAction::Create { alias, collection } => {
                    check_alias_name(alias, is_collection)?;
                    if !collections.contains_key(collection) {
                        return Err(self.unavailable(collection));
                    }
                    next.insert(alias.clone(), collection.clone());
                }
                AliasAction::Delete { alias } => {
                    next.remove(alias);
                }
                AliasAction::Rename { old, new } => {
                    check_alias_name(new, is_collection)?;
                    let target = next
                        .remove(old)
                        .ok_or_else(|| Error::AliasNotFound { alias: old.clone() })?;
                    next.insert(new.clone(), target);
                }
            }
        }
        if next != *aliases {
            aliases::save(&self.root, &next)?;
            *aliases = next;
        }
        Ok(())
    }

    /// Every alias with its collection, by alias.
    pub fn list_aliases(&self) -> Vec<(String, String)> {
        self.aliases
            .lock()
            .iter()
            .map(|(a, c)| (a.clone(), c.clone()))
            .collect()
    }
}

/// An alias name must be a valid name and not a collection's.
fn check_alias_name(alias: &str, is_collection: impl Fn(&str) -> bool) -> Result<()> {
    validate_name(alias)?;
    if is_collection(alias) {
        return Err(Error::CollectionExists {
            name: alias.to_string(),
        });
    }
    Ok(())
}

impl Drop for Database {
    fn drop(&mut self) {
        let collections = std::mem::take(&mut *self.collections.lock());
        for c in collections.into_values() {
            c.close_if_unshared();
        }
    }
}
