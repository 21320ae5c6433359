//! Files written by this crate (or by hand, as NumPy and users write them) read back exactly.

mod common;

use std::path::Path;

use proptest::prelude::*;
use quiver_formats::{
    Format, FvecsWriter, JsonFields, NpyWriter, VectorReader, read_fvecs, read_ivecs, write_fvecs,
    write_ivecs, write_npy_f32,
};
use serde_json::json;

use common::{drain, f32_bytes, file, npy_bytes};

/// Values compared by bit pattern, so NaN payloads and -0.0 count too.
fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

fn matrix() -> impl Strategy<Value = (Vec<f32>, usize, usize)> {
    (0usize..12, 1usize..20).prop_flat_map(|(n, d)| {
        (
            proptest::collection::vec(any::<f32>(), n * d),
            Just(n),
            Just(d),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn fvecs_round_trip((values, n, d) in matrix()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.fvecs");
        write_fvecs(&path, &values, d).unwrap();
        let (read, rows, dim) = read_fvecs(&path).unwrap();
        prop_assert_eq!(bits(&read), bits(&values));
        prop_assert_eq!(rows, n);
        prop_assert_eq!(dim, if n == 0 { 0 } else { d });

        let records = drain(&path, Format::Fvecs, 5).unwrap();
        let flat: Vec<f32> = records.iter().flat_map(|r| r.vector.clone()).collect();
        prop_assert_eq!(bits(&flat), bits(&values));
        for (i, record) in records.iter().enumerate() {
            prop_assert_eq!(record.position, i as u64);
            prop_assert!(record.id.is_none() && record.payload.is_none());
        }
    }

    #[test]
    fn ivecs_round_trip(
        (values, n, d) in (0usize..12, 1usize..20).prop_flat_map(|(n, d)| {
            (proptest::collection::vec(any::<i32>(), n * d), Just(n), Just(d))
        })
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.ivecs");
        write_ivecs(&path, &values, d).unwrap();
        let (read, rows, dim) = read_ivecs(&path).unwrap();
        prop_assert_eq!(read, values);
        prop_assert_eq!(rows, n);
        prop_assert_eq!(dim, if n == 0 { 0 } else { d });
    }

    #[test]
    fn npy_round_trip((values, n, d) in matrix()) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.npy");
        write_npy_f32(&path, &values, n, d).unwrap();
        let reader = VectorReader::open(&path, Format::Npy, &JsonFields::default()).unwrap();
        prop_assert_eq!(reader.dim(), Some(d));
        prop_assert_eq!(reader.rows_hint(), Some(n as u64));
        let records = drain(&path, Format::Npy, 3).unwrap();
        prop_assert_eq!(records.len(), n);
        let flat: Vec<f32> = records.iter().flat_map(|r| r.vector.clone()).collect();
        prop_assert_eq!(bits(&flat), bits(&values));
    }
}

#[test]
fn streaming_writers_match_whole_file_writers() {
    let dir = tempfile::tempdir().unwrap();
    let values: Vec<f32> = (0..60).map(|i| i as f32 * 0.5 - 3.0).collect();

    let whole = dir.path().join("whole.fvecs");
    write_fvecs(&whole, &values, 6).unwrap();
    let streamed = dir.path().join("streamed.fvecs");
    let mut writer = FvecsWriter::create(&streamed, 6).unwrap();
    for chunk in values.chunks(18) {
        writer.write_rows(chunk).unwrap();
    }
    assert_eq!(writer.rows(), 10);
    writer.finish().unwrap();
    assert_eq!(
        std::fs::read(&whole).unwrap(),
        std::fs::read(&streamed).unwrap()
    );

    let whole = dir.path().join("whole.npy");
    write_npy_f32(&whole, &values, 10, 6).unwrap();
    let streamed = dir.path().join("streamed.npy");
    let mut writer = NpyWriter::create(&streamed, 6).unwrap();
    for chunk in values.chunks(30) {
        writer.write_rows(chunk).unwrap();
    }
    writer.finish().unwrap();
    let bytes = std::fs::read(&streamed).unwrap();
    assert_eq!(std::fs::read(&whole).unwrap(), bytes);
    assert_eq!(bytes.len(), 128 + 60 * 4);
    assert!(bytes.starts_with(
        b"\x93NUMPY\x01\x00\x76\x00{'descr': '<f4', 'fortran_order': False, 'shape': (10, 6), }"
    ));
}

#[test]
fn reader_reports_progress_and_batches() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.fvecs");
    let values: Vec<f32> = (0..40).map(|i| i as f32).collect();
    write_fvecs(&path, &values, 4).unwrap();
    let mut reader = VectorReader::open(&path, Format::Fvecs, &JsonFields::default()).unwrap();
    assert_eq!(reader.format(), Format::Fvecs);
    assert_eq!(reader.dim(), Some(4));
    assert_eq!(reader.rows_hint(), Some(10));
    assert_eq!(reader.total_bytes(), 200);
    assert_eq!(reader.bytes_read(), 0);
    let sizes: Vec<usize> = std::iter::from_fn(|| {
        let batch = reader.next_batch(4).unwrap();
        (!batch.is_empty()).then_some(batch.len())
    })
    .collect();
    assert_eq!(sizes, [4, 4, 2]);
    assert_eq!(reader.bytes_read(), 200);
    assert!(reader.next_batch(4).unwrap().is_empty());

    // `max == 0` still makes progress; the iterator sees every row.
    let mut reader = VectorReader::open(&path, Format::Fvecs, &JsonFields::default()).unwrap();
    assert_eq!(reader.next_batch(0).unwrap().len(), 1);
    assert_eq!(reader.by_ref().count(), 9);
}

#[test]
fn empty_fvecs_has_no_rows_and_no_dim() {
    let dir = tempfile::tempdir().unwrap();
    let path = file(dir.path(), "empty.fvecs", b"");
    assert_eq!(read_fvecs(&path).unwrap(), (vec![], 0, 0));
    let mut reader = VectorReader::open(&path, Format::Fvecs, &JsonFields::default()).unwrap();
    assert_eq!(reader.dim(), None);
    assert_eq!(reader.rows_hint(), Some(0));
    assert!(reader.next_batch(10).unwrap().is_empty());
}

fn read_npy(path: &Path) -> (Option<usize>, Option<u64>, Vec<Vec<f32>>) {
    let mut reader =
        VectorReader::open(path, Format::Npy, &JsonFields::default()).expect("open .npy");
    let (dim, rows) = (reader.dim(), reader.rows_hint());
    let vectors = reader
        .by_ref()
        .map(|r| r.expect("read row").vector)
        .collect();
    assert_eq!(reader.bytes_read(), reader.total_bytes());
    (dim, rows, vectors)
}

#[test]
fn hand_made_npy_headers_with_odd_spacing() {
    let dir = tempfile::tempdir().unwrap();
    let data = f32_bytes(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let expected = vec![vec![1.0, 2.0, 3.0], vec![4.0, 5.0, 6.0]];
    let headers = [
        // Version 1, NumPy's own spelling, padded to a multiple of 64.
        (
            1,
            format!(
                "{:<117}\n",
                "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
            ),
        ),
        // Version 1, no padding, no trailing comma, odd spacing, keys reordered.
        (
            1,
            "{ 'shape':(2 ,3),'fortran_order' :False ,  'descr':'<f4'}\n".to_string(),
        ),
        // Version 2, double quotes, tabs and newlines, Python 2 longs, an unknown key.
        (
            2,
            concat!(
                "{\n\t\"descr\" : \"<f4\",\n\t\"fortran_order\": False,\n",
                "\t\"shape\": (2L, 3L),\n\t\"extra\": None,\n}   \n"
            )
            .to_string(),
        ),
        // Version 3 (UTF-8 header), unicode string prefixes, a list for the shape.
        (
            3,
            "{u'descr': u'<f4', u'fortran_order': False, u'shape': [2, 3], u'note': 'é'}\n"
                .to_string(),
        ),
    ];
    for (version, header) in headers {
        let path = file(dir.path(), "h.npy", &npy_bytes(version, &header, &data));
        assert_eq!(
            read_npy(&path),
            (Some(3), Some(2), expected.clone()),
            "version {version}: {header:?}"
        );
    }
}

#[test]
fn npy_f64_is_converted_and_one_dimensional_is_one_row() {
    let dir = tempfile::tempdir().unwrap();
    let values = [0.1f64, -2.5, 1e300, 3.0];
    let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let header = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }\n";
    let path = file(dir.path(), "f8.npy", &npy_bytes(1, header, &data));
    let (dim, rows, vectors) = read_npy(&path);
    assert_eq!((dim, rows), (Some(2), Some(2)));
    assert_eq!(vectors, [vec![0.1f32, -2.5], vec![f32::INFINITY, 3.0]]);

    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }\n";
    let path = file(
        dir.path(),
        "1d.npy",
        &npy_bytes(1, header, &f32_bytes(&[7.0, 8.0, 9.0])),
    );
    assert_eq!(
        read_npy(&path),
        (Some(3), Some(1), vec![vec![7.0, 8.0, 9.0]])
    );

    let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 5), }\n";
    let path = file(dir.path(), "0rows.npy", &npy_bytes(1, header, &[]));
    assert_eq!(read_npy(&path), (Some(5), Some(0), vec![]));
}

