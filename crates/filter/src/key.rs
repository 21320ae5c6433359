//! Payload key paths: `a`, `a.b`, `a[].b`, `a[2]`, and how they select values in a payload.

use std::fmt;

use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// A path into a JSON payload, as written in a filter's `"key"` or an index declaration.
///
/// Grammar: names separated by `.`, each name optionally followed by `[]` (every element of
/// an array) or `[N]` (element `N`). A name is one or more characters other than `.`, `[`
/// and `]`; there is no quoting, so a payload member whose name contains those characters
/// cannot be addressed.
///
/// Selection follows Qdrant: `.name` descends into an object (anything else selects
/// nothing), `[]` fans out over an array's elements, `[N]` takes one element. A path selects
/// zero or more values; a selected array is *not* flattened here (conditions look inside it,
/// see [`crate::Filter`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyPath {
    /// Canonical text (`a[1]` for `a[01]`), also the name field indexes are looked up by.
    text: String,
    /// Never empty; the first step is always a `Name`.
    steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Step {
    Name(String),
    Each,
    Index(usize),
}

impl KeyPath {
    /// Parses a key path; the error names the key and what is wrong with it.
    pub fn parse(key: &str) -> Result<KeyPath> {
        parse_steps(key)
            .map(|steps| KeyPath {
                text: render(&steps),
                steps,
            })
            .map_err(|reason| Error::InvalidKey {
                path: None,
                key: key.to_string(),
                reason,
            })
    }

    /// The canonical text of the path.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Calls `f` on each value the path selects in `payload`, stopping at the first `true`;
    /// returns whether some call returned `true`.
    pub(crate) fn any_value<'v, F>(&self, payload: &'v Map<String, Value>, f: &mut F) -> bool
    where
        F: FnMut(&'v Value) -> bool,
    {
        let Some((Step::Name(first), rest)) = self.steps.split_first() else {
            return false;
        };
        payload.get(first).is_some_and(|v| walk(rest, v, f))
    }

    /// The values the path selects in `payload`, in document order.
    pub fn values<'v>(&self, payload: &'v Map<String, Value>) -> Vec<&'v Value> {
        let mut out = Vec::new();
        self.any_value(payload, &mut |v| {
            out.push(v);
            false
        });
        out
    }
}

fn walk<'v, F>(steps: &[Step], value: &'v Value, f: &mut F) -> bool
where
    F: FnMut(&'v Value) -> bool,
{
    let Some((step, rest)) = steps.split_first() else {
        return f(value);
    };
    match (step, value) {
        (Step::Name(name), Value::Object(map)) => map.get(name).is_some_and(|v| walk(rest, v, f)),
        (Step::Each, Value::Array(items)) => items.iter().any(|v| walk(rest, v, f)),
        (Step::Index(i), Value::Array(items)) => items.get(*i).is_some_and(|v| walk(rest, v, f)),
        _ => false,
    }
}

/// Key paths with more steps than this are rejected (selection recurses once per step).
pub const MAX_KEY_STEPS: usize = 64;

fn parse_steps(key: &str) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    for (n, part) in key.split('.').enumerate() {
        let (name, mut brackets) = match part.find(['[', ']']) {
            Some(at) => part.split_at(at),
            None => (part, ""),
        };
        if name.is_empty() {
            return Err(if part.is_empty() {
                format!("empty name in part {}", n + 1)
            } else {
                format!("part {} (\"{part}\") must start with a name", n + 1)
            });
        }
        steps.push(Step::Name(name.to_string()));
        while !brackets.is_empty() {
            let Some(inner) = brackets.strip_prefix('[') else {
                return Err(format!("unexpected \"{brackets}\" in \"{part}\""));
            };
            let Some(close) = inner.find(']') else {
                return Err(format!("\"[\" without \"]\" in \"{part}\""));
            };
            let (index, after) = inner.split_at(close);
            if index.is_empty() {
                steps.push(Step::Each);
            } else if index.bytes().all(|b| b.is_ascii_digit()) {
                let i = index
                    .parse::<usize>()
                    .map_err(|_| format!("array index {index} is too large"))?;
                steps.push(Step::Index(i));
            } else {
                return Err(format!(
                    "\"[{index}]\" is neither \"[]\" nor an array index like \"[0]\""
                ));
            }
            brackets = after.get(1..).unwrap_or_default();
        }
    }
    if steps.len() > MAX_KEY_STEPS {
        return Err(format!("more than {MAX_KEY_STEPS} steps"));
    }
    Ok(steps)
}

fn render(steps: &[Step]) -> String {
    let mut out = String::new();
    for step in steps {
        match step {
            Step::Name(name) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(name);
            }
            Step::Each => out.push_str("[]"),
            Step::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for KeyPath {
    type Err = Error;
    fn from_str(s: &str) -> Result<KeyPath> {
        KeyPath::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn select(key: &str, payload: Value) -> Vec<Value> {
        let Value::Object(map) = payload else {
            panic!("payload must be an object")
        };
        KeyPath::parse(key)
            .unwrap()
            .values(&map)
            .into_iter()
            .cloned()
            .collect()
    }

    #[test]
    fn selects_like_qdrant() {
        let p = json!({"a": {"b": 1}, "arr": [{"b": 2}, {"b": [3, 4]}, 5], "n": null});
        assert_eq!(select("a.b", p.clone()), vec![json!(1)]);
        assert_eq!(select("a", p.clone()), vec![json!({"b": 1})]);
        assert_eq!(select("arr[].b", p.clone()), vec![json!(2), json!([3, 4])]);
        assert_eq!(select("arr[1].b[0]", p.clone()), vec![json!(3)]);
        assert_eq!(select("arr.b", p.clone()), Vec::<Value>::new());
        assert_eq!(select("arr[9]", p.clone()), Vec::<Value>::new());
        assert_eq!(select("n", p.clone()), vec![json!(null)]);
        assert_eq!(select("missing.x", p), Vec::<Value>::new());
    }

    #[test]
    fn canonical_text() {
        assert_eq!(KeyPath::parse("a[01].b[]").unwrap().as_str(), "a[1].b[]");
        assert_eq!(KeyPath::parse("x").unwrap().to_string(), "x");
    }

    #[test]
    fn rejects_bad_keys() {
        let reason = |k: &str| match KeyPath::parse(k) {
            Err(Error::InvalidKey { reason, .. }) => reason,
            other => panic!("{k}: {other:?}"),
        };
        assert_eq!(reason(""), "empty name in part 1");
        assert_eq!(reason("a..b"), "empty name in part 2");
        assert_eq!(reason("a."), "empty name in part 2");
        assert_eq!(reason("[]"), "part 1 (\"[]\") must start with a name");
        assert_eq!(
            reason("a[x]"),
            "\"[x]\" is neither \"[]\" nor an array index like \"[0]\""
        );
        assert_eq!(reason("a[0"), "\"[\" without \"]\" in \"a[0\"");
        assert_eq!(reason("a[0]x"), "unexpected \"x\" in \"a[0]x\"");
        assert_eq!(reason("a]"), "unexpected \"]\" in \"a]\"");
        assert_eq!(
            KeyPath::parse("a..b").unwrap_err().to_string(),
            "invalid key \"a..b\": empty name in part 2"
        );
    }
}
