//! Changes to existing points' payloads: which points ([`PointSelector`]), what change
//! ([`PayloadUpdate`]) and the JSON edit itself. `Collection::update_payload`
//! (`collection/update.rs`) applies them under the state lock and logs the resulting points.

#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

use crate::point::Payload;
use quiver_filter::{Filter, MAX_KEY_STEPS};
use quiver_storage::PointId;
use serde_json::Value;

/// Which points an update applies to.
#[derive(Debug, Clone, PartialEq)]
pub enum PointSelector {
    /// These points; every one must exist.
    Ids(Vec<PointId>),
    /// The points whose payload passes the filter (see `Collection::update_payload` for
    /// when it is evaluated).
    Filter(Filter),
}

/// A change to the payload of existing points: Qdrant's set, overwrite, delete and clear
/// payload.
///
/// Key paths (`Set`'s `key`, `DeleteKeys`' keys) are **dotted object paths** only: `a.b` is
/// member `b` of the object in member `a`. Array steps (`a[0]`, `a[]`) and quoting are not
/// supported; a key with `[`, `]`, an empty part or more than [`MAX_KEY_STEPS`] parts is
/// refused. So a member whose name holds a `.` cannot be addressed by a key path (`Set`
/// without `key` still sets it, and `Overwrite` or `Clear` remove it).
#[derive(Debug, Clone, PartialEq)]
pub enum PayloadUpdate {
    /// Merges `payload`'s members into the stored payload, replacing members of the same
    /// name; other members stay. With `key`, merges them into the object at that path
    /// instead, creating missing objects on the way and replacing any value on the path that
    /// is not an object (as Qdrant does).
    Set {
        payload: Payload,
        key: Option<String>,
    },
    /// Replaces the whole payload.
    Overwrite(Payload),
    /// Removes these members (a dotted path removes a nested member); a path that selects
    /// nothing is ignored.
    DeleteKeys(Vec<String>),
    /// Empties the payload.
    Clear,
}

impl PayloadUpdate {
    /// Checks the key paths; the error names the key and what is wrong with it.
    pub(crate) fn check(&self) -> Result<(), String> {
        let keys: Vec<&String> = match self {
            PayloadUpdate::Set { key, .. } => key.iter().collect(),
            PayloadUpdate::DeleteKeys(keys) => keys.iter().collect(),
            PayloadUpdate::Overwrite(_) | PayloadUpdate::Clear => Vec::new(),
        };
        for key in keys {
            parse_key(key)?;
        }
        Ok(())
    }

    /// Applies the change to one payload. Key paths were checked ([`PayloadUpdate::check`]);
    /// one that does not parse changes nothing.
    pub(crate) fn apply(&self, payload: &mut Payload) {
        match self {
            PayloadUpdate::Set { payload: new, key } => match key.as_deref().map(parse_key) {
                None => merge_at(payload, &[], new),
                Some(Ok(parts)) => merge_at(payload, &parts, new),
                Some(Err(_)) => {}
            },
            PayloadUpdate::Overwrite(new) => *payload = new.clone(),
            PayloadUpdate::DeleteKeys(keys) => {
                for key in keys {
                    if let Ok(parts) = parse_key(key) {
                        remove_at(payload, &parts);
                    }
                }
            }
            PayloadUpdate::Clear => payload.clear(),
        }
    }
}

/// Splits a dotted object path into its member names.
fn parse_key(key: &str) -> Result<Vec<&str>, String> {
    let parts: Vec<&str> = key.split('.').collect();
    if parts.len() > MAX_KEY_STEPS {
        return Err(format!("key `{key}`: more than {MAX_KEY_STEPS} parts"));
    }
    for (n, part) in parts.iter().enumerate() {
        if part.is_empty() {
            return Err(format!("key `{key}`: part {} is empty", n + 1));
        }
        if part.contains(['[', ']']) {
            return Err(format!(
                "key `{key}`: array steps (`[]`, `[N]`) are not supported in payload updates, only dotted object paths like `a.b`"
            ));
        }
    }
    Ok(parts)
}

