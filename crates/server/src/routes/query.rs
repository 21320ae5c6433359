//! Nearest-neighbour queries: the universal `points/query` (and its batch) that current
//! clients call, and the older `points/search` (and its batch).

use crate::app::{App, AppState};
use crate::convert::{self, Loose, PayloadSelector, ScoredJson, VectorInput, VectorSelector};
use crate::error::{ApiError, ApiResult};
use crate::json::{Body, Reply, Started};
use crate::routes::hybrid::{self, Stage};
use crate::routes::points::ReadParams;
use axum::extract::{Path, Query, State};
use quiver_engine::{Collection, Fusion, HybridQuery, PointId, QueryVector, SearchRequest, With};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

/// The largest `limit + offset` a query may ask for.
pub(super) const MAX_RESULTS: usize = 100_000;

/// Queries asking for at most this many results (limit + offset) may run on the async
/// worker (see `answer`).
const SHORT_QUERY_RESULTS: usize = 1_000;

/// `SearchParams`.
#[derive(Debug, Default, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub(super) hnsw_ef: Option<usize>,
    pub(super) exact: Option<bool>,
    quantization: Option<Value>,
    indexed_only: Option<bool>,
    acorn: Option<Value>,
    idf: Option<Value>,
}

/// `QueryRequest`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryRequest {
    shard_key: Option<Value>,
    /// `Prefetch`es: one object or a list, nested (see `hybrid.rs`).
    #[schema(value_type = Option<Object>)]
    prefetch: Option<Value>,
    #[schema(value_type = Option<Object>)]
    query: Option<Loose>,
    using: Option<String>,
    filter: Option<Value>,
    params: Option<Params>,
    score_threshold: Option<f32>,
    limit: Option<usize>,
    offset: Option<usize>,
    with_vector: Option<Value>,
    with_payload: Option<Value>,
    lookup_from: Option<Value>,
}

