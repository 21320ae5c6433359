//! Hybrid queries in `points/query`: `prefetch` (an object or a list, nested) and the fusion
//! queries `{"fusion": "rrf" | "dbsf"}` and `{"rrf": {"k", "weights"}}`, parsed into the
//! engine's query tree (`quiver_engine::QueryStage`). Errors name the JSON position
//! (`prefetch[1].prefetch.query`).

use crate::app::App;
use crate::convert::{self, Loose, VectorInput};
use crate::error::{ApiError, ApiResult};
use crate::routes::query::{Input, MAX_RESULTS, Params, check_input, point_query};
use quiver_engine::{Collection, DEFAULT_RRF_K, Fusion, QueryStage, QueryVector, Rank};
use serde::Deserialize;
use serde_json::{Map, Value};

/// Qdrant's `Prefetch`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PrefetchJson {
    prefetch: Option<Value>,
    query: Option<Loose>,
    using: Option<String>,
    filter: Option<Value>,
    params: Option<Params>,
    score_threshold: Option<f32>,
    limit: Option<usize>,
    lookup_from: Option<Value>,
}

/// A stage of a query tree as the request gives it, checked for form; the root's members
/// live in the request's plan.
#[derive(Debug)]
pub(super) struct Stage {
    pub prefetch: Vec<Stage>,
    pub input: Option<Input>,
    pub using: String,
    pub filter: Option<Value>,
    pub params: Params,
    pub score_threshold: Option<f32>,
    pub limit: usize,
    /// Where this stage is in the body, as a prefix (`prefetch[0].`; `""` for the root).
    pub at: String,
}

/// `prefetch`: absent, `null`, one object or a list of them. `at` names the member
/// (`prefetch`, `searches[2].prefetch`, `prefetch[0].prefetch`).
pub(super) fn parse_prefetch(v: Option<Value>, at: &str) -> ApiResult<Vec<Stage>> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| parse_one(v, &format!("{at}[{i}]")))
            .collect(),
        Some(v) => Ok(vec![parse_one(v, at)?]),
    }
}

fn parse_one(v: Value, at: &str) -> ApiResult<Stage> {
    let p: PrefetchJson = serde_path_to_error::deserialize(v).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let at = match path.as_str() {
            "." | "" => at.to_string(),
            _ => format!("{at}.{path}"),
        };
        ApiError::bad_request(format!("Format error in JSON body: {at}: {inner}"))
    })?;
    if p.lookup_from.as_ref().is_some_and(|v| !v.is_null()) {
        return Err(ApiError::bad_request(format!(
            "Wrong input: {at}.lookup_from: lookup_from is not supported by this server yet"
        )));
    }
    let input = match p.query.filter(|v| !v.is_null()) {
        Some(Loose::Numbers(v)) => Some(Input::Vector(VectorInput::Dense(v))),
        Some(Loose::Json(q)) => Some(super::query::query_input(&q, &format!("{at}.query"))?),
        None => None,
    };
    Ok(Stage {
        prefetch: parse_prefetch(p.prefetch, &format!("{at}.prefetch"))?,
        input,
        using: p.using.unwrap_or_default(),
        filter: p.filter.filter(|v| !v.is_null()),
        params: p.params.unwrap_or_default(),
        score_threshold: p.score_threshold,
        limit: p.limit.unwrap_or(10),
        at: format!("{at}."),
    })
}

/// `{"fusion": "rrf" | "dbsf"}` or `{"rrf": {"k": N, "weights": [...]}}` (`o` has one
/// member, which is one of the two).
pub(super) fn fusion(o: &Map<String, Value>, at: &str) -> ApiResult<Fusion> {
    let bad = |what: &str| ApiError::bad_request(format!("Wrong input: {at}.{what}"));
    if let Some(f) = o.get("fusion") {
        return match f.as_str() {
            Some("rrf") => Ok(Fusion::Rrf {
                k: DEFAULT_RRF_K,
                weights: None,
            }),
            Some("dbsf") => Ok(Fusion::Dbsf),
            _ => Err(bad(&format!(
                "fusion: expected \"rrf\" or \"dbsf\", got {f}"
            ))),
        };
    }
    let rrf = o
        .get("rrf")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("rrf: expected an object {\"k\": ..., \"weights\": [...]}"))?;
    let mut k = DEFAULT_RRF_K;
    let mut weights = None;
    for (name, v) in rrf {
        match (name.as_str(), v) {
            (_, Value::Null) => {}
            ("k", v) => {
                k = v
                    .as_u64()
                    .filter(|&k| k >= 1)
                    .and_then(|k| usize::try_from(k).ok())
                    .ok_or_else(|| bad(&format!("rrf.k: expected an integer ≥ 1, got {v}")))?;
            }
            ("weights", Value::Array(items)) => {
                let w = items
                    .iter()
                    .enumerate()
                    .map(|(i, x)| {
                        x.as_f64()
                            .map(|x| x as f32)
                            .filter(|x| x.is_finite())
                            .ok_or_else(|| {
                                bad(&format!(
                                    "rrf.weights[{i}]: expected a finite number, got {x}"
                                ))
                            })
                    })
                    .collect::<ApiResult<Vec<f32>>>()?;
                weights = Some(w);
            }
            ("weights", v) => {
                return Err(bad(&format!(
                    "rrf.weights: expected a list of numbers, got {v}"
                )));
            }
            (other, _) => {
                return Err(bad(&format!(
                    "rrf: unknown member `{other}` (expected `k` or `weights`)"
                )));
            }
        }
    }
    Ok(Fusion::Rrf { k, weights })
}