#[test]
fn json_lines_keep_ids_and_payloads_and_skip_blank_lines() {
    let dir = tempfile::tempdir().unwrap();
    let text = concat!(
        "\u{feff}",
        r#"{"id": 7, "vector": [1, 2.5, -3e-2], "payload": {"lang": "en"}}"#,
        "\r\n\n   \t\n",
        r#"{"id": "5f0c6b3e-8d5a-4c1e-9f3a-2b7d1e0c4a96", "vector": [0, 0, 1], "text": "x"}"#,
        "\n",
        r#"{"vector": [4, 5, 6], "id": null, "payload": null}"#,
    );
    let path = file(dir.path(), "v.jsonl", text.as_bytes());
    let mut reader = VectorReader::open(&path, Format::JsonLines, &JsonFields::default()).unwrap();
    assert_eq!((reader.dim(), reader.rows_hint()), (None, None));
    let records = reader.next_batch(100).unwrap();
    assert_eq!(reader.dim(), Some(3));
    assert_eq!(reader.bytes_read(), reader.total_bytes());
    assert!(reader.next_batch(100).unwrap().is_empty());

    assert_eq!(records.len(), 3);
    let [a, b, c] = records.as_slice() else {
        unreachable!()
    };
    assert_eq!(a.id, Some(json!(7)));
    assert_eq!(a.vector, [1.0, 2.5, -0.03]);
    assert_eq!(a.payload, json!({"lang": "en"}).as_object().cloned());
    assert_eq!(a.position, 0);
    assert_eq!(b.id, Some(json!("5f0c6b3e-8d5a-4c1e-9f3a-2b7d1e0c4a96")));
    assert_eq!(b.payload, None);
    assert_eq!(b.position, 3);
    assert_eq!(
        (c.id.clone(), c.payload.clone(), c.position),
        (None, None, 4)
    );
}

