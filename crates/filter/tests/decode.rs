//! Field index bytes: the version 1 layout pinned by a golden example, versions checked, and
//! damaged or arbitrary bytes decode to an error or a consistent index, never a panic.

#![allow(clippy::unwrap_used, reason = "test helpers outside #[test] functions")]

mod common;

use proptest::prelude::*;
use quiver_filter::{Error, FieldIndex, FieldIndexes, INDEX_FORMAT_VERSION, IndexKind, KeyPath};
use serde_json::json;

use common::{Payload, index_kind, payload};

fn golden_index() -> FieldIndex {
    let payloads: Vec<Payload> = [
        json!({"k": 5}),
        json!({"k": [5, 7]}),
        json!({"k": null}),
        json!({"k": "s"}),
        json!({}),
    ]
    .iter()
    .map(|p| p.as_object().unwrap().clone())
    .collect();
    FieldIndex::build(
        KeyPath::parse("k").unwrap(),
        IndexKind::Integer,
        payloads.iter().enumerate().map(|(r, p)| (r as u32, p)),
    )
}

/// The example of `docs/filters.md`, byte for byte.
#[test]
fn version_1_layout() {
    #[rustfmt::skip]
    let expected: Vec<u8> = vec![
        0x01,                   // format version
        0x01,                   // kind: integer
        0x01, b'k',             // key
        0x05,                   // rows covered
        0x02,                   // distinct values
        5, 0, 0, 0, 0, 0, 0, 0, // 5
        7, 0, 0, 0, 0, 0, 0, 0, // 7
        0x02, 0x00, 0x00,       // rows of 5: 0, 1
        0x01, 0x01,             // rows of 7: 1
        0x01, 0x03,             // other: 3
        0x03, 0x00, 0x00, 0x01, // filled: 0, 1, 3
        0x01, 0x02,             // null: 2
    ];
    let index = golden_index();
    assert_eq!(index.encode(), expected);
    assert_eq!(FieldIndex::decode(&expected).unwrap(), index);
    assert_eq!(INDEX_FORMAT_VERSION, 1);

    let mut all = FieldIndexes::new();
    all.insert(index);
    let mut framed = vec![0x01, 0x01, (expected.len() - 1) as u8];
    framed.extend_from_slice(&expected[1..]);
    assert_eq!(all.encode(), framed);
    assert_eq!(FieldIndexes::decode(&framed).unwrap(), all);
}

#[test]
fn versions_are_checked() {
    let mut bytes = golden_index().encode();
    bytes[0] = 2;
    assert_eq!(
        FieldIndex::decode(&bytes).unwrap_err(),
        Error::NewerFormat {
            found: 2,
            supported: 1
        }
    );
    assert_eq!(
        FieldIndex::decode(&bytes).unwrap_err().to_string(),
        "field index format version 2 is newer than this build reads (up to 1): upgrade Quiver"
    );
    bytes[0] = 0;
    assert!(matches!(
        FieldIndex::decode(&bytes),
        Err(Error::Corrupt { offset: 0, .. })
    ));
    assert!(matches!(
        FieldIndex::decode(&[]),
        Err(Error::Corrupt { offset: 0, .. })
    ));
}

#[test]
fn corruption_names_the_offset() {
    let mut bytes = golden_index().encode();
    bytes.push(0);
    assert_eq!(
        FieldIndex::decode(&bytes).unwrap_err().to_string(),
        "corrupt field index at byte 35: 1 trailing bytes"
    );
    let mut bytes = golden_index().encode();
    bytes[14] = 4; // 7 becomes 4: values out of order
    assert_eq!(
        FieldIndex::decode(&bytes).unwrap_err().to_string(),
        "corrupt field index at byte 22: integers not strictly ascending"
    );
    let mut bytes = golden_index().encode();
    bytes[24] = 9; // the second row of 5 becomes 10, past the 5 rows covered
    assert_eq!(
        FieldIndex::decode(&bytes).unwrap_err().to_string(),
        "corrupt field index at byte 25: row past the index's 5 rows"
    );
}

#[derive(Debug, Clone)]
enum Damage {
    Flip(usize, u8),
    Truncate(usize),
    Insert(usize, u8),
    Overwrite(usize, Vec<u8>),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(i, m)| Damage::Flip(i, m)),
        any::<usize>().prop_map(Damage::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Damage::Insert(i, b)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..12))
            .prop_map(|(i, b)| Damage::Overwrite(i, b)),
    ]
}

fn apply(mut bytes: Vec<u8>, d: &Damage) -> Vec<u8> {
    let n = bytes.len().max(1);
    match d {
        Damage::Flip(i, m) => {
            if let Some(b) = bytes.get_mut(i % n) {
                *b ^= m;
            }
        }
        Damage::Truncate(i) => bytes.truncate(i % n),
        Damage::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), *b),
        Damage::Overwrite(i, new) => {
            for (j, b) in new.iter().enumerate() {
                if let Some(x) = bytes.get_mut(i % n + j) {
                    *x = *b;
                }
            }
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn damaged_bytes_never_panic(
        payloads in prop::collection::vec(payload(), 0..30),
        key in prop::sample::select(common::KEYS.to_vec()),
        kind in index_kind(),
        damages in prop::collection::vec(damage(), 1..4),
    ) {
        let index = FieldIndex::build(
            KeyPath::parse(key).unwrap(),
            kind,
            payloads.iter().enumerate().map(|(r, p)| (r as u32, p)),
        );
        let bytes = index.encode();
        prop_assert_eq!(&FieldIndex::decode(&bytes).unwrap(), &index);
        let mut all = FieldIndexes::new();
        all.insert(index);
        let all_bytes = all.encode();
        prop_assert_eq!(&FieldIndexes::decode(&all_bytes).unwrap(), &all);

        let damaged = damages.iter().fold(bytes, apply);
        if let Ok(decoded) = FieldIndex::decode(&damaged) {
            // Whatever decodes is a well-formed index.
            prop_assert_eq!(FieldIndex::decode(&decoded.encode()).unwrap(), decoded);
        }
        let damaged = damages.iter().fold(all_bytes, apply);
        if let Ok(decoded) = FieldIndexes::decode(&damaged) {
            prop_assert_eq!(FieldIndexes::decode(&decoded.encode()).unwrap(), decoded);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = FieldIndex::decode(&bytes);
        let _ = FieldIndexes::decode(&bytes);
        // With a valid version byte, to get past the first check.
        let mut v1 = bytes;
        v1.insert(0, 1);
        let _ = FieldIndex::decode(&v1);
        let _ = FieldIndexes::decode(&v1);
    }
}
