//! Reads in payload-value order: Qdrant's scroll with `order_by`.

use super::*;
use crate::point::OrderValue;
use quiver_filter::{FieldIndex, NumericValues, RoaringBitmap};
use std::cmp::Ordering as Cmp;
use std::ops::Range;

impl Collection {
    /// Up to `limit` live points passing `filter`, ordered by their values of payload field
    /// `key`, each with the value it was placed at. As in Qdrant, `key` needs an integer or
    /// float field index, and a point appears once per distinct value it holds (an array of
    /// numbers: once per element). The values are those the index takes: integers within
    /// `i64` for an integer index (not `3.5`, nor `3.0`), every number for a float index.
    ///
    /// Ascending by (value, id); `descending`, exactly the reverse. `start_from` (inclusive)
    /// skips the values before it in that order.
    ///
    /// Reads one snapshot. Sealed segments are walked on their field index in value order,
    /// stopping after `limit` matches; the mutable segment (which has no field index) gets one
    /// built over its matching rows.
    pub fn scroll_ordered(
        &self,
        key: &str,
        descending: bool,
        start_from: Option<f64>,
        limit: usize,
        filter: Option<&Filter>,
        with: With,
    ) -> Result<Vec<(OrderValue, Record)>> {
        self.check_usable()?;
        let path =
            KeyPath::parse(key).map_err(|e| self.invalid(format!("order_by key `{key}`: {e}")))?;
        let kind = self.payload_indexes.read().get(path.as_str()).copied();
        let order = Order {
            path,
            descending,
            start_from,
            limit,
        };
        match kind {
            Some(FieldKind::Integer) => self.ordered::<i64>(&order, filter, with),
            Some(FieldKind::Float) => self.ordered::<f64>(&order, filter, with),
            Some(other) => Err(self.invalid(format!(
                "cannot order by `{key}`: it has a {other} index, and ordering needs an integer or float index"
            ))),
            None => Err(self.invalid(format!(
                "cannot order by `{key}`: it has no field index; create an integer or float index on it"
            ))),
        }
    }

    fn ordered<T: Numeric>(
        &self,
        order: &Order,
        filter: Option<&Filter>,
        with: With,
    ) -> Result<Vec<(OrderValue, Record)>> {
        if order.start_from.is_some_and(f64::is_nan) {
            return Err(self.invalid("order_by start_from is not a number"));
        }
        if order.limit == 0 {
            return Ok(Vec::new());
        }
        let snap = self.snapshot();
        let mut hits: Vec<Hit<T>> = Vec::new();
        for (s, seg) in snap.segments.iter().enumerate() {
            seg.view_at(snap.seq, |v| {
                let passing: RoaringBitmap = match filter {
                    Some(f) => RowFilter::new(f, seg, v).passing().collect(),
                    None => (0..v.rows() as u32)
                        .filter(|&r| !v.deleted.is_deleted(r))
                        .collect(),
                };
                if passing.is_empty() {
                    return;
                }
                let fields = seg.fields();
                let built;
                let index = match fields.get(order.path.as_str()) {
                    Some(index) if index.kind() == T::KIND && index.rows() as usize == v.rows() => {
                        index
                    }
                    _ => {
                        let payloads: Vec<(u32, crate::Payload)> = passing
                            .iter()
                            .filter_map(|r| {
                                let id = v.ids.get(r as usize)?;
                                Some((r, payload_or_empty(*id, v.payload(r))))
                            })
                            .collect();
                        built = FieldIndex::build(
                            order.path.clone(),
                            T::KIND,
                            payloads.iter().map(|(r, p)| (*r, p)),
                        );
                        &built
                    }
                };
                walk(index, v, &passing, order, s, &mut hits);
            });
        }
        hits.sort_unstable_by(|a, b| {
            let asc = a
                .value
                .partial_cmp(&b.value)
                .unwrap_or(Cmp::Equal)
                .then(a.id.cmp(&b.id));
            if order.descending { asc.reverse() } else { asc }
        });
        hits.truncate(order.limit);
        hits.into_iter()
            .filter_map(|hit| {
                let seg = snap.segments.get(hit.segment)?;
                let record = seg.view_at(snap.seq, |v| self.record(v, hit.row, with));
                Some(record.map(|r| (hit.value.order_value(), r)))
            })
            .collect()
    }
}

/// An ordered read, as asked.
struct Order {
    path: KeyPath,
    descending: bool,
    start_from: Option<f64>,
    limit: usize,
}

/// A point at one of its values: `row` of segment number `segment` in the snapshot.
struct Hit<T> {
    value: T,
    id: PointId,
    segment: usize,
    row: u32,
}

