//! Index-based evaluation against the reference: for random payloads, indexes and nested
//! filters, `evaluate` (sure rows, plus unsure rows decided by `matches`) equals `matches`
//! over every row; estimates bound the true count; plans that claim full indexing are exact.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

mod common;

use proptest::prelude::*;
use quiver_filter::{
    Condition, FieldIndexes, Filter, IndexKind, KeyPath, PointId, RowIds, Verdict, describe,
    estimate, evaluate,
};
use roaring::RoaringBitmap;

use common::{Payload, build, filter, index_fields, leaf, payload};

const KINDS: [IndexKind; 4] = [
    IndexKind::Keyword,
    IndexKind::Integer,
    IndexKind::Float,
    IndexKind::Bool,
];

fn truth(filter: &Filter, payloads: &[Payload], ids: &[PointId]) -> RoaringBitmap {
    payloads
        .iter()
        .zip(ids)
        .enumerate()
        .filter(|(_, (p, id))| filter.matches(**id, p))
        .map(|(r, _)| r as u32)
        .collect()
}

/// Evaluates `filter` every way and compares with `matches` on every row.
fn check_against_brute_force(
    payloads: &[Payload],
    fields: &[(KeyPath, IndexKind)],
    filter: &Filter,
    partial: bool,
    id_mode: u8,
) -> Result<(), TestCaseError> {
    let n = payloads.len() as u32;
    let covered = if partial {
        payloads.len() / 2
    } else {
        payloads.len()
    };
    let indexes = build(fields, payloads, covered);
    let ids: Vec<PointId> = (0..u64::from(n)).map(PointId::Num).collect();
    let lookup = |id: &PointId| match id {
        PointId::Num(x) if *x < u64::from(n) => u32::try_from(*x).ok(),
        _ => None,
    };
    let row_ids = match id_mode {
        0 => RowIds::Unknown,
        1 => RowIds::Slice(&ids),
        _ => RowIds::Lookup(&lookup),
    };
    let expected = truth(filter, payloads, &ids);

    let ev = evaluate(filter, &indexes, n, row_ids);
    prop_assert!(
        ev.matched.is_subset(&expected),
        "matched rows fail: {:?}",
        &ev.matched - &expected
    );
    prop_assert!(
        expected.is_subset(&ev.candidates()),
        "passing rows dropped: {:?}",
        &expected - &ev.candidates()
    );
    prop_assert!(ev.matched.is_disjoint(&ev.unsure));
    prop_assert!(ev.candidates().max().is_none_or(|r| r < n));
    for r in 0..n {
        let v = ev.verdict(r);
        prop_assert!(v != Verdict::Match || expected.contains(r));
        prop_assert!(v != Verdict::NoMatch || !expected.contains(r));
    }
    let resolved = ev
        .clone()
        .resolve(|r| filter.matches(ids[r as usize], &payloads[r as usize]));
    prop_assert_eq!(&resolved, &expected);

    let est = estimate(filter, &indexes, n);
    prop_assert!(
        est.min <= expected.len() && expected.len() <= est.max,
        "{:?} vs {}",
        est,
        expected.len()
    );
    prop_assert!(
        est.min <= est.expected && est.expected <= est.max,
        "{:?}",
        est
    );

    let plan = describe(filter, &indexes, n);
    prop_assert_eq!(plan.estimate, est);
    if plan.fully_indexed() && id_mode != 0 {
        prop_assert!(ev.is_exact(), "plan {} claims full indexing", plan);
    }

    let decoded = FieldIndexes::decode(&indexes.encode()).unwrap();
    prop_assert_eq!(&decoded, &indexes);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// One condition (or its negation) with each kind of index on its key, or none.
    #[test]
    fn single_condition_equals_brute_force(
        payloads in prop::collection::vec(payload(), 0..40),
        condition in leaf(),
        negate in any::<bool>(),
        id_mode in 0..3u8,
    ) {
        let filter = if negate {
            Filter { must_not: vec![condition.clone()], ..Filter::default() }
        } else {
            Filter { must: vec![condition.clone()], ..Filter::default() }
        };
        let key = match &condition {
            Condition::Field(fc) => fc.key.clone(),
            Condition::IsEmpty(k) | Condition::IsNull(k) => k.clone(),
            _ => KeyPath::parse("a").unwrap(),
        };
        check_against_brute_force(&payloads, &[], &filter, false, id_mode)?;
        for kind in KINDS {
            check_against_brute_force(&payloads, &[(key.clone(), kind)], &filter, false, id_mode)?;
        }
    }

    #[test]
    fn nested_filter_equals_brute_force(
        payloads in prop::collection::vec(payload(), 0..40),
        fields in index_fields(),
        filter in filter(),
        partial in prop::bool::weighted(0.15),
        id_mode in 0..3u8,
    ) {
        check_against_brute_force(&payloads, &fields, &filter, partial, id_mode)?;
    }

    #[test]
    fn filters_round_trip_through_json(filter in filter()) {
        let json = filter.to_json();
        prop_assert_eq!(&Filter::from_json(&json).unwrap(), &filter);
        prop_assert_eq!(&Filter::parse(&json.to_string()).unwrap(), &filter);
    }
}

#[test]
fn rows_without_ids_or_index_are_unsure() {
    let payloads: Vec<Payload> = (0..4)
        .map(|i| serde_json::json!({"a": i}).as_object().unwrap().clone())
        .collect();
    let fields = vec![(KeyPath::parse("a").unwrap(), IndexKind::Integer)];
    let indexes = build(&fields, &payloads, 2);
    let f = Filter::parse(r#"{"must": [{"key": "a", "range": {"gte": 1}}]}"#).unwrap();
    let ev = evaluate(&f, &indexes, 4, RowIds::Unknown);
    assert_eq!(ev.matched.iter().collect::<Vec<_>>(), vec![1]);
    assert_eq!(ev.unsure.iter().collect::<Vec<_>>(), vec![2, 3]);
    assert_eq!(
        describe(&f, &indexes, 4).to_string(),
        "a: integer index (1..3 rows, ~2), some rows checked per point"
    );

    let ids = [PointId::Num(10), PointId::Num(11)];
    let f = Filter::parse(r#"{"must": [{"has_id": [11, 12]}]}"#).unwrap();
    let ev = evaluate(&f, &FieldIndexes::new(), 4, RowIds::Slice(&ids));
    assert_eq!(ev.matched.iter().collect::<Vec<_>>(), vec![1]);
    assert_eq!(ev.unsure.iter().collect::<Vec<_>>(), vec![2, 3]);
}
