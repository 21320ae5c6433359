//! Derived data of a sealed segment: graphs, LVQ codes and payload field indexes.

use super::leanvec::{build_leanvec, load_leanvec};
use super::*;
use crate::segment::ReducedCodes;
use quiver_index::sparse::format::{self as sparse_format, PostingsView};
use quiver_index::sparse::postings::Postings;
use quiver_storage::frame::MappedFile;

impl Collection {
    /// Builds the graph indexes a new segment needs (per schema vector with an HNSW index, if
    /// the segment has at least [`MIN_GRAPH_ROWS`] rows) and writes them into its directory,
    /// which no manifest names yet. Runs in the build pool: its tasks take no collection lock
    /// (see the lock rules).
    pub(super) fn build_graphs(
        &self,
        files: &segfiles::SegmentFiles,
    ) -> Result<Vec<Option<GraphIndex>>> {
        let schema = self.schema();
        self.pool.install(|| {
            schema
                .vectors
                .values()
                .enumerate()
                .map(|(i, kind)| build_graph(&self.name, &self.dir, files, i, kind))
                .collect()
        })
    }

    /// Builds the declared payload field indexes of a new segment and writes them into its
    /// directory (which no manifest names yet) as `fields`.
    pub(super) fn write_fields(
        &self,
        files: &segfiles::SegmentFiles,
    ) -> Result<quiver_filter::FieldIndexes> {
        let declared = self.payload_indexes.read().clone();
        if declared.is_empty() {
            return Ok(Default::default());
        }
        let fields = planner::build_fields(&declared, files);
        segfiles::write_index_file(
            &files.dir,
            segfiles::FIELDS_FILE,
            segfiles::FIELDS_KIND,
            [files.rows as u64, 0, 0, 0],
            &fields.encode(),
        )?;
        Ok(fields)
    }
}

/// Seed of graph level draws: fixed, so a rebuild over the same rows draws the same levels.
pub(super) const GRAPH_SEED: u64 = 0x5155_4956_4552;

/// Builds the graph (and its LVQ codes) of vector `i` of a segment if its schema and size
/// call for one, and writes the codes (`lvq8-<i>` or `lvq4-<i>`, and for LeanVec `leanvec-<i>`
/// and maybe `rescore-<i>`) and `hnsw-<i>` into the segment's directory, each
/// replaced atomically (they are derived data: a rebuild may replace a damaged file of a
/// published segment). LeanVec-OOD reads the query sample from the collection directory
/// `dir`. To be run in the build pool.
pub(super) fn build_graph(
    collection: &str,
    dir: &Path,
    files: &segfiles::SegmentFiles,
    i: usize,
    kind: &VectorKind,
) -> Result<Option<GraphIndex>> {
    let IndexKind::Hnsw {
        m,
        ef_construction,
        quantization,
    } = kind.index()
    else {
        return Ok(None);
    };
    if files.rows < MIN_GRAPH_ROWS {
        return Ok(None);
    }
    let params = hnsw::BuildParams {
        m,
        ef_construction,
        seed: GRAPH_SEED,
        threads: rayon::current_num_threads(),
    };
    let n = files.rows;
    let index_error = |error| Error::Index {
        collection: collection.to_string(),
        error,
    };
    let started = std::time::Instant::now();
    let rows = files.vectors.get(i).map_or(&[][..], |v| v.as_f32());
    // `hnsw::build` reports every max(n / 100, 1000) insertions: log every fifth.
    let report = |done: usize| {
        if (done / (n / 100).max(1000)).is_multiple_of(5) {
            log::info!(target: "quiver::progress", "`{collection}`: building graph: {done}/{n} points, {:.0}s", started.elapsed().as_secs_f64());
        }
    };
    let write = |name: String, kind: quiver_storage::frame::FileKind, meta, body: &[u8]| {
        qfs::atomic_write(
            &files.dir.join(name),
            &quiver_storage::frame::encode(kind, meta, body),
        )
    };
    // Codes first: the build's insertions search on them too (a quarter of the bytes of the
    // f32 rows or less; see BENCHMARKS.md).
    let (dim, metric) = (kind.dim(), kind.distance().metric());
    let (graph, codes) = match quantization {
        Quantization::Lvq8 => {
            let codes = Lvq8::encode(rows, dim).map_err(index_error)?;
            write(
                segfiles::lvq8_file(i),
                segfiles::LVQ8_KIND,
                [n as u64, dim as u64, 0, 0],
                &codes.to_bytes(),
            )?;
            let graph =
                hnsw::build_with_codes(rows, dim, metric, params, None, Some(&codes), &report);
            (graph, Some(Codes::Lvq8(codes)))
        }
        Quantization::Lvq4 | Quantization::Lvq4x8 => {
            let residual = quantization == Quantization::Lvq4x8;
            let codes = Lvq4::encode(rows, dim, residual).map_err(index_error)?;
            write(
                segfiles::lvq4_file(i),
                segfiles::LVQ4_KIND,
                [n as u64, dim as u64, u64::from(residual), 0],
                &codes.to_bytes(),
            )?;
            // On the primary codes, which a search traverses too: the graph was as good as
            // one built on the f32 rows (the hnsw tests).
            let graph =
                hnsw::build_with_codes(rows, dim, metric, params, None, Some(&codes), &report);
            (graph, Some(Codes::Lvq4(codes)))
        }
        Quantization::LeanVec(lean) => {
            // On the projected rows and their codes: the graph lives in the reduced space,
            // where the search traverses it.
            let (codes, reduced) = build_leanvec(collection, dir, files, i, kind, lean)?;
            let graph = match &codes.primary {
                ReducedCodes::Lvq8(c) => hnsw::build_with_codes(
                    &reduced,
                    lean.dims,
                    metric,
                    params,
                    None,
                    Some(c),
                    &report,
                ),
                ReducedCodes::Lvq4(c) => hnsw::build_with_codes(
                    &reduced,
                    lean.dims,
                    metric,
                    params,
                    None,
                    Some(c),
                    &report,
                ),
            };
            (graph, Some(Codes::LeanVec(Box::new(codes))))
        }
        Quantization::None => (hnsw::build(rows, dim, metric, params, None, &report), None),
    };
    let graph = graph.map_err(index_error)?;
    log::info!(target: "quiver::progress", "`{collection}`: graph over {n} points built in {:.1}s", started.elapsed().as_secs_f64());
    write(
        segfiles::hnsw_file(i),
        segfiles::HNSW_KIND,
        [n as u64, 0, 0, 0],
        &hnsw::encode(&graph),
    )?;
    Ok(Some(GraphIndex { graph, codes }))
}