/// `SearchRequest` (the pre-query API).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OldSearch {
    shard_key: Option<Value>,
    #[schema(value_type = Object)]
    vector: Loose,
    filter: Option<Value>,
    params: Option<Params>,
    limit: usize,
    offset: Option<usize>,
    with_payload: Option<Value>,
    with_vector: Option<Value>,
    score_threshold: Option<f32>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueryBatch {
    searches: Vec<QueryRequest>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchBatch {
    searches: Vec<OldSearch>,
}

/// `QueryResponse`.
#[derive(serde::Serialize)]
struct Points {
    points: Vec<ScoredJson>,
}

/// What a query asks for, checked and ready to run.
struct Plan {
    /// The sub-queries whose results `input` ranks (a hybrid query); empty for a plain one.
    prefetch: Vec<Stage>,
    input: Option<Input>,
    using: String,
    filter: Option<Value>,
    params: Params,
    score_threshold: Option<f32>,
    limit: usize,
    offset: usize,
    payload: PayloadSelector,
    vectors: VectorSelector,
}

/// A request of either API, checked into a [`Plan`]; `at` prefixes the members it names.
trait Planned {
    fn plan(self, at: &str) -> ApiResult<Plan>;
}

#[derive(Debug)]
pub(super) enum Input {
    Vector(VectorInput),
    /// The stored vector of this point; the point itself is left out of the results.
    Point(PointId),
    /// Fuse the ranked lists of the prefetches.
    Fusion(Fusion),
}

fn unsupported(at: &str, what: &str) -> ApiError {
    ApiError::bad_request(format!(
        "Wrong input: {at}: {what} is not supported by this server yet"
    ))
}

pub(super) fn query_input(v: &Value, at: &str) -> ApiResult<Input> {
    match v {
        Value::Number(_) | Value::String(_) => Ok(Input::Point(convert::point_id(v, at)?)),
        Value::Object(o) if o.len() == 1 && o.contains_key("nearest") => {
            query_input(&o["nearest"], &format!("{at}.nearest"))
        }
        Value::Object(o) if o.contains_key("nearest") => {
            if o.get("mmr").is_some_and(|v| !v.is_null()) {
                return Err(unsupported(
                    &format!("{at}.mmr"),
                    "maximal marginal relevance",
                ));
            }
            query_input(&o["nearest"], &format!("{at}.nearest"))
        }
        Value::Object(o) if o.len() == 1 => {
            let which = o.keys().next().map_or("", String::as_str);
            match which {
                "fusion" | "rrf" => Ok(Input::Fusion(hybrid::fusion(o, at)?)),
                "recommend" | "discover" | "context" | "order_by" | "formula" | "sample" => {
                    Err(unsupported(at, &format!("the `{which}` query")))
                }
                _ => Ok(Input::Vector(convert::vector_input(v, at)?)),
            }
        }
        other => Ok(Input::Vector(convert::vector_input(other, at)?)),
    }
}

impl Planned for QueryRequest {
    fn plan(self, at: &str) -> ApiResult<Plan> {
        let _ = (&self.shard_key,);
        let prefetch = hybrid::parse_prefetch(self.prefetch, &format!("{at}prefetch"))?;
        if self.lookup_from.as_ref().is_some_and(|v| !v.is_null()) {
            return Err(unsupported(&format!("{at}lookup_from"), "lookup_from"));
        }
        let input = match self.query.filter(|v| !v.is_null()) {
            Some(Loose::Numbers(v)) => Some(Input::Vector(VectorInput::Dense(v))),
            Some(Loose::Json(q)) => Some(query_input(&q, &format!("{at}query"))?),
            None => None,
        };
        Ok(Plan {
            prefetch,
            input,
            using: self.using.unwrap_or_default(),
            filter: self.filter.filter(|v| !v.is_null()),
            params: self.params.unwrap_or_default(),
            score_threshold: self.score_threshold,
            limit: self.limit.unwrap_or(10),
            offset: self.offset.unwrap_or(0),
            payload: PayloadSelector::parse(
                self.with_payload.as_ref(),
                false,
                &format!("{at}with_payload"),
            )?,
            vectors: VectorSelector::parse(self.with_vector.as_ref(), &format!("{at}with_vector"))?,
        })
    }
}

impl Planned for OldSearch {
    fn plan(self, at: &str) -> ApiResult<Plan> {
        let _ = &self.shard_key;
        // `NamedVectorStruct`: a bare vector, or `{"name", "vector"}` (a sparse one:
        // `NamedSparseVector`, `{"name", "vector": {"indices", "values"}}`).
        let (using, vector) = match self.vector {
            Loose::Numbers(v) => (String::new(), VectorInput::Dense(v)),
            Loose::Json(Value::Object(o)) if o.contains_key("name") => {
                let name = o.get("name").and_then(Value::as_str).ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "Format error in JSON body: {at}vector.name: expected a string"
                    ))
                })?;
                let v = o.get("vector").ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "Format error in JSON body: {at}vector: missing field `vector`"
                    ))
                })?;
                let at = format!("{at}vector.vector");
                let vector = match v {
                    Value::Object(s) if convert::is_sparse(s) => {
                        VectorInput::Sparse(convert::sparse(s, &at)?)
                    }
                    v => VectorInput::Dense(convert::dense(v, &at)?),
                };
                (name.to_string(), vector)
            }
            Loose::Json(v) => (
                String::new(),
                VectorInput::Dense(convert::dense(&v, &format!("{at}vector"))?),
            ),
        };
        Ok(Plan {
            prefetch: Vec::new(),
            input: Some(Input::Vector(vector)),
            using,
            filter: self.filter.filter(|v| !v.is_null()),
            params: self.params.unwrap_or_default(),
            score_threshold: self.score_threshold,
            limit: self.limit,
            offset: self.offset.unwrap_or(0),
            payload: PayloadSelector::parse(
                self.with_payload.as_ref(),
                false,
                &format!("{at}with_payload"),
            )?,
            vectors: VectorSelector::parse(self.with_vector.as_ref(), &format!("{at}with_vector"))?,
        })
    }
}

impl Plan {
    fn check(&self, c: &Collection, at: &str) -> ApiResult<()> {
        let _ = (
            &self.params.quantization,
            self.params.indexed_only,
            &self.params.acorn,
            &self.params.idf,
        );
        hybrid::check_rank(c, self.input.as_ref(), &self.prefetch, &self.using, at)?;
        convert::check_vector_names(&c.schema(), &self.vectors, &format!("{at}with_vector"))?;
        if self.limit.saturating_add(self.offset) > MAX_RESULTS {
            return Err(ApiError::bad_request(format!(
                "Wrong input: {at}limit + offset = {} is over the maximum of {MAX_RESULTS}",
                self.limit.saturating_add(self.offset)
            )));
        }
        if let Some(ef) = self.params.hnsw_ef
            && ef == 0
        {
            return Err(ApiError::bad_request(format!(
                "Wrong input: {at}params.hnsw_ef must be at least 1"
            )));
        }
        self.prefetch.iter().try_for_each(|p| hybrid::check(p, c))
    }
}

