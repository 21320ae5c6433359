//! Qdrant's JSON shapes to and from the engine's types. Every error names the member it is
//! about (`points[3].vector[7]`).

use crate::error::{ApiError, ApiResult};
use quiver_engine::{Filter, Payload, PointId, Record, Schema, ScoredPoint, SparseVector};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

/// The models `Document` inputs may name, as Qdrant's clients spell them.
pub const DOCUMENT_MODELS: [&str; 1] = ["sentence-transformers/all-MiniLM-L6-v2"];

pub fn point_id(v: &Value, at: &str) -> ApiResult<PointId> {
    PointId::from_json(v).ok_or_else(|| {
        ApiError::bad_request(format!(
            "Format error in JSON body: {at}: {v} is not a point id (an unsigned integer or a UUID string)"
        ))
    })
}

pub fn point_ids(v: &[Value], at: &str) -> ApiResult<Vec<PointId>> {
    v.iter()
        .enumerate()
        .map(|(i, v)| point_id(v, &format!("{at}[{i}]")))
        .collect()
}

/// A point id as a path segment (`GET /collections/c/points/{id}`).
pub fn point_id_text(s: &str) -> ApiResult<PointId> {
    PointId::parse(s).ok_or_else(|| {
        ApiError::bad_request(format!(
            "Wrong input: `{s}` is not a point id (an unsigned integer or a UUID)"
        ))
    })
}

pub fn id_json(id: PointId) -> Value {
    id.to_json()
}

/// A dense vector: a JSON array of numbers.
pub fn dense(v: &Value, at: &str) -> ApiResult<Vec<f32>> {
    let Value::Array(items) = v else {
        return Err(ApiError::bad_request(format!(
            "Format error in JSON body: {at}: expected a vector (an array of numbers), found {}",
            kind(v)
        )));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, x)| {
            x.as_f64().map(|x| x as f32).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Format error in JSON body: {at}[{i}]: expected a number, found {}",
                    kind(x)
                ))
            })
        })
        .collect()
}

/// A member that is most often a dense vector. An array of numbers is read straight into
/// `f32`s (a 384-number query parsed into `Value`s first cost more than the graph search's
/// bookkeeping); anything else is kept as a `Value` for the checks that name what is wrong.
#[derive(Debug, Clone)]
pub enum Loose {
    Numbers(Vec<f32>),
    Json(Value),
}

impl Loose {
    pub fn into_value(self) -> Value {
        match self {
            Loose::Numbers(v) => Value::Array(v.into_iter().map(|x| json!(x)).collect()),
            Loose::Json(v) => v,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Loose::Json(Value::Null))
    }
}

impl<'de> serde::Deserialize<'de> for Loose {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Loose, D::Error> {
        d.deserialize_any(LooseVisitor)
    }
}

struct LooseVisitor;