/// Loads the graph indexes of a published segment (those its schema and size call for). A
/// graph or codes file that is missing or does not verify is derived data: it is rebuilt from
/// the segment's vectors (in `pool`) with a warning, instead of failing the open.
pub(super) fn load_graphs(
    collection: &str,
    dir: &Path,
    schema: &Schema,
    files: &segfiles::SegmentFiles,
    pool: &rayon::ThreadPool,
) -> Result<Vec<Option<GraphIndex>>> {
    let mut graphs = Vec::with_capacity(schema.vectors.len());
    for (i, kind) in schema.vectors.values().enumerate() {
        let IndexKind::Hnsw { quantization, .. } = kind.index() else {
            graphs.push(None);
            continue;
        };
        if files.rows < MIN_GRAPH_ROWS {
            graphs.push(None);
            continue;
        }
        match load_graph(files, i, kind.dim(), quantization) {
            Ok(graph) => graphs.push(Some(graph)),
            Err(e) => {
                log::warn!(
                    "collection `{collection}`: {e}; rebuilding the graph of vector {i} from the segment's vectors"
                );
                graphs.push(pool.install(|| build_graph(collection, dir, files, i, kind))?);
            }
        }
    }
    Ok(graphs)
}

fn load_graph(
    files: &segfiles::SegmentFiles,
    i: usize,
    dim: usize,
    quantization: Quantization,
) -> Result<GraphIndex> {
    let name = segfiles::hnsw_file(i);
    let (_, body) = segfiles::read_index_file(&files.dir, &name, segfiles::HNSW_KIND)?;
    let path = files.dir.join(&name);
    let graph = hnsw::decode(&body).map_err(|e| Error::Corrupt {
        path: path.clone(),
        message: e.to_string(),
    })?;
    if graph.len() != files.rows {
        return Err(Error::Corrupt {
            path,
            message: format!(
                "graph has {} nodes, the segment {} rows",
                graph.len(),
                files.rows
            ),
        });
    }
    let codes = match quantization {
        Quantization::Lvq8 => Some(Codes::Lvq8(load_lvq8(files, i, dim)?)),
        Quantization::Lvq4 => Some(Codes::Lvq4(load_lvq4(files, i, dim, false)?)),
        Quantization::Lvq4x8 => Some(Codes::Lvq4(load_lvq4(files, i, dim, true)?)),
        Quantization::LeanVec(lean) => {
            Some(Codes::LeanVec(Box::new(load_leanvec(files, i, dim, lean)?)))
        }
        Quantization::None => None,
    };
    Ok(GraphIndex { graph, codes })
}

/// Loads the LVQ-8 codes of vector `i` and checks they fit the segment.
pub(super) fn load_lvq8(files: &segfiles::SegmentFiles, i: usize, dim: usize) -> Result<Lvq8> {
    load_lvq8_named(files, segfiles::lvq8_file(i), dim)
}