/// Merges `new` into the object at `parts` below `payload`, making it one: a missing member
/// becomes an object, and so does a member on the path that holds something else.
fn merge_at(payload: &mut Payload, parts: &[&str], new: &Payload) {
    let Some((first, rest)) = parts.split_first() else {
        payload.extend(new.iter().map(|(k, v)| (k.clone(), v.clone())));
        return;
    };
    let slot = payload
        .entry(first.to_string())
        .or_insert_with(|| Value::Object(Payload::new()));
    match slot {
        Value::Object(map) => merge_at(map, rest, new),
        other => {
            let mut map = Payload::new();
            merge_at(&mut map, rest, new);
            *other = Value::Object(map);
        }
    }
}

/// Removes the member at `parts`, if every step before it is an object holding the next.
fn remove_at(payload: &mut Payload, parts: &[&str]) {
    let Some((last, path)) = parts.split_last() else {
        return;
    };
    let mut at = payload;
    for part in path {
        match at.get_mut(*part) {
            Some(Value::Object(map)) => at = map,
            _ => return,
        }
    }
    at.remove(*last);
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Payload {
        match v {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn applied(update: PayloadUpdate, before: Value) -> Value {
        update.check().unwrap();
        let mut p = obj(before);
        update.apply(&mut p);
        Value::Object(p)
    }

    fn set(payload: Value, key: Option<&str>) -> PayloadUpdate {
        PayloadUpdate::Set {
            payload: obj(payload),
            key: key.map(str::to_string),
        }
    }

    #[test]
    fn set_merges_top_level_members() {
        assert_eq!(
            applied(
                set(json!({"b": 2, "c": {"x": 1}}), None),
                json!({"a": 1, "c": {"y": 2}})
            ),
            json!({"a": 1, "b": 2, "c": {"x": 1}})
        );
    }

    #[test]
    fn set_with_key_merges_into_the_nested_object_and_makes_the_path() {
        let before = json!({"a": {"b": {"keep": 1}, "n": 5}, "z": 0});
        assert_eq!(
            applied(set(json!({"x": 1}), Some("a.b")), before.clone()),
            json!({"a": {"b": {"keep": 1, "x": 1}, "n": 5}, "z": 0})
        );
        // Missing objects are created; values on the path that are not objects are replaced.
        assert_eq!(
            applied(set(json!({"x": 1}), Some("a.n.m")), before.clone()),
            json!({"a": {"b": {"keep": 1}, "n": {"m": {"x": 1}}}, "z": 0})
        );
        assert_eq!(
            applied(set(json!({"x": 1}), Some("new.deep")), json!({})),
            json!({"new": {"deep": {"x": 1}}})
        );
    }

    #[test]
    fn delete_keys_removes_top_level_and_nested_members() {
        let before = json!({"a": {"b": 1, "c": 2}, "d": 3, "e": [1]});
        let update =
            PayloadUpdate::DeleteKeys(vec!["a.b".into(), "d".into(), "e.x".into(), "nope".into()]);
        assert_eq!(applied(update, before), json!({"a": {"c": 2}, "e": [1]}));
    }

    #[test]
    fn overwrite_and_clear() {
        let before = json!({"a": 1});
        assert_eq!(
            applied(
                PayloadUpdate::Overwrite(obj(json!({"b": 2}))),
                before.clone()
            ),
            json!({"b": 2})
        );
        assert_eq!(applied(PayloadUpdate::Clear, before), json!({}));
    }

    #[test]
    fn key_paths_other_than_dotted_names_are_refused() {
        for key in ["", "a..b", ".a", "a.", "a[0]", "a[].b", "a]"] {
            let err = set(json!({}), Some(key)).check().unwrap_err();
            assert!(err.contains(&format!("`{key}`")), "{key}: {err}");
            assert!(PayloadUpdate::DeleteKeys(vec![key.into()]).check().is_err());
        }
        let long = vec!["a"; MAX_KEY_STEPS + 1].join(".");
        assert!(PayloadUpdate::DeleteKeys(vec![long]).check().is_err());
        assert!(
            PayloadUpdate::DeleteKeys(vec![vec!["a"; MAX_KEY_STEPS].join(".")])
                .check()
                .is_ok()
        );
    }
}
