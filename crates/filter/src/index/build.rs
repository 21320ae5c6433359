//! Building a [`FieldIndex`] from payloads.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::{FieldIndex, IndexKind, Postings, RowSets, Values};
use crate::check::is_empty_value;
use crate::key::KeyPath;

/// Accumulates one field's values row by row; [`FieldIndexBuilder::finish`] sorts them into
/// a [`FieldIndex`]. Rows may come in any order, each at most once.
#[derive(Debug)]
pub struct FieldIndexBuilder {
    key: KeyPath,
    values: Pending,
    sets: RowSets,
    /// One past the largest row added.
    rows: u32,
}

#[derive(Debug)]
enum Pending {
    Keyword(HashMap<Box<str>, Vec<u32>>),
    Integer(Vec<(i64, u32)>),
    Float(Vec<(f64, u32)>),
    /// Rows holding `false`, rows holding `true`.
    Bool([Vec<u32>; 2]),
}

impl Pending {
    /// Indexes `x` (not null) for `row`; false if it is not of the index's kind.
    fn push(&mut self, x: &Value, row: u32) -> bool {
        match (self, x) {
            (Pending::Keyword(map), Value::String(s)) => {
                match map.get_mut(s.as_str()) {
                    Some(rows) => rows.push(row),
                    None => {
                        map.insert(s.as_str().into(), vec![row]);
                    }
                }
                true
            }
            (Pending::Integer(pairs), Value::Number(n)) => match n.as_i64() {
                Some(i) => {
                    pairs.push((i, row));
                    true
                }
                None => false,
            },
            (Pending::Float(pairs), Value::Number(n)) => match n.as_f64() {
                // `+ 0.0` turns -0 into +0, which ranges do not tell apart.
                Some(f) if f.is_finite() => {
                    pairs.push((f + 0.0, row));
                    true
                }
                _ => false,
            },
            (Pending::Bool(rows), Value::Bool(b)) => {
                rows[usize::from(*b)].push(row);
                true
            }
            _ => false,
        }
    }
}

impl FieldIndexBuilder {
    pub fn new(key: KeyPath, kind: IndexKind) -> FieldIndexBuilder {
        let values = match kind {
            IndexKind::Keyword => Pending::Keyword(HashMap::new()),
            IndexKind::Integer => Pending::Integer(Vec::new()),
            IndexKind::Float => Pending::Float(Vec::new()),
            IndexKind::Bool => Pending::Bool([Vec::new(), Vec::new()]),
        };
        FieldIndexBuilder {
            key,
            values,
            sets: RowSets::default(),
            rows: 0,
        }
    }

    /// Adds the row's payload. Add every row of the segment, including rows without the
    /// field: the index then covers `0..=max row`.
    pub fn add(&mut self, row: u32, payload: &Map<String, Value>) {
        self.rows = self.rows.max(row.saturating_add(1));
        let (mut filled, mut null, mut other) = (false, false, false);
        let values = &mut self.values;
        let mut index = |x: &Value| {
            if !x.is_null() && !values.push(x, row) {
                other = true;
            }
        };
        self.key.any_value(payload, &mut |v| {
            null |= v.is_null();
            filled |= !is_empty_value(v);
            match v {
                Value::Array(items) => items.iter().for_each(&mut index),
                x => index(x),
            }
            false
        });
        for (set, yes) in [
            (&mut self.sets.filled, filled),
            (&mut self.sets.null, null),
            (&mut self.sets.other, other),
        ] {
            if yes {
                set.insert(row);
            }
        }
    }

    pub fn finish(self) -> FieldIndex {
        let (values, runs, rows) = match self.values {
            Pending::Keyword(map) => {
                let mut entries: Vec<(Box<str>, Vec<u32>)> = map.into_iter().collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                let (keys, runs): (Vec<_>, Vec<_>) = entries.into_iter().unzip();
                let (lens, rows) = concat_runs(runs);
                (Values::Keyword(keys), lens, rows)
            }
            Pending::Integer(pairs) => {
                let (keys, lens, rows) = group(pairs, i64::cmp);
                (Values::Integer(keys), lens, rows)
            }
            Pending::Float(pairs) => {
                let (keys, lens, rows) = group(pairs, f64::total_cmp);
                (Values::Float(keys), lens, rows)
            }
            Pending::Bool([no, yes]) => {
                let mut keys = Vec::new();
                let mut runs = Vec::new();
                for (b, run) in [(false, no), (true, yes)] {
                    if !run.is_empty() {
                        keys.push(b);
                        runs.push(run);
                    }
                }
                let (lens, rows) = concat_runs(runs);
                (Values::Bool(keys), lens, rows)
            }
        };
        FieldIndex::from_parts(
            self.key,
            self.rows,
            values,
            Postings::new(&runs, rows),
            self.sets,
        )
    }
}

