//! Collection aliases: other names a collection is reached by (Qdrant's aliases), so that
//! clients can be switched from one collection to another at once.
//!
//! Stored in `DATA_DIR/aliases`: a framed file (magic `QVALIAS\n`, version 1, meta all 0)
//! whose body is the JSON object `{"aliases": {"<alias>": "<collection>", ...}}`, keys sorted,
//! unknown fields refused. Every change rewrites it whole with `fs::atomic_write` before the
//! change is visible, so a crash leaves the old or the new set. No file: no aliases.

use crate::error::{Error, Result};
use quiver_storage::frame::{self, FileKind};
use quiver_storage::fs as qfs;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Format version of the aliases file.
pub const ALIASES_KIND: FileKind = FileKind {
    magic: *b"QVALIAS\n",
    version: 1,
};

pub(crate) const ALIASES_FILE: &str = "aliases";

/// One change to the aliases ([`crate::Database::update_aliases`]), with Qdrant's meaning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AliasAction {
    /// Makes `alias` a name of `collection` (which must be a collection, not an alias); an
    /// existing alias of that name is re-pointed.
    Create { alias: String, collection: String },
    /// Removes `alias`; an alias that does not exist is no error (Qdrant: "delete alias if
    /// exists").
    Delete { alias: String },
    /// Renames alias `old` (which must exist) to `new`, replacing an alias named `new`.
    Rename { old: String, new: String },
}

/// Alias -> collection name.
pub(crate) type AliasMap = BTreeMap<String, String>;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AliasesBody {
    aliases: AliasMap,
}

/// Reads `root/aliases`; no file means no aliases. Damage is an error naming the file.
pub(crate) fn load(root: &Path) -> Result<AliasMap> {
    let path = root.join(ALIASES_FILE);
    if !path.exists() {
        return Ok(AliasMap::new());
    }
    let (_, body) = frame::read_file(&path, ALIASES_KIND)?;
    let body: AliasesBody = serde_json::from_slice(&body).map_err(|e| Error::Corrupt {
        path: path.clone(),
        message: format!("aliases (JSON) not understood: {e}"),
    })?;
    Ok(body.aliases)
}

/// Replaces `root/aliases` atomically and durably with `aliases`.
pub(crate) fn save(root: &Path, aliases: &AliasMap) -> Result<()> {
    let path = root.join(ALIASES_FILE);
    let body = serde_json::to_vec_pretty(&AliasesBody {
        aliases: aliases.clone(),
    })
    .map_err(|e| Error::Corrupt {
        path: path.clone(),
        message: format!("cannot encode the aliases: {e}"),
    })?;
    qfs::atomic_write(&path, &frame::encode(ALIASES_KIND, [0; 4], &body))?;
    Ok(())
}
