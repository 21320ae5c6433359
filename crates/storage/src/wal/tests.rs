use super::reader::READ_BUFFER;
use super::*;

fn recover(dir: &Path) -> Result<(Vec<WalRecord>, WalEnd)> {
    let mut r = WalReader::open(dir)?;
    let mut out = Vec::new();
    while let Some(rec) = r.next_record()? {
        out.push(rec);
    }
    Ok((out, r.finish(1)?))
}

fn fresh(dir: &Path) -> Wal {
    let (_, end) = recover(dir).unwrap();
    Wal::resume(dir, &end).unwrap()
}

#[test]
fn append_rotate_recover() {
    let d = tempfile::tempdir().unwrap();
    let wal = fresh(d.path());
    for i in 0..10u8 {
        let seq = wal.append(&[i; 5]).unwrap();
        assert_eq!(seq, i as u64 + 1);
        if i == 4 {
            assert_eq!(wal.rotate().unwrap(), 6);
        }
    }
    wal.sync_all().unwrap();
    drop(wal);
    let (recs, end) = recover(d.path()).unwrap();
    assert_eq!(recs.len(), 10);
    assert_eq!(recs[7].payload, vec![7u8; 5]);
    assert_eq!(end.next_seq, 11);
    // Appending resumes in sequence.
    let wal = Wal::resume(d.path(), &end).unwrap();
    assert_eq!(wal.append(b"x").unwrap(), 11);
    wal.remove_through(5).unwrap();
    drop(wal);
    let (recs, _) = recover(d.path()).unwrap();
    assert_eq!(recs.first().map(|r| r.seq), Some(6));
    assert_eq!(recs.len(), 6);
}

#[test]
fn torn_tail_is_cut_at_every_length() {
    let d = tempfile::tempdir().unwrap();
    let wal = fresh(d.path());
    for i in 0..3u8 {
        wal.append(&[i; 100]).unwrap();
    }
    wal.sync_all().unwrap();
    drop(wal);
    let path = list_files(d.path()).unwrap()[0].1.clone();
    let full = fs::read(&path).unwrap();
    let two = HEADER_LEN + 2 * (RECORD_HEADER + 100);
    for cut in two + 1..full.len() {
        fs::write(&path, &full[..cut]).unwrap();
        let (recs, end) = recover(d.path()).unwrap();
        assert_eq!(recs.len(), 2, "cut at {cut}");
        assert_eq!(end.next_seq, 3);
        assert_eq!(end.truncated_bytes, (cut - two) as u64);
        assert_eq!(fs::metadata(&path).unwrap().len() as usize, two);
    }
}

#[test]
fn damage_before_valid_records_is_an_error() {
    let d = tempfile::tempdir().unwrap();
    let wal = fresh(d.path());
    for i in 0..3u8 {
        wal.append(&[i; 100]).unwrap();
    }
    drop(wal);
    let path = list_files(d.path()).unwrap()[0].1.clone();
    let mut bytes = fs::read(&path).unwrap();
    bytes[HEADER_LEN + RECORD_HEADER + 10] ^= 1; // payload of the first record
    fs::write(&path, &bytes).unwrap();
    let err = recover(d.path()).unwrap_err();
    assert!(
        matches!(&err, Error::Corrupt { offset, .. } if *offset == HEADER_LEN as u64),
        "{err}"
    );
    assert!(err.to_string().contains(&path.display().to_string()));
}

#[test]
fn damaged_header_of_a_file_with_records_is_an_error() {
    let d = tempfile::tempdir().unwrap();
    let wal = fresh(d.path());
    wal.append(b"acknowledged").unwrap();
    wal.sync_all().unwrap();
    drop(wal);
    let path = list_files(d.path()).unwrap()[0].1.clone();
    let mut bytes = fs::read(&path).unwrap();
    bytes[3] ^= 1;
    fs::write(&path, &bytes).unwrap();
    assert!(matches!(recover(d.path()), Err(Error::Corrupt { .. })));
    assert!(path.exists(), "the file is kept for inspection");
    // A header cut short by a crash while creating the file is removed.
    fs::write(&path, &bytes[..40]).unwrap();
    let (recs, _) = recover(d.path()).unwrap();
    assert!(recs.is_empty());
    assert!(!path.exists());
}