/// Loads LVQ-8 codes from file `name` of the segment and checks they fit it (`dim` wide).
pub(super) fn load_lvq8_named(
    files: &segfiles::SegmentFiles,
    name: String,
    dim: usize,
) -> Result<Lvq8> {
    let (_, body) = segfiles::read_index_file(&files.dir, &name, segfiles::LVQ8_KIND)?;
    let path = files.dir.join(&name);
    let codes = Lvq8::from_bytes(&body).map_err(|message| Error::Corrupt {
        path: path.clone(),
        message,
    })?;
    if codes.len() != files.rows || codes.dim() != dim {
        return Err(Error::Corrupt {
            path,
            message: format!(
                "codes for {} rows of dimension {}, the segment has {} rows of dimension {dim}",
                codes.len(),
                codes.dim(),
                files.rows
            ),
        });
    }
    Ok(codes)
}

/// Loads the LVQ-4 codes of vector `i` and checks they fit the segment and the schema
/// (residual codes present exactly when it asks for LVQ-4x8).
pub(super) fn load_lvq4(
    files: &segfiles::SegmentFiles,
    i: usize,
    dim: usize,
    residual: bool,
) -> Result<Lvq4> {
    let name = segfiles::lvq4_file(i);
    let (_, body) = segfiles::read_index_file(&files.dir, &name, segfiles::LVQ4_KIND)?;
    let path = files.dir.join(&name);
    let codes = Lvq4::from_bytes(&body).map_err(|message| Error::Corrupt {
        path: path.clone(),
        message,
    })?;
    if codes.len() != files.rows || codes.dim() != dim || codes.has_residual() != residual {
        let kind = |r: bool| if r { "LVQ-4x8" } else { "LVQ-4" };
        return Err(Error::Corrupt {
            path,
            message: format!(
                "{} codes for {} rows of dimension {}, the segment has {} rows of dimension {dim} and its schema asks for {}",
                kind(codes.has_residual()),
                codes.len(),
                codes.dim(),
                files.rows,
                kind(residual),
            ),
        });
    }
    Ok(codes)
}

/// Builds the inverted index of sparse vector `j` of a segment from its rows, writes
/// `postings-<j>` into the segment's directory (replaced atomically: derived data, rebuilt
/// over a damaged file of a published segment too) and maps it.
pub(super) fn build_postings(files: &segfiles::SegmentFiles, j: usize) -> Result<MappedFile> {
    let path = files.dir.join(segfiles::postings_file(j));
    let corrupt = |message: String| Error::Corrupt {
        path: path.clone(),
        message,
    };
    let rows = files
        .sparse
        .get(j)
        .ok_or_else(|| corrupt(format!("the segment has no sparse vector {j}")))?;
    let mut postings = Postings::new();
    for r in 0..rows.rows() {
        // Rows are addressed by u32 offsets (checked when the segment was opened).
        let (indices, values) = rows.row(r).unwrap_or_default();
        postings.push(r as u32, &indices, &values);
    }
    let body = sparse_format::encode(&postings).map_err(corrupt)?;
    qfs::atomic_write(
        &path,
        &quiver_storage::frame::encode(
            segfiles::POSTINGS_KIND,
            [files.rows as u64, 0, 0, 0],
            &body,
        ),
    )?;
    map_postings(files, j)
}

/// Maps `postings-<j>` and verifies it covers the segment's rows (see
/// `quiver_index::sparse::format`): what the sparse search trusts.
fn map_postings(files: &segfiles::SegmentFiles, j: usize) -> Result<MappedFile> {
    let path = files.dir.join(segfiles::postings_file(j));
    let file = quiver_storage::frame::map_file(&path, segfiles::POSTINGS_KIND)?;
    let corrupt = |message: String| Error::Corrupt {
        path: path.clone(),
        message,
    };
    if file.header.meta[0] != files.rows as u64 {
        return Err(corrupt(format!(
            "covers {} rows, the segment has {}",
            file.header.meta[0], files.rows
        )));
    }
    PostingsView::new(file.body())
        .and_then(|v| v.verify(files.rows as u64))
        .map_err(corrupt)?;
    Ok(file)
}

/// Maps the inverted indexes of a published segment's sparse vectors. One missing or failing
/// verification is derived data: rebuilt from `sparse-<j>` with a warning.
pub(super) fn load_postings(
    collection: &str,
    files: &segfiles::SegmentFiles,
) -> Result<Vec<MappedFile>> {
    (0..files.sparse.len())
        .map(|j| {
            map_postings(files, j).or_else(|e| {
                log::warn!(
                    "collection `{collection}`: {e}; rebuilding the inverted index of sparse vector {j} from the segment's rows"
                );
                build_postings(files, j)
            })
        })
        .collect()
}