/// Sorts and deduplicates each run, then concatenates them: (run lengths, rows).
fn concat_runs(runs: Vec<Vec<u32>>) -> (Vec<usize>, Vec<u32>) {
    let mut lens = Vec::with_capacity(runs.len());
    let mut rows = Vec::with_capacity(runs.iter().map(Vec::len).sum());
    for mut run in runs {
        run.sort_unstable();
        run.dedup();
        lens.push(run.len());
        rows.extend_from_slice(&run);
    }
    (lens, rows)
}

/// Groups (value, row) pairs by value: (distinct values, run lengths, rows).
fn group<T: Copy>(
    mut pairs: Vec<(T, u32)>,
    cmp: impl Fn(&T, &T) -> std::cmp::Ordering,
) -> (Vec<T>, Vec<usize>, Vec<u32>) {
    pairs.sort_unstable_by(|a, b| cmp(&a.0, &b.0).then(a.1.cmp(&b.1)));
    pairs.dedup_by(|a, b| cmp(&a.0, &b.0).is_eq() && a.1 == b.1);
    let mut keys: Vec<T> = Vec::new();
    let mut lens: Vec<usize> = Vec::new();
    let mut rows = Vec::with_capacity(pairs.len());
    for (value, row) in pairs {
        match (keys.last(), lens.last_mut()) {
            (Some(last), Some(len)) if cmp(last, &value).is_eq() => *len += 1,
            _ => {
                keys.push(value);
                lens.push(1);
            }
        }
        rows.push(row);
    }
    (keys, lens, rows)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::index::ValueSet;

    #[test]
    fn indexes_values_and_row_sets() {
        let payloads = [
            json!({"f": "a"}),
            json!({"f": ["b", "a", "a"]}),
            json!({"f": null}),
            json!({}),
            json!({"f": []}),
            json!({"f": [null, 5]}),
            json!({"f": {"x": 1}}),
        ];
        let maps: Vec<Map<String, Value>> = payloads
            .iter()
            .map(|p| p.as_object().unwrap().clone())
            .collect();
        let index = FieldIndex::build(
            KeyPath::parse("f").unwrap(),
            IndexKind::Keyword,
            maps.iter().enumerate().map(|(r, p)| (r as u32, p)),
        );
        assert_eq!(index.rows(), 7);
        assert_eq!(index.values, Values::Keyword(vec!["a".into(), "b".into()]));
        assert_eq!(index.postings.run(0), &[0, 1]);
        assert_eq!(index.postings.run(1), &[1]);
        assert!(!index.single_valued);
        assert_eq!(index.typed.iter().collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(index.other.iter().collect::<Vec<_>>(), vec![5, 6]);
        assert_eq!(index.filled.iter().collect::<Vec<_>>(), vec![0, 1, 5, 6]);
        assert_eq!(index.null.iter().collect::<Vec<_>>(), vec![2]);
        assert_eq!(
            index.postings.union(&ValueSet::Span(0..2)).len(),
            2,
            "rows, not pairs"
        );
    }

    #[test]
    fn numbers_by_kind() {
        let maps: Vec<Map<String, Value>> =
            [json!({"n": 3}), json!({"n": 2.5}), json!({"n": -0.0})]
                .iter()
                .map(|p| p.as_object().unwrap().clone())
                .collect();
        let rows = || maps.iter().enumerate().map(|(r, p)| (r as u32, p));
        let key = KeyPath::parse("n").unwrap();
        let ints = FieldIndex::build(key.clone(), IndexKind::Integer, rows());
        assert_eq!(ints.values, Values::Integer(vec![3]));
        assert_eq!(ints.other.iter().collect::<Vec<_>>(), vec![1, 2]);
        let floats = FieldIndex::build(key, IndexKind::Float, rows());
        assert_eq!(floats.values, Values::Float(vec![0.0, 2.5, 3.0]));
        assert!(floats.other.is_empty());
    }
}
