//! Every kind of bad input gives the right error variant, and its message names the file and
//! the place.

mod common;

use std::path::Path;

use quiver_formats::{
    Error, Format, JsonFields, Location, VectorReader, read_fvecs, read_ivecs, write_fvecs,
    write_npy_f32,
};

use common::{f32_bytes, file, first_error, fvecs_bytes, npy_bytes};

/// Asserts that `error`'s message names `path` and contains every one of `parts`.
fn assert_message(error: &Error, path: &Path, parts: &[&str]) {
    let message = error.to_string();
    assert!(
        message.starts_with(&path.display().to_string()),
        "{message:?} does not start with the path"
    );
    for part in parts {
        assert!(message.contains(part), "{message:?} lacks {part:?}");
    }
}

// ---- .fvecs / .ivecs ----

#[test]
fn fvecs_truncated_in_the_middle_of_a_row() {
    let dir = tempfile::tempdir().unwrap();
    let row = [1.0f32, 2.0, 3.0, 4.0];
    let mut bytes = fvecs_bytes(&[(4, &row), (4, &row), (4, &row)]);
    bytes.truncate(bytes.len() - 5);
    let path = file(dir.path(), "cut.fvecs", &bytes);
    for error in [
        first_error(&path, Format::Fvecs),
        read_fvecs(&path).unwrap_err(),
        read_ivecs(&path).unwrap_err(),
    ] {
        assert!(
            matches!(
                error,
                Error::Truncated {
                    row: 2,
                    offset: 40,
                    expected: 20,
                    actual: 15,
                    ..
                }
            ),
            "{error:?}"
        );
        assert_message(
            &error,
            &path,
            &[
                "truncated at row 2",
                "byte offset 40",
                "expected 20 bytes, found 15",
            ],
        );
    }
}