/// Checks that vector `using` exists and that `input` has its form (a sparse query only
/// searches a sparse vector, and the reverse); `at` prefixes the members named.
pub(super) fn check_input(
    schema: &quiver_engine::Schema,
    using: &str,
    input: &Input,
    at: &str,
) -> ApiResult<()> {
    let sparse = schema.sparse_vectors.contains_key(using);
    if !sparse && !schema.vectors.contains_key(using) {
        return Err(convert::unknown_vector(
            schema,
            using,
            &format!("{at}using"),
        ));
    }
    let name = if using.is_empty() {
        "the unnamed vector".to_string()
    } else {
        format!("vector `{using}`")
    };
    match input {
        Input::Vector(VectorInput::Sparse(_) | VectorInput::Bm25(_)) if !sparse => {
            Err(ApiError::bad_request(format!(
                "Wrong input: {at}query: a sparse query ({{\"indices\", \"values\"}}) cannot search {name}, which is dense; give `using` the name of a sparse vector"
            )))
        }
        Input::Vector(VectorInput::Dense(_) | VectorInput::Document { .. }) if sparse => {
            Err(ApiError::bad_request(format!(
                "Wrong input: {at}query: {name} is sparse: query it with {{\"indices\": [...], \"values\": [...]}}"
            )))
        }
        Input::Vector(VectorInput::Dense(v)) => match schema.vectors.get(using) {
            Some(kind) if kind.dim() != v.len() => Err(ApiError::bad_request(format!(
                "Wrong input: {at}query: a vector of dimension {} for {name}, which has dimension {}",
                v.len(),
                kind.dim()
            ))),
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

/// Runs plans against one collection on the calling (blocking) thread.
fn run(app: &App, c: &Collection, plans: Vec<Plan>) -> ApiResult<Vec<Vec<ScoredJson>>> {
    // Embed every document of the batch in one call.
    let mut doc_slots = Vec::new();
    let mut docs = Vec::new();
    for (i, p) in plans.iter().enumerate() {
        if let Some(Input::Vector(v @ VectorInput::Document { .. })) = &p.input {
            doc_slots.push(i);
            docs.push(v.clone());
        }
    }
    let mut embedded: Vec<Option<Vec<f32>>> = vec![None; plans.len()];
    for (i, v) in doc_slots.into_iter().zip(app.embed(docs)?) {
        if let Some(slot) = embedded.get_mut(i) {
            *slot = Some(v);
        }
    }
    let mut out = Vec::with_capacity(plans.len());
    for (plan, embedded) in plans.into_iter().zip(embedded) {
        out.push(run_one(app, c, plan, embedded)?);
    }
    Ok(out)
}

fn run_one(
    app: &App,
    c: &Collection,
    plan: Plan,
    embedded: Option<Vec<f32>>,
) -> ApiResult<Vec<ScoredJson>> {
    let with = With {
        payload: plan.payload.wanted(),
        vectors: plan.vectors.wanted(),
    };
    if !plan.prefetch.is_empty() {
        return run_hybrid(app, c, plan, embedded, with);
    }
    let mut filter = plan.filter.clone();
    let vector = match plan.input {
        None => return scroll_as_query(c, &plan, with),
        Some(Input::Vector(VectorInput::Dense(v))) => QueryVector::Dense(v),
        Some(Input::Vector(VectorInput::Sparse(v))) => QueryVector::Sparse(v),
        Some(Input::Vector(VectorInput::Bm25(doc))) => QueryVector::Sparse(crate::bm25::query(
            &c.schema(),
            &plan.using,
            &doc.text,
            "query",
        )?),
        Some(Input::Vector(VectorInput::Document { .. })) => QueryVector::Dense(
            embedded.ok_or_else(|| ApiError::internal("Service internal error: embedding lost"))?,
        ),
        Some(Input::Point(id)) => {
            let (v, f) = point_query(c, id, &plan.using, filter)?;
            filter = f;
            v
        }
        // Refused by `check_rank`: fusion needs prefetches.
        Some(Input::Fusion(_)) => return Ok(Vec::new()),
    };
    let filter = convert::filter(filter.as_ref(), "filter")?;
    let mut req = SearchRequest::new(Vec::new(), plan.limit);
    req.vector = vector;
    req.offset = plan.offset;
    req.vector_name = plan.using.clone();
    req.score_threshold = plan.score_threshold;
    req.with = with;
    req.ef = plan.params.hnsw_ef;
    req.exact = plan.params.exact.unwrap_or(false);
    req.filter = filter;
    let hits = c.search(&req)?;
    Ok(hits
        .into_iter()
        .map(|h| convert::scored_json(&c.schema(), h, &plan.payload, &plan.vectors))
        .collect())
}

/// The stored vector `using` of point `id` to query with, and `filter` extended to leave
/// the point itself out of the results.
pub(super) fn point_query(
    c: &Collection,
    id: PointId,
    using: &str,
    filter: Option<Value>,
) -> ApiResult<(QueryVector, Option<Value>)> {
    let mut records = c.retrieve(&[id], With::ALL)?;
    let record = records
        .pop()
        .ok_or_else(|| ApiError::not_found(format!("Not found: No point with id {id} found")))?;
    let dense = record
        .vectors
        .and_then(|mut v| v.remove(using))
        .map(QueryVector::Dense);
    // A point without a sparse vector has none stored (it is empty).
    let sparse = || {
        record
            .sparse
            .and_then(|mut v| v.remove(using))
            .map(QueryVector::Sparse)
    };
    let v = dense.or_else(sparse).ok_or_else(|| {
        ApiError::not_found(format!("Not found: point {id} has no vector `{using}`"))
    })?;
    let not_itself = json!({"has_id": [convert::id_json(id)]});
    let filter = match filter {
        Some(f) => json!({"must": [f], "must_not": [not_itself]}),
        None => json!({"must_not": [not_itself]}),
    };
    Ok((v, Some(filter)))
}

/// A query with prefetch: the plan as the root of a query tree (its document, if any,
/// already `embedded`).
fn run_hybrid(
    app: &App,
    c: &Collection,
    plan: Plan,
    embedded: Option<Vec<f32>>,
    with: With,
) -> ApiResult<Vec<ScoredJson>> {
    let input = match (plan.input, embedded) {
        (Some(Input::Vector(VectorInput::Document { .. })), Some(v)) => {
            Some(Input::Vector(VectorInput::Dense(v)))
        }
        (input, _) => input,
    };
    let root = Stage {
        prefetch: plan.prefetch,
        input,
        using: plan.using,
        filter: plan.filter,
        params: plan.params,
        score_threshold: plan.score_threshold,
        limit: plan.limit,
        at: String::new(),
    };
    let q = HybridQuery {
        root: hybrid::build(app, c, root)?,
        offset: plan.offset,
        with,
    };
    let schema = c.schema();
    Ok(c.query(&q)?
        .into_iter()
        .map(|h| convert::scored_json(&schema, h, &plan.payload, &plan.vectors))
        .collect())
}

/// A query without `query` lists points in id order (score 0), as Qdrant does.
fn scroll_as_query(c: &Collection, plan: &Plan, with: With) -> ApiResult<Vec<ScoredJson>> {
    let filter = convert::filter(plan.filter.as_ref(), "filter")?;
    let page = c.scroll_filtered(None, plan.limit + plan.offset, with, filter.as_ref())?;
    Ok(page
        .points
        .into_iter()
        .skip(plan.offset)
        .map(|r| convert::unscored_json(&c.schema(), r, &plan.payload, &plan.vectors))
        .collect())
}

/// Plans every request (a batch's members are named `searches[i].`), checks the plans
/// against the collection, then runs them.
async fn answer(
    app: &AppState,
    name: &str,
    requests: Vec<impl Planned>,
    batch: bool,
) -> ApiResult<Vec<Vec<ScoredJson>>> {
    let prefixes: Vec<String> = (0..requests.len())
        .map(|i| {
            if batch {
                format!("searches[{i}].")
            } else {
                String::new()
            }
        })
        .collect();
    let plans = requests
        .into_iter()
        .zip(&prefixes)
        .map(|(r, at)| r.plan(at))
        .collect::<ApiResult<Vec<_>>>()?;
    let c: Arc<Collection> = app.collection(name)?;
    for (p, at) in plans.iter().zip(&prefixes) {
        p.check(&c, at)?;
    }
    // One graph search costs about as much as the two thread switches of a hand-off to the
    // blocking pool (on 2 cores: 3,676 queries/s handed off, 10,149 inline; BENCHMARKS.md), so
    // a single approximate query runs on the async worker. Batches, exact searches, sparse
    // searches (always exact: their cost grows with the posting lists they read), documents
    // (the model) and deep pages go to the blocking pool.
    let short = plans.len() == 1
        && plans.iter().all(|p| {
            !p.params.exact.unwrap_or(false)
                && p.limit.saturating_add(p.offset) <= SHORT_QUERY_RESULTS
                && p.prefetch.is_empty()
                && !matches!(
                    p.input,
                    Some(Input::Vector(
                        VectorInput::Document { .. }
                            | VectorInput::Sparse(_)
                            | VectorInput::Bm25(_)
                    )) | None
                )
        });
    if short {
        return run(app, &c, plans);
    }
    let app2 = app.clone();
    app.blocking(move || run(&app2, &c, plans)).await
}

#[utoipa::path(
    post,
    path = "/collections/{name}/points/query",
    tag = "search",
    summary = "Nearest points to a vector, a point id or a document",
    request_body = QueryRequest,
    params(("name" = String, Path, description = "Collection name (or alias, for point operations)")),
    responses((status = 200, description = "Qdrant's envelope: `{\"result\": ..., \"status\": \"ok\", \"time\": seconds}`"), (status = 400, description = "Bad input: the message says what and where; nothing changed"), (status = 401, description = "No or wrong API key"), (status = 403, description = "The read-only key on a write"), (status = 404, description = "No such collection, alias or point"))
)]
pub async fn query(
    State(app): State<AppState>,
    Path(name): Path<String>,
    Query(params): Query<ReadParams>,
    started: Started,
    Body(req): Body<QueryRequest>,
) -> ApiResult<Reply> {
    params.ignore();
    let mut out = answer(&app, &name, vec![req], false).await?;
    Ok(Reply::ok(
        &started,
        Points {
            points: out.pop().unwrap_or_default(),
        },
    ))
}

#[utoipa::path(
    post,
    path = "/collections/{name}/points/query/batch",
    tag = "search",
    summary = "Several queries at once",
    request_body = QueryBatch,
    params(("name" = String, Path, description = "Collection name (or alias, for point operations)")),
    responses((status = 200, description = "Qdrant's envelope: `{\"result\": ..., \"status\": \"ok\", \"time\": seconds}`"), (status = 400, description = "Bad input: the message says what and where; nothing changed"), (status = 401, description = "No or wrong API key"), (status = 403, description = "The read-only key on a write"), (status = 404, description = "No such collection, alias or point"))
)]
pub async fn query_batch(
    State(app): State<AppState>,
    Path(name): Path<String>,
    Query(params): Query<ReadParams>,
    started: Started,
    Body(req): Body<QueryBatch>,
) -> ApiResult<Reply> {
    params.ignore();
    let out = answer(&app, &name, req.searches, true).await?;
    let out: Vec<Points> = out.into_iter().map(|points| Points { points }).collect();
    Ok(Reply::ok(&started, out))
}