impl<'de> serde::de::Visitor<'de> for LooseVisitor {
    type Value = Loose;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Loose, E> {
        Ok(Loose::Json(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Loose, E> {
        Ok(Loose::Json(Value::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Loose, E> {
        Ok(Loose::Json(Value::from(v)))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Loose, E> {
        Ok(Loose::Json(Value::from(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Loose, E> {
        Ok(Loose::Json(Value::String(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Loose, E> {
        Ok(Loose::Json(Value::String(v)))
    }

    fn visit_unit<E>(self) -> Result<Loose, E> {
        Ok(Loose::Json(Value::Null))
    }

    fn visit_none<E>(self) -> Result<Loose, E> {
        Ok(Loose::Json(Value::Null))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<Loose, A::Error> {
        use serde::Deserialize;
        Value::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Loose::Json)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Loose, A::Error> {
        let mut numbers = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element::<Loose>()? {
            match item {
                Loose::Json(Value::Number(n)) => {
                    numbers.push(n.as_f64().unwrap_or(f64::NAN) as f32)
                }
                other => {
                    // Not a vector of numbers: the whole array as JSON values.
                    let mut items: Vec<Value> = numbers.into_iter().map(|x| json!(x)).collect();
                    items.push(other.into_value());
                    while let Some(item) = seq.next_element::<Loose>()? {
                        items.push(item.into_value());
                    }
                    return Ok(Loose::Json(Value::Array(items)));
                }
            }
        }
        Ok(Loose::Numbers(numbers))
    }
}

/// A vector input: numbers, a sparse vector, or a text to embed.
#[derive(Debug, Clone)]
pub enum VectorInput {
    Dense(Vec<f32>),
    /// Checked here (equal lengths, distinct indices, finite values) so that errors name the
    /// JSON position; the engine checks again against the schema.
    Sparse(SparseVector),
    /// A text for the built-in model (its name was checked when parsed).
    Document {
        text: String,
    },
    /// A text for Qdrant's `qdrant/bm25`: a sparse vector once the target vector is known
    /// (`crate::bm25`).
    Bm25(crate::bm25::Bm25Text),
}

/// A `Document` (`{"text": ..., "model": ...}`), a sparse vector (`{"indices", "values"}`) or
/// a dense vector. Multi-vectors are refused with a message saying so.
pub fn vector_input(v: &Value, at: &str) -> ApiResult<VectorInput> {
    match v {
        Value::Array(items) if items.first().is_some_and(Value::is_array) => {
            Err(ApiError::bad_request(format!(
                "Wrong input: {at}: multi-vectors (lists of vectors) are not supported by this server yet"
            )))
        }
        Value::Array(_) => Ok(VectorInput::Dense(dense(v, at)?)),
        Value::Object(o) if is_sparse(o) => Ok(VectorInput::Sparse(sparse(o, at)?)),
        Value::Object(o) if is_document(o) => {
            let text = o.get("text").and_then(Value::as_str).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Format error in JSON body: {at}.text: expected a string"
                ))
            })?;
            let model = o.get("model").and_then(Value::as_str).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Format error in JSON body: {at}.model: expected the model name, one of: {}",
                    DOCUMENT_MODELS.join(", ")
                ))
            })?;
            for key in o.keys() {
                if !matches!(key.as_str(), "text" | "model" | "options") {
                    return Err(ApiError::bad_request(format!(
                        "Format error in JSON body: {at}: unknown field `{key}` of a document, expected `text`, `model` or `options`"
                    )));
                }
            }
            if model.eq_ignore_ascii_case(crate::bm25::MODEL) {
                return Ok(VectorInput::Bm25(crate::bm25::Bm25Text {
                    text: text.to_string(),
                    options: crate::bm25::Options::parse(o.get("options"), at)?,
                }));
            }
            check_model(model, at)?;
            Ok(VectorInput::Document {
                text: text.to_string(),
            })
        }
        Value::Object(o) if o.contains_key("image") || o.contains_key("object") => {
            Err(ApiError::bad_request(format!(
                "Wrong input: {at}: only text documents can be embedded by this server (model {})",
                DOCUMENT_MODELS.join(", ")
            )))
        }
        other => Err(ApiError::bad_request(format!(
            "Format error in JSON body: {at}: expected a vector (an array of numbers), a sparse vector ({{\"indices\", \"values\"}}) or a document ({{\"text\", \"model\"}}), found {}",
            kind(other)
        ))),
    }
}

/// A sparse vector: `{"indices": [...], "values": [...]}`. `indices` decides, as it did before
/// sparse vectors were accepted: `{"values": [...]}` stays a dense vector named `values`.
pub fn is_sparse(o: &Map<String, Value>) -> bool {
    o.contains_key("indices")
}

/// A sparse vector, checked as the engine will check it but with errors that name the JSON
/// position (`points[3].vector.text.indices[2]`): unsigned 32-bit indices, finite values, as
/// many values as indices, no index twice.
pub fn sparse(o: &Map<String, Value>, at: &str) -> ApiResult<SparseVector> {
    for key in o.keys() {
        if !matches!(key.as_str(), "indices" | "values") {
            return Err(ApiError::bad_request(format!(
                "Format error in JSON body: {at}: unknown field `{key}` of a sparse vector, expected `indices` and `values`"
            )));
        }
    }
    fn list<'a>(o: &'a Map<String, Value>, name: &str, at: &str) -> ApiResult<&'a Vec<Value>> {
        match o.get(name) {
            Some(Value::Array(items)) => Ok(items),
            None => Err(ApiError::bad_request(format!(
                "Format error in JSON body: {at}: missing field `{name}` of a sparse vector"
            ))),
            Some(other) => Err(ApiError::bad_request(format!(
                "Format error in JSON body: {at}.{name}: expected an array, found {}",
                kind(other)
            ))),
        }
    }
    let indices = list(o, "indices", at)?
        .iter()
        .enumerate()
        .map(|(i, x)| {
            x.as_u64()
                .and_then(|x| u32::try_from(x).ok())
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "Format error in JSON body: {at}.indices[{i}]: expected an index (an integer from 0 to {}), found {x}",
                        u32::MAX
                    ))
                })
        })
        .collect::<ApiResult<Vec<u32>>>()?;
    let values = list(o, "values", at)?
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let v = x.as_f64().map(|x| x as f32).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Format error in JSON body: {at}.values[{i}]: expected a number, found {}",
                    kind(x)
                ))
            })?;
            if v.is_finite() {
                Ok(v)
            } else {
                Err(ApiError::bad_request(format!(
                    "Wrong input: {at}.values[{i}]: {x} is not a finite 32-bit float"
                )))
            }
        })
        .collect::<ApiResult<Vec<f32>>>()?;
    if indices.len() != values.len() {
        return Err(ApiError::bad_request(format!(
            "Wrong input: {at}: {} indices but {} values (one value per index)",
            indices.len(),
            values.len()
        )));
    }
    let mut seen = std::collections::HashMap::with_capacity(indices.len());
    for (i, &index) in indices.iter().enumerate() {
        if let Some(first) = seen.insert(index, i) {
            return Err(ApiError::bad_request(format!(
                "Wrong input: {at}.indices[{i}]: index {index} is already at indices[{first}]; indices must be distinct"
            )));
        }
    }
    Ok(SparseVector::new(indices, values))
}