/// Adds to `hits` the passing rows of one segment in `order`, value by value, until at least
/// `order.limit` are added (the last value's rows all are, so ties are cut by id later).
fn walk<T: Numeric>(
    index: &FieldIndex,
    v: &View<'_>,
    passing: &RoaringBitmap,
    order: &Order,
    segment: usize,
    hits: &mut Vec<Hit<T>>,
) {
    let Some(values) = index.numeric_values().and_then(T::slice) else {
        return;
    };
    let span = T::span(values, order.start_from, order.descending);
    let numbers: Box<dyn Iterator<Item = usize>> = if order.descending {
        Box::new(span.rev())
    } else {
        Box::new(span)
    };
    let mut added = 0;
    for i in numbers {
        if added >= order.limit {
            break;
        }
        let Some(&value) = values.get(i) else {
            break;
        };
        let mut group: Vec<(PointId, u32)> = index
            .value_rows(i)
            .iter()
            .filter(|&&r| passing.contains(r))
            .filter_map(|&r| v.ids.get(r as usize).map(|&id| (id, r)))
            .collect();
        group.sort_unstable();
        added += group.len();
        hits.extend(group.into_iter().map(|(id, row)| Hit {
            value,
            id,
            segment,
            row,
        }));
    }
}

/// The value type of a numeric field index.
trait Numeric: Copy + PartialOrd {
    const KIND: FieldKind;
    fn slice(values: NumericValues<'_>) -> Option<&[Self]>;
    /// Whether `self < from`, exactly.
    fn below(self, from: f64) -> bool;
    /// Whether `self > from`, exactly.
    fn above(self, from: f64) -> bool;
    fn order_value(self) -> OrderValue;

    /// The value numbers (positions in the ascending `values`) at or after `start_from` in
    /// the scan direction.
    fn span(values: &[Self], start_from: Option<f64>, descending: bool) -> Range<usize> {
        match (start_from, descending) {
            (None, _) => 0..values.len(),
            (Some(from), false) => values.partition_point(|x| x.below(from))..values.len(),
            (Some(from), true) => 0..values.partition_point(|x| !x.above(from)),
        }
    }
}

/// 2^63: the first `f64` above every `i64`.
const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;

impl Numeric for i64 {
    const KIND: FieldKind = FieldKind::Integer;

    fn slice(values: NumericValues<'_>) -> Option<&[i64]> {
        match values {
            NumericValues::Integer(v) => Some(v),
            NumericValues::Float(_) => None,
        }
    }

    // An `i64` is below a non-integer `f` exactly when it is below `ceil(f)`, which for `f`
    // in [-2^63, 2^63) is an `i64` (floats of that size are integers): no rounding.
    fn below(self, from: f64) -> bool {
        if from >= TWO_POW_63 {
            true
        } else if from < -TWO_POW_63 {
            false
        } else {
            self < from.ceil() as i64
        }
    }

    fn above(self, from: f64) -> bool {
        if from >= TWO_POW_63 {
            false
        } else if from < -TWO_POW_63 {
            true
        } else {
            self > from.floor() as i64
        }
    }

    fn order_value(self) -> OrderValue {
        OrderValue::Int(self)
    }
}

impl Numeric for f64 {
    const KIND: FieldKind = FieldKind::Float;

    fn slice(values: NumericValues<'_>) -> Option<&[f64]> {
        match values {
            NumericValues::Float(v) => Some(v),
            NumericValues::Integer(_) => None,
        }
    }

    fn below(self, from: f64) -> bool {
        self < from
    }

    fn above(self, from: f64) -> bool {
        self > from
    }

    fn order_value(self) -> OrderValue {
        OrderValue::Float(self)
    }
}

#[cfg(test)]
mod tests {
    use super::{Numeric, TWO_POW_63};

    #[test]
    fn integers_compare_exactly_with_floats() {
        let big = i64::MAX - 100; // rounds to 2^63 as f64
        assert!(big.below(TWO_POW_63));
        assert!(!big.above(TWO_POW_63));
        assert!(!(i64::MAX).below(i64::MAX as f64 - 2048.0));
        assert!(3i64.below(3.5) && !4i64.below(3.5) && 4i64.above(3.5) && !3i64.above(3.5));
        assert!(!3i64.below(3.0) && !3i64.above(3.0));
        assert!((-3i64).below(-2.5) && (-3i64).above(-3.5));
        assert!(i64::MIN.above(f64::NEG_INFINITY) && !i64::MIN.below(-TWO_POW_63));
        assert!(!i64::MIN.below(i64::MIN as f64) && !i64::MIN.above(i64::MIN as f64));
        assert!(5i64.below(f64::INFINITY) && !5i64.above(f64::INFINITY));
    }
}