#[test]
fn fvecs_shorter_than_one_dimension_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), "tiny.fvecs", &[4, 0]);
    let error = first_error(&path, Format::Fvecs);
    assert!(
        matches!(
            error,
            Error::Truncated {
                row: 0,
                expected: 4,
                actual: 2,
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn fvecs_inconsistent_dims_found_at_open() {
    // Size 60 is not a whole number of 20-byte rows, so the reader looks for the culprit.
    let dir = tempfile::tempdir().unwrap();
    let bytes = fvecs_bytes(&[
        (4, &[1.0; 4]),
        (4, &[2.0; 4]),
        (3, &[3.0; 3]),
        (4, &[0.0; 1]),
    ]);
    let path = file(dir.path(), "dims.fvecs", &bytes);
    let error = VectorReader::open(&path, Format::Fvecs, &JsonFields::default())
        .err()
        .unwrap();
    assert!(
        matches!(
            error,
            Error::DimMismatch {
                location: Location::Row { row: 2, offset: 40 },
                expected: 4,
                got: 3,
                ..
            }
        ),
        "{error:?}"
    );
    assert_message(
        &error,
        &path,
        &["row 2 (byte offset 40)", "dimension 3", "dimension 4"],
    );
    assert!(matches!(read_fvecs(&path), Err(Error::DimMismatch { .. })));
}

#[test]
fn fvecs_inconsistent_dims_found_while_streaming() {
    // 12 + 8 + 4 = 24 bytes: a whole number of rows of dimension 2, but row 1 says 1.
    let dir = tempfile::tempdir().unwrap();
    let bytes = fvecs_bytes(&[(2, &[1.0, 2.0]), (1, &[3.0]), (1, &[])]);
    let path = file(dir.path(), "dims.fvecs", &bytes);
    let mut reader = VectorReader::open(&path, Format::Fvecs, &JsonFields::default()).unwrap();
    assert_eq!(reader.rows_hint(), Some(2));
    assert_eq!(reader.next_record().unwrap().unwrap().vector, [1.0, 2.0]);
    let error = reader.next_record().unwrap_err();
    assert!(
        matches!(
            error,
            Error::DimMismatch {
                location: Location::Row { row: 1, offset: 12 },
                expected: 2,
                got: 1,
                ..
            }
        ),
        "{error:?}"
    );
    // A binary reader is finished after an error.
    assert!(reader.next_record().unwrap().is_none());
    assert!(matches!(
        first_error(&path, Format::Fvecs),
        Error::DimMismatch { .. }
    ));
}

#[test]
fn fvecs_non_positive_dimension() {
    let dir = tempfile::tempdir().unwrap();
    for d in [0, -3] {
        let path = file(dir.path(), "zero.fvecs", &fvecs_bytes(&[(d, &[1.0])]));
        let error = first_error(&path, Format::Fvecs);
        assert!(
            matches!(
                error,
                Error::Malformed {
                    location: Location::Row { row: 0, offset: 0 },
                    ..
                }
            ),
            "{error:?}"
        );
        assert_message(&error, &path, &[&format!("dimension field is {d}")]);
    }
    // A later row with a negative dimension, found while explaining a bad size.
    let path = file(
        dir.path(),
        "neg.fvecs",
        &fvecs_bytes(&[(1, &[1.0]), (-1, &[2.0, 3.0])]),
    );
    let error = first_error(&path, Format::Fvecs);
    assert_eq!(error.location(), Some(Location::Row { row: 1, offset: 8 }));
}

#[test]
fn missing_file_and_directory_are_io_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.fvecs");
    let error = read_fvecs(&missing).unwrap_err();
    assert!(matches!(error, Error::Io { .. }), "{error:?}");
    assert_message(&error, &missing, &[]);
    for format in [Format::Fvecs, Format::Npy, Format::JsonLines] {
        let error = common::drain(dir.path(), format, 10).unwrap_err();
        assert!(matches!(error, Error::Io { .. }), "{format}: {error:?}");
    }
}

// ---- .npy ----

const GOOD: &str = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }\n";

fn npy_error(header: &str, data: &[u8]) -> (Error, std::path::PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = file(dir.path(), "bad.npy", &npy_bytes(1, header, data));
    (first_error(&path, Format::Npy), path, dir)
}

#[test]
fn npy_bad_magic() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = npy_bytes(1, GOOD, &[0; 24]);
    bytes[1] = b'n';
    let path = file(dir.path(), "magic.npy", &bytes);
    let error = first_error(&path, Format::Npy);
    assert!(
        matches!(
            error,
            Error::Malformed {
                location: Location::Header { offset: 0 },
                ..
            }
        ),
        "{error:?}"
    );
    assert_message(&error, &path, &["not a .npy file"]);

    let path = file(dir.path(), "short.npy", b"\x93NUM");
    assert_message(&first_error(&path, Format::Npy), &path, &["too short"]);
}