/// A sparse vector as Qdrant returns it.
pub fn sparse_json(v: SparseVector) -> Value {
    json!({"indices": v.indices, "values": v.values})
}

/// A text document: `{"text": "...", "model": "..."}` (a vector named `text` holds an array).
fn is_document(o: &Map<String, Value>) -> bool {
    o.get("text").is_some_and(Value::is_string)
}

fn check_model(model: &str, at: &str) -> ApiResult<()> {
    let known = DOCUMENT_MODELS.iter().any(|m| {
        m.eq_ignore_ascii_case(model)
            || m.rsplit('/')
                .next()
                .is_some_and(|short| short.eq_ignore_ascii_case(model))
    });
    if known {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "Wrong input: {at}.model: unknown model `{model}`; this server embeds text with: {}, and makes sparse BM25 vectors with {}",
            DOCUMENT_MODELS.join(", "),
            crate::bm25::MODEL
        )))
    }
}

/// A point's vectors (`VectorStruct`): one unnamed vector, or an object of named ones.
pub fn vector_struct(v: &Value, at: &str) -> ApiResult<Vec<(String, VectorInput)>> {
    match v {
        Value::Object(o) if !is_document(o) && !is_sparse(o) => o
            .iter()
            .map(|(name, v)| Ok((name.clone(), vector_input(v, &format!("{at}.{name}"))?)))
            .collect(),
        other => Ok(vec![(String::new(), vector_input(other, at)?)]),
    }
}

/// Which payload members to return (`with_payload`).
#[derive(Debug, Clone, PartialEq)]
pub enum PayloadSelector {
    None,
    All,
    Include(Vec<String>),
    Exclude(Vec<String>),
}

