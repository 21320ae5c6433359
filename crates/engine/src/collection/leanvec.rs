//! LeanVec storage of a segment's vector (`quiver_index::leanvec`): learning the projection
//! at seal, encoding both sides of it, and loading them back.

use super::derived::{load_lvq4, load_lvq8, load_lvq8_named};
use super::query_sample::read_query_sample;
use super::*;
use crate::schema::{LeanVec, LeanVecFit, LeanVecPrimary, LeanVecSecondary};
use crate::segment::{LeanVecCodes, ReducedCodes};
use quiver_index::leanvec::Projection;

/// Learns the projection of vector `i` of a segment (LeanVec-OOD from the query sample of the
/// collection in `dir`, or as ID without one), encodes the projected rows and, if asked, the
/// full rows for the re-score, and writes `leanvec-<i>`, the primary codes (`lvq8-<i>` or
/// `lvq4-<i>`, `dims` wide) and `rescore-<i>` into the segment's directory. The graph itself
/// is the caller's, on the projected rows returned beside the codes.
pub(super) fn build_leanvec(
    collection: &str,
    dir: &Path,
    files: &segfiles::SegmentFiles,
    i: usize,
    kind: &VectorKind,
    lean: LeanVec,
) -> Result<(LeanVecCodes, Vec<f32>)> {
    let index_error = |error| Error::Index {
        collection: collection.to_string(),
        error,
    };
    let write = |name: String, file: quiver_storage::frame::FileKind, meta, body: &[u8]| {
        qfs::atomic_write(
            &files.dir.join(name),
            &quiver_storage::frame::encode(file, meta, body),
        )
    };
    let rows = files.vectors.get(i).map_or(&[][..], |v| v.as_f32());
    let (dim, metric, n) = (kind.dim(), kind.distance().metric(), files.rows);
    let started = std::time::Instant::now();
    let projection = match lean.fit {
        LeanVecFit::Id => Projection::learn_id(rows, dim, lean.dims, metric),
        LeanVecFit::Ood => match read_query_sample(dir, i, dim)? {
            Some(queries) => Projection::learn_ood(rows, &queries, dim, lean.dims, metric),
            None => {
                log::warn!(
                    "collection `{collection}`: vector {i} is LeanVec-OOD but has no query sample (set one with --leanvec-queries or Collection::set_query_sample); learning its projection from the base alone"
                );
                Projection::learn_id(rows, dim, lean.dims, metric)
            }
        },
    };
    log::info!(target: "quiver::progress", "`{collection}`: LeanVec projection {dim} → {} learned ({:?}) in {:.1}s", lean.dims, projection.fit(), started.elapsed().as_secs_f64());
    write(
        segfiles::leanvec_file(i),
        segfiles::LEANVEC_KIND,
        [dim as u64, lean.dims as u64, 0, 0],
        &projection.to_bytes(),
    )?;
    let reduced = projection.project_rows(rows);
    let primary = match lean.primary {
        LeanVecPrimary::Lvq8 => {
            let codes = Lvq8::encode(&reduced, lean.dims).map_err(index_error)?;
            write(
                segfiles::lvq8_file(i),
                segfiles::LVQ8_KIND,
                [n as u64, lean.dims as u64, 0, 0],
                &codes.to_bytes(),
            )?;
            ReducedCodes::Lvq8(codes)
        }
        LeanVecPrimary::Lvq4 => {
            let codes = Lvq4::encode(&reduced, lean.dims, false).map_err(index_error)?;
            write(
                segfiles::lvq4_file(i),
                segfiles::LVQ4_KIND,
                [n as u64, lean.dims as u64, 0, 0],
                &codes.to_bytes(),
            )?;
            ReducedCodes::Lvq4(codes)
        }
    };
    let secondary = match lean.secondary {
        LeanVecSecondary::Lvq8 => {
            let codes = Lvq8::encode(rows, dim).map_err(index_error)?;
            write(
                segfiles::rescore_file(i),
                segfiles::LVQ8_KIND,
                [n as u64, dim as u64, 0, 0],
                &codes.to_bytes(),
            )?;
            Some(codes)
        }
        LeanVecSecondary::F32 => None,
    };
    let codes = LeanVecCodes {
        projection,
        primary,
        secondary,
    };
    Ok((codes, reduced))
}

/// Loads what [`build_leanvec`] wrote for vector `i` and checks it against the segment and
/// the schema's `lean` (dimensions, kinds of codes).
pub(super) fn load_leanvec(
    files: &segfiles::SegmentFiles,
    i: usize,
    dim: usize,
    lean: LeanVec,
) -> Result<LeanVecCodes> {
    let name = segfiles::leanvec_file(i);
    let (_, body) = segfiles::read_index_file(&files.dir, &name, segfiles::LEANVEC_KIND)?;
    let path = files.dir.join(&name);
    let projection = Projection::from_bytes(&body).map_err(|message| Error::Corrupt {
        path: path.clone(),
        message,
    })?;
    if projection.dim() != dim || projection.dims() != lean.dims {
        return Err(Error::Corrupt {
            path,
            message: format!(
                "projects {} → {}, the schema asks for {dim} → {}",
                projection.dim(),
                projection.dims(),
                lean.dims
            ),
        });
    }
    let primary = match lean.primary {
        LeanVecPrimary::Lvq8 => ReducedCodes::Lvq8(load_lvq8(files, i, lean.dims)?),
        LeanVecPrimary::Lvq4 => ReducedCodes::Lvq4(load_lvq4(files, i, lean.dims, false)?),
    };
    let secondary = match lean.secondary {
        LeanVecSecondary::Lvq8 => Some(load_lvq8_named(files, segfiles::rescore_file(i), dim)?),
        LeanVecSecondary::F32 => None,
    };
    Ok(LeanVecCodes {
        projection,
        primary,
        secondary,
    })
}