#[utoipa::path(
    post,
    path = "/collections/{name}/points/search",
    tag = "search",
    summary = "Nearest points to a vector (the pre-query API)",
    request_body = OldSearch,
    params(("name" = String, Path, description = "Collection name (or alias, for point operations)")),
    responses((status = 200, description = "Qdrant's envelope: `{\"result\": ..., \"status\": \"ok\", \"time\": seconds}`"), (status = 400, description = "Bad input: the message says what and where; nothing changed"), (status = 401, description = "No or wrong API key"), (status = 403, description = "The read-only key on a write"), (status = 404, description = "No such collection, alias or point"))
)]
pub async fn search(
    State(app): State<AppState>,
    Path(name): Path<String>,
    Query(params): Query<ReadParams>,
    started: Started,
    Body(req): Body<OldSearch>,
) -> ApiResult<Reply> {
    params.ignore();
    let mut out = answer(&app, &name, vec![req], false).await?;
    Ok(Reply::ok(&started, out.pop().unwrap_or_default()))
}

#[utoipa::path(
    post,
    path = "/collections/{name}/points/search/batch",
    tag = "search",
    summary = "Several searches at once (the pre-query API)",
    request_body = SearchBatch,
    params(("name" = String, Path, description = "Collection name (or alias, for point operations)")),
    responses((status = 200, description = "Qdrant's envelope: `{\"result\": ..., \"status\": \"ok\", \"time\": seconds}`"), (status = 400, description = "Bad input: the message says what and where; nothing changed"), (status = 401, description = "No or wrong API key"), (status = 403, description = "The read-only key on a write"), (status = 404, description = "No such collection, alias or point"))
)]
pub async fn search_batch(
    State(app): State<AppState>,
    Path(name): Path<String>,
    Query(params): Query<ReadParams>,
    started: Started,
    Body(req): Body<SearchBatch>,
) -> ApiResult<Reply> {
    params.ignore();
    let out = answer(&app, &name, req.searches, true).await?;
    Ok(Reply::ok(&started, out))
}
