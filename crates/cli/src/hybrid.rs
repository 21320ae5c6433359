//! `quiver search --prefetch ...`: a hybrid query from the command line. Each `--prefetch`
//! is one sub-query; their lists are fused (`--fusion`), or re-scored by the main query
//! when one is given (`--vector`, `--vector-file` or `--text`). Nested prefetches need the
//! library (`Collection::query`) or the server (`points/query`).

use anyhow::{Context, Result, bail};
use quiver_engine::{Collection, Fusion, QueryStage, QueryVector, SparseVector};

/// How `--fusion` combines the prefetches' lists.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum FusionArg {
    /// Reciprocal rank fusion: 1 / (rank + k) summed over the lists (rank from 0).
    Rrf,
    /// Distribution-based score fusion: each list's scores mapped by mean ± 3σ, summed.
    Dbsf,
}

impl FusionArg {
    pub fn fusion(self, k: usize) -> Fusion {
        match self {
            FusionArg::Rrf => Fusion::Rrf { k, weights: None },
            FusionArg::Dbsf => Fusion::Dbsf,
        }
    }
}

/// One `--prefetch NAME=QUERY` (`NAME` empty for the unnamed vector): `QUERY` is a dense
/// vector (comma-separated numbers or a JSON array), a sparse one
/// (`{"indices": [...], "values": [...]}`), or `text:` followed by a text for the vector's
/// model. `n` is its position among the `--prefetch` arguments, for messages.
pub fn prefetch(c: &Collection, spec: &str, n: usize, limit: usize) -> Result<QueryStage> {
    let at = format!("--prefetch #{}", n + 1);
    let (name, query) = spec.split_once('=').with_context(|| {
        format!("{at}: expected NAME=QUERY (NAME empty for the unnamed vector), got `{spec}`")
    })?;
    let q = query.trim();
    let vector = if let Some(text) = q.strip_prefix("text:") {
        let v = c
            .embed_text(name, &[text])
            .with_context(|| format!("{at}: embedding the text"))?
            .pop()
            .context("the model returned no vector")?;
        QueryVector::Dense(v)
    } else if q.starts_with('{') {
        let shape = || {
            format!("{at}: a sparse query is {{\"indices\": [u32, ...], \"values\": [f32, ...]}}")
        };
        let v: serde_json::Value = serde_json::from_str(q).with_context(shape)?;
        let list = |key: &str| v.get(key).and_then(serde_json::Value::as_array);
        let (Some(indices), Some(values)) = (list("indices"), list("values")) else {
            bail!("{}", shape());
        };
        let indices = indices
            .iter()
            .map(|x| x.as_u64().and_then(|x| u32::try_from(x).ok()))
            .collect::<Option<Vec<u32>>>()
            .with_context(shape)?;
        let values = values
            .iter()
            .map(|x| x.as_f64().map(|x| x as f32))
            .collect::<Option<Vec<f32>>>()
            .with_context(shape)?;
        QueryVector::Sparse(SparseVector::new(indices, values))
    } else if q.is_empty() {
        bail!("{at}: no query after `{name}=`");
    } else {
        QueryVector::Dense(crate::search::parse_inline(q).with_context(|| at.clone())?)
    };
    Ok(QueryStage::nearest(name, vector, limit))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;
    use quiver_engine::{Database, DatabaseOptions, Distance, Rank, Schema, SparseKind};

    #[test]
    fn prefetch_specs_parse_into_stages_and_bad_ones_say_which() {
        let dir = tempfile::tempdir().unwrap();
        let db = Database::open(dir.path(), DatabaseOptions::default()).unwrap();
        let schema = Schema::dense(2, Distance::Dot).with_sparse("s", SparseKind::default());
        let c = db
            .create_collection("c", schema, Default::default())
            .unwrap();
        let p = prefetch(&c, "=0.5, 1", 0, 7).unwrap();
        assert_eq!(p.limit, 7);
        assert!(matches!(
            p.rank,
            Rank::Nearest { ref vector_name, vector: QueryVector::Dense(ref v) }
                if vector_name.is_empty() && v == &[0.5, 1.0]
        ));
        let p = prefetch(&c, r#"s={"indices": [3], "values": [2.0]}"#, 0, 7).unwrap();
        assert!(matches!(
            p.rank,
            Rank::Nearest {
                vector: QueryVector::Sparse(_),
                ..
            }
        ));
        let e = format!("{:#}", prefetch(&c, "s", 1, 7).unwrap_err());
        assert!(e.contains("--prefetch #2: expected NAME=QUERY"), "{e}");
        let e = format!(
            "{:#}",
            prefetch(&c, r#"s={"indices": [3]}"#, 2, 7).unwrap_err()
        );
        assert!(e.contains("--prefetch #3: a sparse query is"), "{e}");
        let e = format!("{:#}", prefetch(&c, "=1,x", 0, 7).unwrap_err());
        assert!(
            e.contains("--prefetch #1") && e.contains("element 1"),
            "{e}"
        );
    }
}
