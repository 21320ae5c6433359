//! Arbitrary, mutated and token-built files: every reader returns `Ok` or `Err`, never
//! panics, never loops, and what it does return is consistent (one dimension per file,
//! positions increasing, row count as announced).

mod common;

use std::path::Path;

use proptest::collection::vec;
use proptest::prelude::*;
use quiver_formats::{Format, JsonFields, VectorReader, read_fvecs, read_ivecs};

use common::{f32_bytes, file, fvecs_bytes, npy_bytes};

/// Reads `bytes` as `name` (whose extension picks the format) with every applicable reader.
fn exercise(name: &str, bytes: &[u8]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = file(dir.path(), name, bytes);
    let format = Format::from_path(&path).expect("known extension");
    if format == Format::Fvecs {
        let as_f32 = read_fvecs(&path).map(|(v, n, d)| (v.len(), n, d));
        let as_i32 = read_ivecs(&path).map(|(v, n, d)| (v.len(), n, d));
        prop_assert_eq!(as_f32.as_ref().ok(), as_i32.as_ref().ok());
        if let Ok((len, n, d)) = as_f32 {
            prop_assert_eq!(len, n * d);
        }
    }
    drain_skipping_bad_lines(&path, format, bytes.len())
}

/// Reads every record, continuing after errors as a caller skipping bad lines would, and
/// checks what comes out.
fn drain_skipping_bad_lines(
    path: &Path,
    format: Format,
    file_len: usize,
) -> Result<(), TestCaseError> {
    let Ok(mut reader) = VectorReader::open(path, format, &JsonFields::default()) else {
        return Ok(());
    };
    prop_assert_eq!(reader.total_bytes(), file_len as u64);
    let rows_hint = reader.rows_hint();
    let mut records = 0u64;
    let mut errors = 0;
    let mut last_position = None;
    // Each call consumes a row or a line, or ends the stream.
    for _ in 0..=file_len + 1 {
        match reader.next_record() {
            Ok(None) => {
                if errors == 0 && format != Format::JsonLines {
                    prop_assert_eq!(Some(records), rows_hint);
                    prop_assert_eq!(reader.bytes_read(), reader.total_bytes());
                }
                return Ok(());
            }
            Ok(Some(record)) => {
                prop_assert_eq!(Some(record.vector.len()), reader.dim());
                prop_assert!(last_position < Some(record.position));
                last_position = Some(record.position);
                records += 1;
            }
            Err(e) => {
                prop_assert!(!e.to_string().is_empty());
                errors += 1;
            }
        }
        prop_assert!(reader.bytes_read() <= reader.total_bytes());
    }
    Err(TestCaseError::fail("reader did not reach the end"))
}

/// Valid files of each format, to be mutated.
fn valid_files() -> Vec<(&'static str, Vec<u8>)> {
    let row = [0.5f32, -1.0, 2.0, 1e-3];
    let fvecs = fvecs_bytes(&[(4, &row), (4, &row), (4, &row)]);
    let header = format!(
        "{:<117}\n",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }"
    );
    let npy = npy_bytes(1, &header, &f32_bytes(&[row, row, row].concat()));
    let jsonl = b"{\"id\": 1, \"vector\": [0.5, -1, 2], \"payload\": {\"a\": 1}}\n\
                  {\"id\": \"0b7d1e0c-4a96-4c1e-9f3a-5f0c6b3e8d5a\", \"vector\": [1, 2, 3]}\n\
                  \n{\"vector\": [4, 5, 6e-3]}\n"
        .to_vec();
    vec![("m.fvecs", fvecs), ("m.npy", npy), ("m.jsonl", jsonl)]
}

const NPY_TOKENS: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ":",
    ",",
    " ",
    "\n",
    "'descr'",
    "'fortran_order'",
    "'shape'",
    "'<f4'",
    "'<f8'",
    "'>f4'",
    "'<i4'",
    "True",
    "False",
    "None",
    "0",
    "1",
    "3",
    "4L",
    "99999",
    "18446744073709551615",
    "'",
    "\"",
    "\\",
    "u'",
    "-",
    "é",
];

const JSONL_TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ":",
    ",",
    " ",
    "\n",
    "\r\n",
    "\"vector\"",
    "\"id\"",
    "\"payload\"",
    "\"x\"",
    "1",
    "-2.5e3",
    "1e999",
    "0.1",
    "null",
    "true",
    "18446744073709551616",
    "\"0b7d1e0c-4a96-4c1e-9f3a-5f0c6b3e8d5a\"",
    "\"",
    "\\",
    "\u{feff}",
    "\u{1F600}",
];

fn tokens(vocabulary: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
    vec(proptest::sample::select(vocabulary), 0..max).prop_map(|t| t.concat())
}

