//! Helpers shared by the test binaries: hand-made files and a reader that drains a file.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::path::{Path, PathBuf};

use quiver_formats::{Error, Format, JsonFields, Record, VectorReader};

/// Writes `bytes` to `dir/name` and returns the path.
pub fn file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write test file");
    path
}

/// `.fvecs` bytes for rows given as (dimension field, values): the field need not match the
/// number of values, to make bad files.
pub fn fvecs_bytes(rows: &[(i32, &[f32])]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for (d, values) in rows {
        bytes.extend_from_slice(&d.to_le_bytes());
        for v in *values {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
    }
    bytes
}

/// A `.npy` file: magic, `version`, header length (2 bytes for version 1, else 4), the header
/// text as given (no padding added), then `data`.
pub fn npy_bytes(version: u8, header: &str, data: &[u8]) -> Vec<u8> {
    let mut bytes = b"\x93NUMPY".to_vec();
    bytes.extend_from_slice(&[version, 0]);
    if version == 1 {
        bytes.extend_from_slice(
            &u16::try_from(header.len())
                .expect("short header")
                .to_le_bytes(),
        );
    } else {
        bytes.extend_from_slice(
            &u32::try_from(header.len())
                .expect("short header")
                .to_le_bytes(),
        );
    }
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}

/// Little-endian bytes of `values`.
pub fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Opens `path` and reads every record, in batches of `batch`.
pub fn drain(path: &Path, format: Format, batch: usize) -> Result<Vec<Record>, Error> {
    let mut reader = VectorReader::open(path, format, &JsonFields::default())?;
    let mut records = Vec::new();
    loop {
        let next = reader.next_batch(batch)?;
        if next.is_empty() {
            return Ok(records);
        }
        records.extend(next);
    }
}

/// The first error reading `path` as `format`; panics if the whole file reads fine.
pub fn first_error(path: &Path, format: Format) -> Error {
    match drain(path, format, 7) {
        Ok(records) => panic!("expected an error, read {} records", records.len()),
        Err(e) => e,
    }
}