/// Checks a prefetch and those below it against the collection (see [`check_rank`]), its
/// limit, its search parameters and its filter.
pub(super) fn check(stage: &Stage, c: &Collection) -> ApiResult<()> {
    let at = &stage.at;
    if stage.input.is_none() && stage.prefetch.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Wrong input: {at}query: a prefetch needs a query (a vector, a point id, a document or a fusion)"
        )));
    }
    check_rank(c, stage.input.as_ref(), &stage.prefetch, &stage.using, at)?;
    if stage.limit > MAX_RESULTS {
        return Err(ApiError::bad_request(format!(
            "Wrong input: {at}limit = {} is over the maximum of {MAX_RESULTS}",
            stage.limit
        )));
    }
    if stage.params.hnsw_ef == Some(0) {
        return Err(ApiError::bad_request(format!(
            "Wrong input: {at}params.hnsw_ef must be at least 1"
        )));
    }
    convert::filter(stage.filter.as_ref(), &format!("{at}filter"))?;
    stage.prefetch.iter().try_for_each(|p| check(p, c))
}

/// Checks how a stage (`at` its prefix) ranks: prefetches need a query; fusion needs
/// prefetches (and one RRF weight per prefetch); a vector query needs vector `using` in the
/// query's form. Without a query nor prefetches (a root listing points), `using` must
/// still name a vector.
pub(super) fn check_rank(
    c: &Collection,
    input: Option<&Input>,
    prefetch: &[Stage],
    using: &str,
    at: &str,
) -> ApiResult<()> {
    let schema = c.schema();
    match input {
        None if !prefetch.is_empty() => Err(ApiError::bad_request(format!(
            "Wrong input: {at}query: a query with prefetch needs `query`: a fusion ({{\"fusion\": \"rrf\"}}) or a vector to re-score the prefetched points with"
        ))),
        None => {
            if schema.vectors.contains_key(using) || schema.sparse_vectors.contains_key(using) {
                Ok(())
            } else {
                Err(convert::unknown_vector(
                    &schema,
                    using,
                    &format!("{at}using"),
                ))
            }
        }
        Some(Input::Fusion(f)) => {
            if prefetch.is_empty() {
                return Err(ApiError::bad_request(format!(
                    "Wrong input: {at}query: fusion needs `prefetch`: the lists it fuses"
                )));
            }
            match f {
                Fusion::Rrf {
                    weights: Some(w), ..
                } if w.len() != prefetch.len() => Err(ApiError::bad_request(format!(
                    "Wrong input: {at}query.rrf.weights: {} weights for {} prefetches; give one per prefetch",
                    w.len(),
                    prefetch.len()
                ))),
                _ => Ok(()),
            }
        }
        Some(input) => check_input(&schema, using, input, at),
    }
}

/// The engine's stage for a checked one: documents embedded, point ids replaced by their
/// stored vectors (the point itself left out, as in a single query).
pub(super) fn build(app: &App, c: &Collection, stage: Stage) -> ApiResult<QueryStage> {
    let prefetch = stage
        .prefetch
        .into_iter()
        .map(|p| build(app, c, p))
        .collect::<ApiResult<Vec<_>>>()?;
    let mut filter = stage.filter;
    let rank = match stage.input {
        Some(Input::Fusion(f)) => Rank::Fusion(f),
        Some(Input::Vector(VectorInput::Dense(v))) => nearest(&stage.using, QueryVector::Dense(v)),
        Some(Input::Vector(VectorInput::Sparse(v))) => {
            nearest(&stage.using, QueryVector::Sparse(v))
        }
        Some(Input::Vector(VectorInput::Bm25(doc))) => {
            let at = format!("{}query", stage.at);
            let q = crate::bm25::query(&c.schema(), &stage.using, &doc.text, &at)?;
            nearest(&stage.using, QueryVector::Sparse(q))
        }
        Some(Input::Vector(doc @ VectorInput::Document { .. })) => {
            let v = app
                .embed(vec![doc])?
                .pop()
                .ok_or_else(|| ApiError::internal("Service internal error: embedding lost"))?;
            nearest(&stage.using, QueryVector::Dense(v))
        }
        Some(Input::Point(id)) => {
            let (v, f) = point_query(c, id, &stage.using, filter)?;
            filter = f;
            nearest(&stage.using, v)
        }
        None => {
            return Err(ApiError::bad_request(format!(
                "Wrong input: {}query: missing",
                stage.at
            )));
        }
    };
    Ok(QueryStage {
        prefetch,
        rank,
        filter: convert::filter(filter.as_ref(), &format!("{}filter", stage.at))?,
        score_threshold: stage.score_threshold,
        limit: stage.limit,
        ef: stage.params.hnsw_ef,
        exact: stage.params.exact.unwrap_or(false),
    })
}

fn nearest(using: &str, vector: QueryVector) -> Rank {
    Rank::Nearest {
        vector_name: using.to_string(),
        vector,
    }
}