impl PayloadSelector {
    /// `true`/`false`, a list of keys, `{"include": [...]}` or `{"exclude": [...]}`; absent:
    /// `default`.
    pub fn parse(v: Option<&Value>, default: bool, at: &str) -> ApiResult<PayloadSelector> {
        let keys = |v: &Value, at: &str| strings(v, at, "payload key");
        Ok(match v {
            None | Some(Value::Null) => {
                if default {
                    PayloadSelector::All
                } else {
                    PayloadSelector::None
                }
            }
            Some(Value::Bool(true)) => PayloadSelector::All,
            Some(Value::Bool(false)) => PayloadSelector::None,
            Some(list @ Value::Array(_)) => PayloadSelector::Include(keys(list, at)?),
            Some(Value::Object(o)) if o.len() == 1 && o.contains_key("include") => {
                PayloadSelector::Include(keys(&o["include"], &format!("{at}.include"))?)
            }
            Some(Value::Object(o)) if o.len() == 1 && o.contains_key("exclude") => {
                PayloadSelector::Exclude(keys(&o["exclude"], &format!("{at}.exclude"))?)
            }
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "Format error in JSON body: {at}: expected true, false, a list of keys, {{\"include\": [...]}} or {{\"exclude\": [...]}}, found {}",
                    kind(other)
                )));
            }
        })
    }

    pub fn wanted(&self) -> bool {
        *self != PayloadSelector::None
    }

    /// The selected part of a payload. Keys may be dotted paths into nested objects.
    pub fn apply(&self, payload: Payload) -> Option<Value> {
        match self {
            PayloadSelector::None => None,
            PayloadSelector::All => Some(Value::Object(payload)),
            PayloadSelector::Include(keys) => {
                let mut out = Map::new();
                for key in keys {
                    copy_path(&payload, &mut out, key);
                }
                Some(Value::Object(out))
            }
            PayloadSelector::Exclude(keys) => {
                let mut payload = payload;
                for key in keys {
                    remove_path(&mut payload, key);
                }
                Some(Value::Object(payload))
            }
        }
    }
}

fn copy_path(from: &Payload, to: &mut Payload, path: &str) {
    match path.split_once('.') {
        None => {
            if let Some(v) = from.get(path) {
                to.insert(path.to_string(), v.clone());
            }
        }
        Some((head, rest)) => {
            if let Some(Value::Object(inner)) = from.get(head) {
                let slot = to
                    .entry(head.to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(slot) = slot {
                    copy_path(inner, slot, rest);
                }
            } else if let Some(v) = from.get(path) {
                to.insert(path.to_string(), v.clone());
            }
        }
    }
}

fn remove_path(payload: &mut Payload, path: &str) {
    if payload.remove(path).is_some() {
        return;
    }
    if let Some((head, rest)) = path.split_once('.')
        && let Some(Value::Object(inner)) = payload.get_mut(head)
    {
        remove_path(inner, rest);
    }
}

/// Which vectors to return (`with_vector` / `with_vectors`).
#[derive(Debug, Clone, PartialEq)]
pub enum VectorSelector {
    None,
    All,
    Names(Vec<String>),
}

impl VectorSelector {
    pub fn parse(v: Option<&Value>, at: &str) -> ApiResult<VectorSelector> {
        Ok(match v {
            None | Some(Value::Null) | Some(Value::Bool(false)) => VectorSelector::None,
            Some(Value::Bool(true)) => VectorSelector::All,
            Some(list @ Value::Array(_)) => {
                VectorSelector::Names(strings(list, at, "vector name")?)
            }
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "Format error in JSON body: {at}: expected true, false or a list of vector names, found {}",
                    kind(other)
                )));
            }
        })
    }

    pub fn wanted(&self) -> bool {
        *self != VectorSelector::None
    }

    /// The selected vectors: a bare array for a point with only the unnamed vector, else an
    /// object by name, sparse vectors as `{"indices", "values"}` (as Qdrant answers: a point
    /// with the unnamed vector and a sparse one gets the unnamed one under `""`).
    pub fn apply(
        &self,
        schema: &Schema,
        vectors: BTreeMap<String, Vec<f32>>,
        sparse: Option<BTreeMap<String, SparseVector>>,
    ) -> Option<Value> {
        let sparse = sparse.unwrap_or_default();
        let only_default = schema.vectors.len() == 1
            && schema.vectors.contains_key("")
            && (sparse.is_empty() || *self == VectorSelector::Names(vec![String::new()]));
        let wanted = |k: &String| match self {
            VectorSelector::Names(names) => names.contains(k),
            _ => true,
        };
        match self {
            VectorSelector::None => None,
            _ if only_default => vectors.into_iter().next().map(|(_, v)| json!(v)),
            _ => Some(Value::Object(
                vectors
                    .into_iter()
                    .filter(|(k, _)| wanted(k))
                    .map(|(k, v)| (k, json!(v)))
                    .chain(
                        sparse
                            .into_iter()
                            .filter(|(k, _)| wanted(k))
                            .map(|(k, v)| (k, sparse_json(v))),
                    )
                    .collect(),
            )),
        }
    }
}