/// A `.npy` header dict with fields drawn from valid and invalid choices, keys in any order
/// and arbitrary spacing, plus what a correct reader must make of it: `Some((rows, dim,
/// item size))` if it is supported.
fn npy_header() -> impl Strategy<Value = (String, Option<(u64, u64, u64)>)> {
    let descr = proptest::sample::select(vec![
        ("'<f4'", Some(4)),
        ("\"<f8\"", Some(8)),
        ("'>f4'", None),
        ("'<i4'", None),
        ("'<f2'", None),
    ]);
    let fortran = proptest::sample::select(vec![("False", true), ("True", false)]);
    let shape = vec(0u64..4, 0..4);
    let space = || proptest::sample::select(vec!["", " ", "\n", " \t "]);
    (
        descr,
        fortran,
        shape,
        proptest::array::uniform8(space()),
        any::<bool>(),
        any::<u64>(),
    )
        .prop_map(
            |(
                (descr, size),
                (fortran, fortran_ok),
                shape,
                [s0, s1, s2, s3, s4, s5, s6, s7],
                trailing_comma,
                order,
            )| {
                let items: Vec<String> = shape.iter().map(u64::to_string).collect();
                let tuple = match items.len() {
                    1 => format!("({},)", items[0]),
                    _ => format!("({})", items.join(&format!(",{s3}"))),
                };
                let mut entries = [
                    format!("'descr'{s0}:{s1}{descr}"),
                    format!("'fortran_order':{s2}{fortran}"),
                    format!("'shape'{s4}:{tuple}"),
                ];
                entries.rotate_left((order % 3) as usize);
                if order & 4 != 0 {
                    entries.swap(0, 1);
                }
                let comma = if trailing_comma { "," } else { "" };
                let header = format!("{{{s5}{}{comma}{s6}}}{s7}\n", entries.join(", "));
                let (rows, dim) = match shape[..] {
                    [d] => (1, d),
                    [n, d] => (n, d),
                    _ => (0, 0),
                };
                let expected = (size.is_some() && fortran_ok && dim > 0)
                    .then(|| (rows, dim, size.unwrap_or(0)));
                (header, expected)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes(bytes in vec(any::<u8>(), 0..600)) {
        for name in ["a.fvecs", "a.npy", "a.jsonl"] {
            exercise(name, &bytes)?;
        }
    }

    #[test]
    fn arbitrary_bytes_after_a_valid_prefix(
        kind in 0usize..3,
        cut in any::<prop::sample::Index>(),
        tail in vec(any::<u8>(), 0..64),
    ) {
        let files = valid_files();
        let (name, bytes) = &files[kind];
        let mut bytes = bytes[..cut.index(bytes.len() + 1)].to_vec();
        bytes.extend_from_slice(&tail);
        exercise(name, &bytes)?;
    }

    #[test]
    fn mutated_valid_files(
        kind in 0usize..3,
        flips in vec((any::<prop::sample::Index>(), any::<u8>()), 0..6),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let files = valid_files();
        let (name, bytes) = &files[kind];
        let mut bytes = bytes.clone();
        for (at, value) in &flips {
            let i = at.index(bytes.len());
            bytes[i] = *value;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        exercise(name, &bytes)?;
    }

    #[test]
    fn npy_headers_from_tokens(
        version in 1u8..=3,
        header in tokens(NPY_TOKENS, 40),
        data in vec(any::<u8>(), 0..64),
    ) {
        exercise("h.npy", &npy_bytes(version, &header, &data))?;
    }

    #[test]
    fn npy_headers_against_a_model(
        version in 1u8..=3,
        (header, expected) in npy_header(),
        extra in -8i64..8,
    ) {
        let need = expected.map_or(0, |(n, d, size)| n * d * size);
        let data = vec![0u8; need.saturating_add_signed(extra) as usize];
        let dir = tempfile::tempdir().unwrap();
        let path = file(dir.path(), "h.npy", &npy_bytes(version, &header, &data));
        let result = common::drain(&path, Format::Npy, 2);
        match expected {
            Some((rows, dim, _)) if data.len() as u64 == need => {
                let records =
                    result.map_err(|e| TestCaseError::fail(format!("{header:?}: {e}")))?;
                prop_assert_eq!(records.len() as u64, rows);
                prop_assert!(records.iter().all(|r| r.vector.len() as u64 == dim));
            }
            _ => prop_assert!(
                result.is_err(),
                "{:?} with {} data bytes read fine",
                header,
                data.len()
            ),
        }
    }

    #[test]
    fn json_lines_from_tokens(text in tokens(JSONL_TOKENS, 60)) {
        exercise("t.jsonl", text.as_bytes())?;
    }
}

#[test]
fn unmutated_valid_files_read_completely() {
    for (name, bytes) in valid_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = file(dir.path(), name, &bytes);
        let format = Format::from_path(&path).unwrap();
        let records = common::drain(&path, format, 2).unwrap();
        assert_eq!(records.len(), 3, "{name}");
    }
}
