//! `quiver bench --filters`: filtered search on the layout of `../shared/datasets/wordnet`:
//! `base.jsonl` (row i = id i; its members but `id` and `text` are the payload), a filters
//! file (one `{"name", "filter", "selectivity"}` per line) and `groundtruth.<name>.ivecs`.

use anyhow::{Context, Result, bail};
use quiver_engine::{Collection, FieldIndexKind, Filter, Payload, SearchRequest};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

/// One line of the filters file.
pub struct NamedFilter {
    pub name: String,
    pub filter: Filter,
    pub selectivity: Option<f64>,
}

/// Reads the payloads of `base.jsonl`: row `id` gets the object without `id` and `text`.
pub fn read_payloads(path: &Path, n: usize) -> Result<Vec<Payload>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut out = vec![Payload::new(); n];
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("{}: line {}", path.display(), i + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let Value::Object(mut o) = serde_json::from_str(&line)
            .with_context(|| format!("{}: line {}: not JSON", path.display(), i + 1))?
        else {
            bail!("{}: line {}: not a JSON object", path.display(), i + 1);
        };
        let row = o
            .remove("id")
            .and_then(|v| v.as_u64())
            .map_or(i, |x| x as usize);
        o.remove("text");
        match out.get_mut(row) {
            Some(slot) => *slot = o,
            None => bail!(
                "{}: line {}: id {row} beyond the {n} base vectors",
                path.display(),
                i + 1
            ),
        }
    }
    Ok(out)
}

pub fn read_filters(path: &Path) -> Result<Vec<NamedFilter>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let at = || format!("{}: line {}", path.display(), i + 1);
        let v: Value = serde_json::from_str(line).with_context(at)?;
        let name = v["name"]
            .as_str()
            .with_context(|| format!("{}: no \"name\"", at()))?;
        let filter =
            Filter::from_json(&v["filter"]).with_context(|| format!("{}: filter", at()))?;
        out.push(NamedFilter {
            name: name.to_string(),
            filter,
            selectivity: v["selectivity"].as_f64(),
        });
    }
    Ok(out)
}

/// Every `"key"` member in a filter's JSON, each once.
fn keys_of(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                match (k.as_str(), x) {
                    ("key", Value::String(s)) => {
                        if !out.contains(s) {
                            out.push(s.clone());
                        }
                    }
                    _ => keys_of(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| keys_of(x, out)),
        _ => {}
    }
}

/// The index kind for a top-level key, from the values it holds: strings -> keyword,
/// booleans -> bool, integers only -> integer, other numbers -> float.
fn infer_kind(key: &str, payloads: &[Payload]) -> Option<FieldIndexKind> {
    let (mut string, mut boolean, mut integer, mut float) = (false, false, false, false);
    for p in payloads {
        let values: Vec<&Value> = match p.get(key) {
            Some(Value::Array(a)) => a.iter().collect(),
            Some(v) => vec![v],
            None => continue,
        };
        for v in values {
            match v {
                Value::String(_) => string = true,
                Value::Bool(_) => boolean = true,
                Value::Number(x) if x.is_i64() || x.is_u64() => integer = true,
                Value::Number(_) => float = true,
                _ => {}
            }
        }
    }
    match (string, boolean, integer, float) {
        (true, ..) => Some(FieldIndexKind::Keyword),
        (_, true, ..) => Some(FieldIndexKind::Bool),
        (_, _, _, true) => Some(FieldIndexKind::Float),
        (_, _, true, _) => Some(FieldIndexKind::Integer),
        _ => None,
    }
}

/// Declares a field index for every key the filters use, with the kind its values call for.
pub fn declare_indexes(
    c: &Collection,
    filters: &[NamedFilter],
    payloads: &[Payload],
) -> Result<BTreeMap<String, FieldIndexKind>> {
    let mut keys = Vec::new();
    for f in filters {
        keys_of(&f.filter.to_json(), &mut keys);
    }
    let mut declared = BTreeMap::new();
    for key in keys {
        if let Some(kind) = infer_kind(&key, payloads) {
            c.create_field_index(&key, kind)?;
            declared.insert(key, kind);
        }
    }
    Ok(declared)
}

/// Requests for the first `nq` queries with a filter.
pub fn requests(
    queries: &[f32],
    dim: usize,
    nq: usize,
    k: usize,
    ef: Option<usize>,
    filter: &Filter,
) -> Vec<SearchRequest> {
    queries
        .chunks_exact(dim)
        .take(nq)
        .map(|q| SearchRequest {
            ef,
            filter: Some(filter.clone()),
            ..SearchRequest::new(q.to_vec(), k)
        })
        .collect()
}