#[test]
fn missing_middle_file_is_an_error() {
    let d = tempfile::tempdir().unwrap();
    let wal = fresh(d.path());
    wal.append(b"a").unwrap();
    wal.rotate().unwrap();
    wal.append(b"b").unwrap();
    wal.rotate().unwrap();
    wal.append(b"c").unwrap();
    drop(wal);
    fs::remove_file(d.path().join(file_name(2))).unwrap();
    assert!(recover(d.path()).is_err());
}

/// A payload of `len` bytes that differs with `seq`.
fn payload_for(seq: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| (seq as usize * 31 + i) as u8).collect()
}

/// The records are seq 1, 2, ... with the payloads `payload_for` made of `sizes`.
fn assert_records(recs: &[WalRecord], sizes: &[usize]) {
    assert_eq!(recs.len(), sizes.len());
    for (i, (rec, &len)) in recs.iter().zip(sizes).enumerate() {
        let seq = i as u64 + 1;
        assert_eq!(rec.seq, seq);
        assert!(
            rec.payload == payload_for(seq, len),
            "payload of record {seq}"
        );
    }
}

#[test]
fn replay_streams_a_log_larger_than_the_buffer() {
    let d = tempfile::tempdir().unwrap();
    let wal = fresh(d.path());
    // Varied sizes put record boundaries at many offsets of the read buffer; one record
    // is larger than the buffer.
    let mut sizes: Vec<usize> = (0..600).map(|i| (i * 397) % 1500).collect();
    sizes.insert(300, 2 * READ_BUFFER + 3);
    for (i, &len) in sizes.iter().enumerate() {
        let seq = i as u64 + 1;
        assert_eq!(wal.append(&payload_for(seq, len)).unwrap(), seq);
    }
    wal.sync_all().unwrap();
    drop(wal);
    let path = list_files(d.path()).unwrap()[0].1.clone();
    let full_len = fs::metadata(&path).unwrap().len();
    assert!(full_len > 3 * READ_BUFFER as u64);
    let (recs, end) = recover(d.path()).unwrap();
    assert_records(&recs, &sizes);
    let next = sizes.len() as u64 + 1;
    assert_eq!(
        end,
        WalEnd {
            next_seq: next,
            truncated_bytes: 0
        }
    );

    // A torn tail longer than the buffer: part of a record larger than the buffer.
    let mut torn = Vec::new();
    let torn_payload = payload_for(next, 3 * READ_BUFFER);
    encode_record(next, &torn_payload, torn_payload.len() as u32, &mut torn);
    torn.truncate(2 * READ_BUFFER);
    OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(&torn))
        .unwrap();
    let (recs, end) = recover(d.path()).unwrap();
    assert_eq!(recs.len(), sizes.len());
    assert_eq!(end.truncated_bytes, torn.len() as u64);
    assert_eq!(fs::metadata(&path).unwrap().len(), full_len);
}

#[test]
fn damage_a_buffer_before_a_valid_record_is_an_error() {
    // The search for a valid record after a damaged one streams the file too. Here the
    // next record starts a buffer later, its header straddling two chunks of that scan.
    let d = tempfile::tempdir().unwrap();
    let wal = fresh(d.path());
    let big = READ_BUFFER - 20;
    for (seq, len) in [(1, 100), (2, big), (3, 100)] {
        wal.append(&payload_for(seq, len)).unwrap();
    }
    drop(wal);
    let path = list_files(d.path()).unwrap()[0].1.clone();
    let mut bytes = fs::read(&path).unwrap();
    let at = HEADER_LEN + RECORD_HEADER + 100; // start of record 2
    bytes[at + RECORD_HEADER + 5] ^= 1;
    fs::write(&path, &bytes).unwrap();
    let err = recover(d.path()).unwrap_err();
    assert!(
        matches!(&err, Error::Corrupt { offset, message, .. }
            if *offset == at as u64 && message.contains("followed by valid ones")),
        "{err}"
    );
    // Without record 3, the same damage is a torn tail.
    let end_of_2 = at + RECORD_HEADER + big;
    fs::write(&path, &bytes[..end_of_2]).unwrap();
    let (recs, end) = recover(d.path()).unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(end.truncated_bytes, (RECORD_HEADER + big) as u64);
    assert_eq!(fs::metadata(&path).unwrap().len(), at as u64);
}

#[test]
fn oversized_record_is_refused_before_writing() {
    let d = tempfile::tempdir().unwrap();
    let wal = fresh(d.path());
    wal.append(b"a").unwrap();
    let err = wal.append(&vec![0u8; MAX_RECORD + 1]).unwrap_err();
    assert!(
        matches!(err, Error::RecordTooLarge { len, .. } if len == MAX_RECORD + 1),
        "{err}"
    );
    // The log is not poisoned and holds nothing of the refused record.
    assert_eq!(wal.append(b"b").unwrap(), 2);
    drop(wal);
    let (recs, end) = recover(d.path()).unwrap();
    assert_eq!(recs.len(), 2);
    assert_eq!(end.truncated_bytes, 0);
}