#[test]
fn json_lines_field_names_are_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"{"pk": 18446744073709551615, "emb": [0.5], "meta": {"a": [1]}, "vector": "no"}"#;
    let path = file(dir.path(), "v.ndjson", text.as_bytes());
    let fields = JsonFields {
        id: "pk".into(),
        vector: "emb".into(),
        payload: "meta".into(),
    };
    let mut reader = VectorReader::open(&path, Format::JsonLines, &fields).unwrap();
    let record = reader.next_record().unwrap().unwrap();
    assert_eq!(record.id, Some(json!(u64::MAX)));
    assert_eq!(record.vector, [0.5]);
    assert_eq!(record.payload, json!({"a": [1]}).as_object().cloned());
    assert!(reader.next_record().unwrap().is_none());
}

#[test]
fn json_lines_long_lines() {
    let dir = tempfile::tempdir().unwrap();
    let vector: Vec<f32> = (0..4096).map(|i| (i as f32).sin()).collect();
    let mut text = String::new();
    for id in 0..3 {
        text.push_str(&json!({"id": id, "vector": vector}).to_string());
        text.push('\n');
    }
    let path = file(dir.path(), "long.jsonl", text.as_bytes());
    let records = drain(&path, Format::JsonLines, 2).unwrap();
    assert_eq!(records.len(), 3);
    assert!(records.iter().all(|r| r.vector == vector));
}

#[test]
fn format_from_path() {
    for (name, format) in [
        ("a.fvecs", Format::Fvecs),
        ("dir.v2/B.FVECS", Format::Fvecs),
        ("x.npy", Format::Npy),
        ("x.jsonl", Format::JsonLines),
        ("x.ndjson", Format::JsonLines),
        ("x.json", Format::JsonLines),
    ] {
        assert_eq!(
            Format::from_path(Path::new(name)).unwrap(),
            format,
            "{name}"
        );
    }
    for format in [Format::Fvecs, Format::Npy, Format::JsonLines] {
        assert_eq!(Format::from_name(format.name()), Some(format));
        assert_eq!(format.to_string(), format.name());
    }
}

#[test]
fn wordnet_sample_reads_500_rows_of_384() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/datasets/wordnet/sample");
    let path = dir.join("base.fvecs");
    assert!(
        path.exists(),
        "{} is absent: these tests need the shared wordnet sample beside the project",
        path.display()
    );
    let (values, rows, dim) = read_fvecs(&path).unwrap();
    assert_eq!((rows, dim, values.len()), (500, 384, 500 * 384));
    // The vectors are L2-normalised embeddings.
    for row in values.chunks_exact(dim) {
        let norm: f32 = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-3, "norm {norm}");
    }
    let mut reader = VectorReader::open(&path, Format::Fvecs, &JsonFields::default()).unwrap();
    assert_eq!((reader.dim(), reader.rows_hint()), (Some(384), Some(500)));
    let mut count = 0;
    loop {
        let batch = reader.next_batch(128).unwrap();
        if batch.is_empty() {
            break;
        }
        for record in &batch {
            let start = record.position as usize * dim;
            assert_eq!(record.vector.as_slice(), &values[start..start + dim]);
        }
        count += batch.len();
    }
    assert_eq!(count, 500);
}