#[test]
fn npy_truncated_data() {
    let (error, path, _dir) = npy_error(GOOD, &f32_bytes(&[1.0, 2.0, 3.0, 4.0]));
    let offset = 10 + GOOD.len() as u64 + 12;
    assert!(
        matches!(
            error,
            Error::Truncated { row: 1, offset: o, expected: 12, actual: 4, .. } if o == offset
        ),
        "{error:?}"
    );
    assert_message(
        &error,
        &path,
        &["truncated at row 1", "expected 12 bytes, found 4"],
    );

    // A shape whose byte size overflows u64 is truncated too, not an overflow.
    let huge = "{'descr': '<f8', 'fortran_order': False, 'shape': (18446744073709551615, 1000), }";
    let (error, _, _dir) = npy_error(huge, &[0; 16]);
    assert!(
        matches!(
            error,
            Error::Truncated {
                row: 0,
                expected: 8000,
                actual: 16,
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn npy_trailing_data() {
    let (error, path, _dir) = npy_error(GOOD, &[0; 25]);
    assert!(
        matches!(
            error,
            Error::Malformed {
                location: Location::Row { row: 2, .. },
                ..
            }
        ),
        "{error:?}"
    );
    assert_message(&error, &path, &["1 bytes follow the last row"]);
}

#[test]
fn npy_unsupported_features() {
    let cases = [
        (
            "{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }",
            "big-endian",
        ),
        (
            "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 3), }",
            "dtype '<f2'",
        ),
        (
            "{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }",
            "dtype '<i4'",
        ),
        (
            "{'descr': [('x', '<f4')], 'fortran_order': False, 'shape': (2, 3), }",
            "structured",
        ),
        (
            "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
            "Fortran",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 3), }",
            "3-dimensional",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (), }",
            "0-dimensional",
        ),
    ];
    for (header, part) in cases {
        let (error, path, _dir) = npy_error(header, &[0; 24]);
        assert!(
            matches!(
                error,
                Error::Unsupported {
                    location: Location::Header { offset: 10 },
                    ..
                }
            ),
            "{header}: {error:?}"
        );
        assert_message(&error, &path, &[part, "not supported"]);
    }

    let dir = tempfile::tempdir().unwrap();
    let mut bytes = npy_bytes(2, GOOD, &[0; 24]);
    bytes[6] = 4;
    let path = file(dir.path(), "v4.npy", &bytes);
    let error = first_error(&path, Format::Npy);
    assert!(matches!(error, Error::Unsupported { .. }), "{error:?}");
    assert_message(&error, &path, &["version 4.0"]);
}

#[test]
fn npy_malformed_headers() {
    let cases = [
        ("{'descr': '<f4', 'fortran_order': False}", "no 'shape' key"),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 0)}",
            "dimension 0",
        ),
        (
            "{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3)}",
            "'fortran_order' is an integer",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 'x')}",
            "'shape' holds a string",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3)}",
            "negative",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3.0)}",
            "end of an integer",
        ),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)",
            "',' or '}'",
        ),
        ("['descr', '<f4']", "expected a dict"),
        (
            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3)} trailing",
            "after the header",
        ),
    ];
    for (header, part) in cases {
        let (error, path, _dir) = npy_error(header, &[0; 24]);
        assert!(
            matches!(
                error,
                Error::Malformed {
                    location: Location::Header { .. },
                    ..
                }
            ),
            "{header}: {error:?}"
        );
        assert_message(&error, &path, &[part]);
    }

    // The header length field points past the end of the file.
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = npy_bytes(1, GOOD, &[]);
    bytes[8] = 0xff;
    let path = file(dir.path(), "len.npy", &bytes);
    assert_message(
        &first_error(&path, Format::Npy),
        &path,
        &["file ends inside the header"],
    );

    // Version 3 headers must be UTF-8.
    let mut bytes = npy_bytes(3, GOOD, &[0; 24]);
    bytes[14] = 0xff;
    let path = file(dir.path(), "utf8.npy", &bytes);
    let error = first_error(&path, Format::Npy);
    assert_eq!(error.location(), Some(Location::Header { offset: 14 }));
    assert_message(&error, &path, &["UTF-8"]);
}

// ---- JSON Lines ----

fn jsonl_error(text: &str) -> (Error, std::path::PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = file(dir.path(), "bad.jsonl", text.as_bytes());
    (first_error(&path, Format::JsonLines), path, dir)
}

const LINE1: &str = "{\"id\": 1, \"vector\": [1, 2]}\n";

#[test]
fn jsonl_malformed_json_on_line_3() {
    let text = format!("{LINE1}\n{{\"id\": 3, \"vector\": [1, 2}}\n");
    let (error, path, _dir) = jsonl_error(&text);
    let offset = LINE1.len() as u64 + 1;
    assert!(
        matches!(
            error,
            Error::Malformed { location: Location::Line { line: 3, offset: o }, .. } if o == offset
        ),
        "{error:?}"
    );
    assert_message(&error, &path, &["line 3", "malformed JSON at column"]);
}