/// Checks that named vectors exist, so that a typo is an error and not an empty answer.
pub fn check_vector_names(schema: &Schema, selector: &VectorSelector, at: &str) -> ApiResult<()> {
    if let VectorSelector::Names(names) = selector {
        for name in names {
            if !schema.vectors.contains_key(name) && !schema.sparse_vectors.contains_key(name) {
                return Err(unknown_vector(schema, name, at));
            }
        }
    }
    Ok(())
}

pub fn unknown_vector(schema: &Schema, name: &str, at: &str) -> ApiError {
    let known: Vec<String> = schema
        .vectors
        .keys()
        .map(|k| {
            if k.is_empty() {
                "\"\" (the unnamed vector)".to_string()
            } else {
                format!("`{k}`")
            }
        })
        .chain(
            schema
                .sparse_vectors
                .keys()
                .map(|k| format!("`{k}` (sparse)")),
        )
        .collect();
    ApiError::bad_request(format!(
        "Wrong input: {at}: the collection has no vector named `{name}` (it has: {})",
        known.join(", ")
    ))
}

pub fn record_json(
    schema: &Schema,
    record: Record,
    payload: &PayloadSelector,
    vectors: &VectorSelector,
) -> Value {
    json!({
        "id": id_json(record.id),
        "payload": record.payload.and_then(|p| payload.apply(p)),
        "vector": record.vectors.and_then(|v| vectors.apply(schema, v, record.sparse)),
        "shard_key": null,
        "order_value": null,
    })
}

/// Qdrant's `ScoredPoint`, serialized in its member order.
#[derive(Debug, Serialize)]
pub struct ScoredJson {
    id: Value,
    version: u64,
    score: f32,
    payload: Option<Value>,
    vector: Option<Value>,
    shard_key: Option<()>,
    order_value: Option<()>,
}

pub fn scored_json(
    schema: &Schema,
    point: ScoredPoint,
    payload: &PayloadSelector,
    vectors: &VectorSelector,
) -> ScoredJson {
    ScoredJson {
        id: id_json(point.id),
        version: 0,
        score: point.score,
        payload: point.payload.and_then(|p| payload.apply(p)),
        vector: point
            .vectors
            .and_then(|v| vectors.apply(schema, v, point.sparse)),
        shard_key: None,
        order_value: None,
    }
}

/// A record listed by a query without `query`: score 0, as Qdrant answers.
pub fn unscored_json(
    schema: &Schema,
    record: Record,
    payload: &PayloadSelector,
    vectors: &VectorSelector,
) -> ScoredJson {
    ScoredJson {
        id: id_json(record.id),
        version: 0,
        score: 0.0,
        payload: record.payload.and_then(|p| payload.apply(p)),
        vector: record
            .vectors
            .and_then(|v| vectors.apply(schema, v, record.sparse)),
        shard_key: None,
        order_value: None,
    }
}

/// An optional filter; `null` means none.
pub fn filter(v: Option<&Value>, at: &str) -> ApiResult<Option<Filter>> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => Filter::from_json(v)
            .map(Some)
            .map_err(|e| ApiError::bad_request(format!("Wrong input: {at}: {e}"))),
    }
}

/// A payload: a JSON object.
pub fn payload(v: Option<&Value>, at: &str) -> ApiResult<Payload> {
    match v {
        None | Some(Value::Null) => Ok(Payload::new()),
        Some(Value::Object(o)) => Ok(o.clone()),
        Some(other) => Err(ApiError::bad_request(format!(
            "Format error in JSON body: {at}: a payload must be a JSON object, found {}",
            kind(other)
        ))),
    }
}

