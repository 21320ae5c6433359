//! The manifest: a collection's root of truth, replaced atomically.
//!
//! A framed file (magic `QVMANIF\n`) whose body is JSON. It names the schema (opaque here, owned
//! by the engine), the published segments with their row counts and the generation of their
//! deleted bitmap, and the WAL watermark: every operation with a sequence number at or below
//! it is fully reflected in the segments and bitmaps listed, so recovery replays only above it.

use crate::error::{Error, Result};
use crate::frame::{self, FileKind};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Version log: 1 = the first format; 2 = unknown fields are refused (here and in the
/// engine's schema and settings), so that a build never drops a setting it does not know;
/// 3 = the collection uses a feature version 2 builds lack (sparse vectors); 4 = one version 3
/// builds lack (multi-vectors, or a BM25 sparse vector). Every version up to this one is read.
/// The engine writes the oldest version that holds what the collection uses (2, 3 with sparse
/// vectors, 4 with multi-vectors or a BM25 one), so an older build refuses exactly the
/// collections it
/// could not serve ("written by a newer version") and keeps opening the others.
pub const MANIFEST_KIND: FileKind = FileKind {
    magic: *b"QVMANIF\n",
    version: 4,
};

pub const FILE_NAME: &str = "manifest";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The collection schema as the engine serialises it.
    pub schema: serde_json::Value,
    /// Engine-level collection settings (seal threshold and such), also opaque here.
    pub config: serde_json::Value,
    pub segments: Vec<SegmentEntry>,
    /// Id the next new segment gets; ids are never reused.
    pub next_segment_id: u64,
    /// Highest WAL sequence number captured by the segments and bitmaps listed.
    pub wal_watermark: u64,
    /// Declared payload field indexes: key path -> kind name (`keyword`, `integer`, `float`,
    /// `bool`). Absent in manifests written before field indexes existed.
    #[serde(default)]
    pub payload_indexes: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentEntry {
    pub id: u64,
    pub rows: u64,
    /// Generation of `deleted-<gen>` in the segment's directory; 0 = no row deleted.
    pub deleted_gen: u64,
}

impl Manifest {
    /// Publishes the manifest into `dir` atomically and durably, as format `version` (2 or
    /// more, at most [`MANIFEST_KIND`]'s).
    pub fn write(&self, dir: &Path, version: u32) -> Result<()> {
        let path = dir.join(FILE_NAME);
        if !(2..=MANIFEST_KIND.version).contains(&version) {
            return Err(Error::Corrupt {
                path,
                offset: 8,
                message: format!(
                    "cannot write manifest version {version}; this build writes 2 to {}",
                    MANIFEST_KIND.version
                ),
            });
        }
        let body = serde_json::to_vec_pretty(self).map_err(|e| Error::Corrupt {
            path: path.clone(),
            offset: 0,
            message: format!("cannot encode manifest: {e}"),
        })?;
        let kind = FileKind {
            version,
            ..MANIFEST_KIND
        };
        crate::fs::atomic_write(&path, &frame::encode(kind, [0; 4], &body))
    }

    pub fn read(dir: &Path) -> Result<Manifest> {
        let path = dir.join(FILE_NAME);
        let (_, body) = frame::read_file(&path, MANIFEST_KIND)?;
        serde_json::from_slice(&body).map_err(|e| Error::Corrupt {
            path,
            offset: frame::HEADER_LEN as u64,
            message: format!("manifest body (JSON) is not valid: {e}"),
        })
    }
}