#[test]
fn jsonl_field_errors_name_the_line_and_the_problem() {
    let cases = [
        ("{\"vector\": [1, \"x\"]}", "element 1 is a string \"x\""),
        ("{\"vector\": [1, null]}", "element 1 is null"),
        ("{\"id\": 2}", "field \"vector\" is missing"),
        (
            "{\"vector\": \"1, 2\"}",
            "must be an array of numbers, found a string",
        ),
        ("{\"vector\": []}", "empty array"),
        (
            "{\"vector\": [1, 2], \"payload\": [1]}",
            "\"payload\" must be an object, found an array",
        ),
        (
            "{\"vector\": [1, 2], \"id\": -1}",
            "\"id\" must be an unsigned integer or a UUID string",
        ),
        ("{\"vector\": [1, 2], \"id\": 1.5}", "found a number 1.5"),
        (
            "{\"vector\": [1, 2], \"id\": {\"a\": 1}}",
            "found an object",
        ),
        ("[1, 2]", "expected a JSON object, found an array"),
        ("\"text\"", "expected a JSON object, found a string"),
        ("[", "is not JSON Lines"),
    ];
    for (line, part) in cases {
        let (error, path, _dir) = jsonl_error(&format!("{LINE1}{line}\n"));
        assert!(
            matches!(
                error,
                Error::Malformed {
                    location: Location::Line { line: 2, .. },
                    ..
                }
            ),
            "{line}: {error:?}"
        );
        assert_message(&error, &path, &["line 2", part]);
    }
}

#[test]
fn jsonl_dimension_mismatch_and_resuming_after_bad_lines() {
    let line2 = "{\"vector\": [1, 2, 3]}\n";
    let text = format!("{LINE1}{line2}not json\n{{\"vector\": [5, 6]}}\n");
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), "dims.jsonl", text.as_bytes());
    let mut reader = VectorReader::open(&path, Format::JsonLines, &JsonFields::default()).unwrap();
    assert_eq!(reader.next_record().unwrap().unwrap().vector, [1.0, 2.0]);
    let error = reader.next_record().unwrap_err();
    assert!(
        matches!(
            error,
            Error::DimMismatch {
                location: Location::Line { line: 2, .. },
                expected: 2,
                got: 3,
                ..
            }
        ),
        "{error:?}"
    );
    assert_message(&error, &path, &["line 2"]);
    let error = reader.next_record().unwrap_err();
    let line3 = (LINE1.len() + line2.len()) as u64;
    assert_eq!(
        error.location(),
        Some(Location::Line {
            line: 3,
            offset: line3
        })
    );
    let last = reader.next_record().unwrap().unwrap();
    assert_eq!(
        (last.vector.as_slice(), last.position),
        ([5.0, 6.0].as_slice(), 3)
    );
    assert!(reader.next_record().unwrap().is_none());
}

#[test]
fn jsonl_over_long_line_ends_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let long = vec![b' '; quiver_formats::MAX_LINE_BYTES as usize + 10];
    let path = file(dir.path(), "long.jsonl", &long);
    let mut reader = VectorReader::open(&path, Format::JsonLines, &JsonFields::default()).unwrap();
    let error = reader.next_record().unwrap_err();
    assert_message(&error, &path, &["line 1", "longer than"]);
    assert!(reader.next_record().unwrap().is_none());
}

// ---- choosing the format, writing ----

#[test]
fn unknown_extensions() {
    for name in ["a.ivecs", "a.txt", "noext", "a.npy.gz"] {
        let path = Path::new(name);
        let error = Format::from_path(path).unwrap_err();
        assert!(matches!(error, Error::UnknownFormat { .. }), "{error:?}");
        assert_message(&error, path, &[".fvecs, .npy"]);
    }
    assert_eq!(Format::from_name("csv"), None);
}

#[test]
fn writers_reject_bad_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.fvecs");
    let error = write_fvecs(&path, &[1.0; 5], 2).unwrap_err();
    assert!(
        matches!(error, Error::InvalidShape { len: 5, dim: 2, .. }),
        "{error:?}"
    );
    assert_message(&error, &path, &["not a multiple"]);
    assert!(matches!(
        write_fvecs(&path, &[], 0),
        Err(Error::InvalidShape { .. })
    ));
    let path = dir.path().join("w.npy");
    assert!(matches!(
        write_npy_f32(&path, &[1.0; 6], 2, 2),
        Err(Error::InvalidShape { .. })
    ));
    assert!(matches!(
        write_npy_f32(&path, &[], usize::MAX, 2),
        Err(Error::InvalidShape { .. })
    ));
}

#[test]
fn errors_cross_threads() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<Error>();
    assert_send_sync::<VectorReader>();
}