/// Bytes of a file holding `records` records of `payload` bytes each.
fn file_len(records: u64, payload: u64) -> u64 {
    HEADER_LEN as u64 + records * (RECORD_HEADER as u64 + payload)
}

#[test]
fn append_starts_a_new_file_past_the_size_limit() {
    let d = tempfile::tempdir().unwrap();
    let wal = fresh(d.path()).with_max_file_bytes(300);
    assert_eq!(wal.max_file_bytes(), 300);
    for seq in 1..=10 {
        assert_eq!(wal.append(&payload_for(seq, 50)).unwrap(), seq);
    }
    // Three 66-byte records fit in 300 bytes (262 with the header); a fourth would not.
    let files = list_files(d.path()).unwrap();
    let starts: Vec<u64> = files.iter().map(|(s, _)| *s).collect();
    assert_eq!(starts, [1, 4, 7, 10]);
    for (_, p) in &files[..3] {
        assert_eq!(fs::metadata(p).unwrap().len(), file_len(3, 50));
    }
    assert_eq!(wal.last_seq(), 10);
    // A record larger than the limit goes alone into a new file, and the next record
    // starts another.
    assert_eq!(wal.append(&payload_for(11, 400)).unwrap(), 11);
    assert_eq!(wal.append(&payload_for(12, 50)).unwrap(), 12);
    // `rotate` still starts a file only when the current one holds records...
    assert_eq!(wal.rotate().unwrap(), 13);
    assert_eq!(wal.rotate().unwrap(), 13);
    // ...and a first record larger than the limit stays in the fresh file.
    assert_eq!(wal.append(&payload_for(13, 400)).unwrap(), 13);
    let starts: Vec<u64> = list_files(d.path()).unwrap().iter().map(|f| f.0).collect();
    assert_eq!(starts, [1, 4, 7, 10, 11, 12, 13]);
    wal.sync_all().unwrap();
    assert_eq!(
        wal.disk_bytes().unwrap(),
        3 * file_len(3, 50) + 2 * file_len(1, 50) + 2 * file_len(1, 400)
    );
    drop(wal);
    let (recs, end) = recover(d.path()).unwrap();
    let sizes = [50, 50, 50, 50, 50, 50, 50, 50, 50, 50, 400, 50, 400];
    assert_records(&recs, &sizes);
    assert_eq!(end.next_seq, 14);

    // Recovery rules hold across the files: a torn tail of the newest is cut...
    let newest = d.path().join(file_name(13));
    let cut = file_len(1, 400) - 100;
    OpenOptions::new()
        .write(true)
        .open(&newest)
        .and_then(|f| f.set_len(cut))
        .unwrap();
    let (recs, end) = recover(d.path()).unwrap();
    assert_eq!((recs.len(), end.next_seq), (12, 13));
    assert_eq!(end.truncated_bytes, cut - HEADER_LEN as u64);
    // ...and the same damage in an older file is an error.
    let older = d.path().join(file_name(11));
    OpenOptions::new()
        .write(true)
        .open(&older)
        .and_then(|f| f.set_len(file_len(1, 400) - 100))
        .unwrap();
    let err = recover(d.path()).unwrap_err();
    assert!(
        matches!(&err, Error::Corrupt { path, .. } if *path == older),
        "{err}"
    );
}

#[test]
fn failed_rotation_poisons_the_log() {
    // A file already named for the next sequence number makes creating it fail.
    let d = tempfile::tempdir().unwrap();
    let wal = fresh(d.path()).with_max_file_bytes(300);
    for seq in 1..=3 {
        wal.append(&payload_for(seq, 50)).unwrap();
    }
    fs::write(d.path().join(file_name(4)), b"in the way").unwrap();
    let fourth = payload_for(4, 50);
    assert!(matches!(wal.append(&fourth), Err(Error::Io { .. })));
    assert!(matches!(wal.append(&fourth), Err(Error::Poisoned { .. })));
    assert_eq!(wal.last_seq(), 3);

    let d = tempfile::tempdir().unwrap();
    let wal = fresh(d.path());
    wal.append(b"1").unwrap();
    fs::write(d.path().join(file_name(2)), b"in the way").unwrap();
    assert!(matches!(wal.rotate(), Err(Error::Io { .. })));
    assert!(matches!(wal.append(b"2"), Err(Error::Poisoned { .. })));
    assert!(matches!(wal.sync_all(), Err(Error::Poisoned { .. })));
}