/// A list of strings: payload keys, vector names (`what`, for messages).
pub fn strings(v: &Value, at: &str, what: &str) -> ApiResult<Vec<String>> {
    let items = v.as_array().ok_or_else(|| {
        ApiError::bad_request(format!(
            "Format error in JSON body: {at}: expected a list of {what}s, found {}",
            kind(v)
        ))
    })?;
    items
        .iter()
        .enumerate()
        .map(|(i, k)| {
            k.as_str().map(str::to_string).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Format error in JSON body: {at}[{i}]: expected a {what} (a string)"
                ))
            })
        })
        .collect()
}

/// A JSON value's type, for messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_selectors_pick_and_drop_nested_keys() {
        let p: Payload = serde_json::from_value(json!({"a": 1, "b": {"c": 2, "d": 3}, "e": 4}))
            .unwrap_or_default();
        let include = PayloadSelector::parse(Some(&json!(["a", "b.c"])), true, "w").ok();
        assert_eq!(
            include.and_then(|s| s.apply(p.clone())),
            Some(json!({"a": 1, "b": {"c": 2}}))
        );
        let exclude =
            PayloadSelector::parse(Some(&json!({"exclude": ["b.d", "e"]})), true, "w").ok();
        assert_eq!(
            exclude.and_then(|s| s.apply(p.clone())),
            Some(json!({"a": 1, "b": {"c": 2}}))
        );
        assert_eq!(
            PayloadSelector::parse(None, false, "w").ok(),
            Some(PayloadSelector::None)
        );
        assert!(PayloadSelector::parse(Some(&json!(3)), true, "with_payload").is_err());
    }

    #[test]
    fn loose_reads_number_arrays_as_vectors_and_keeps_everything_else() {
        let parse = |s: &str| serde_json::from_str::<Loose>(s).map_err(|e| e.to_string());
        assert!(matches!(
            parse("[0.5, -1, 2e3]"),
            Ok(Loose::Numbers(v)) if v == [0.5, -1.0, 2000.0]
        ));
        assert!(matches!(parse("[]"), Ok(Loose::Numbers(v)) if v.is_empty()));
        for (text, want) in [
            ("[[1, 2], [3]]", json!([[1.0, 2.0], [3.0]])),
            ("[1, \"x\", [2]]", json!([1.0, "x", [2.0]])),
            ("{\"nearest\": [1, 2]}", json!({"nearest": [1, 2]})),
            ("7", json!(7)),
            ("\"a1b2\"", json!("a1b2")),
            ("null", Value::Null),
        ] {
            match parse(text) {
                Ok(Loose::Json(v)) => assert_eq!(v, want, "{text}"),
                other => panic!("{text}: {other:?}"),
            }
        }
        assert!(parse("[1, 2").is_err());
        let e = vector_input(
            &parse("[1, \"x\"]")
                .map(Loose::into_value)
                .unwrap_or_default(),
            "query",
        )
        .err()
        .map(|e| e.message);
        assert!(e.is_some_and(|m| m.contains("query[1]")));
    }

    #[test]
    fn vector_inputs_name_the_bad_member() {
        let e = vector_struct(&json!({"text": [1, "x"]}), "points[2].vector")
            .err()
            .map(|e| e.message);
        assert!(
            e.is_some_and(|m| m.contains("points[2].vector.text[1]")),
            "a vector named text"
        );
        let e = vector_struct(&json!([1, "x"]), "points[2].vector")
            .err()
            .map(|e| e.message);
        assert!(e.is_some_and(|m| m.contains("points[2].vector[1]")));
        let e = vector_input(&json!({"text": "hi", "model": "clip"}), "query")
            .err()
            .map(|e| e.message);
        assert!(e.is_some_and(|m| m.contains("sentence-transformers/all-MiniLM-L6-v2")));
        assert!(matches!(
            vector_input(
                &json!({"text": "hi", "model": "sentence-transformers/all-minilm-l6-v2"}),
                "q"
            ),
            Ok(VectorInput::Document { .. })
        ));
    }
}