#[test]
fn remove_through_keeps_every_file_holding_a_record_above_the_watermark() {
    let d = tempfile::tempdir().unwrap();
    let wal = fresh(d.path()).with_max_file_bytes(300);
    for seq in 1..=20 {
        wal.append(&payload_for(seq, 50)).unwrap();
    }
    // Three records per file, as above.
    let starts: Vec<u64> = list_files(d.path()).unwrap().iter().map(|f| f.0).collect();
    assert_eq!(starts, [1, 4, 7, 10, 13, 16, 19]);
    let records_in = |first: u64| (first + 3).min(21) - first;
    // Watermarks in ascending order, as publishes raise them.
    for w in 0..=25 {
        wal.remove_through(w).unwrap();
        // The oldest file kept is the one holding w + 1, or the newest: every file whose
        // records are all <= w is gone, and no other.
        let oldest = starts.iter().copied().filter(|&s| s <= w + 1).max();
        let kept: Vec<u64> = starts
            .iter()
            .copied()
            .filter(|&s| Some(s) >= oldest)
            .collect();
        let left: Vec<u64> = list_files(d.path()).unwrap().iter().map(|f| f.0).collect();
        assert_eq!(left, kept, "watermark {w}");
        let (recs, _) = recover(d.path()).unwrap();
        let seqs: Vec<u64> = recs.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, (kept[0]..=20).collect::<Vec<_>>(), "watermark {w}");
        let bytes: u64 = kept.iter().map(|&s| file_len(records_in(s), 50)).sum();
        assert_eq!(wal.disk_bytes().unwrap(), bytes, "watermark {w}");
    }
    // A lower watermark later removes nothing; appends continue in sequence.
    wal.remove_through(3).unwrap();
    assert_eq!(list_files(d.path()).unwrap().len(), 1);
    assert_eq!(wal.append(b"x").unwrap(), 21);
    assert_eq!(wal.last_seq(), 21);
}

#[test]
fn size_rotation_under_concurrent_group_commit() {
    let d = tempfile::tempdir().unwrap();
    let max = 256;
    let wal = Arc::new(fresh(d.path()).with_max_file_bytes(max));
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                for i in 0..50u8 {
                    let mut payload = vec![t, i];
                    payload.resize(40, 0xAB);
                    let seq = wal.append(&payload).unwrap();
                    wal.sync_to(seq).unwrap();
                    if i % 10 == 9 {
                        wal.rotate().unwrap();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(wal.last_seq(), 200);
    drop(wal);
    let files = list_files(d.path()).unwrap();
    assert!(files.len() >= 200 / 3, "{} files", files.len());
    for (_, p) in &files {
        assert!(fs::metadata(p).unwrap().len() <= max, "{}", p.display());
    }
    let (recs, end) = recover(d.path()).unwrap();
    assert_eq!(end.next_seq, 201);
    let seqs: Vec<u64> = recs.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (1..=200).collect::<Vec<_>>());
    let mut writes: Vec<(u8, u8)> = recs.iter().map(|r| (r.payload[0], r.payload[1])).collect();
    writes.sort_unstable();
    let all: Vec<(u8, u8)> = (0..4).flat_map(|t| (0..50).map(move |i| (t, i))).collect();
    assert_eq!(writes, all);
}

#[test]
fn group_commit_from_many_threads() {
    let d = tempfile::tempdir().unwrap();
    let wal = Arc::new(fresh(d.path()));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let wal = Arc::clone(&wal);
            std::thread::spawn(move || {
                for i in 0..50u8 {
                    let seq = wal.append(&[t, i]).unwrap();
                    wal.sync_to(seq).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    drop(wal);
    let (recs, _) = recover(d.path()).unwrap();
    assert_eq!(recs.len(), 200);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    /// Arbitrary bytes after a valid header never panic recovery.
    #[test]
    fn arbitrary_log_bytes_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
        let d = tempfile::tempdir().unwrap();
        let mut bytes = frame::encode(WAL_KIND, [1, 0, 0, 0], &[])[..HEADER_LEN].to_vec();
        bytes.extend_from_slice(&body);
        fs::write(d.path().join(file_name(1)), &bytes).unwrap();
        let _ = recover(d.path());
    }
}
