//! A roaring bitmap spread into plain words (one bit per row), for searches that test many
//! more rows than the bitmap holds: a bit test costs a load, `RoaringBitmap::contains` a
//! container search.
//!
//! Iterating a bitmap of 18,000 rows cost about 3 ns per row on WordNet, more than the two-hop
//! graph search that used the result. The bitmap's portable serialization (the format every
//! Roaring implementation shares: <https://github.com/RoaringBitmap/RoaringFormatSpec>) holds
//! dense containers as the very words needed here, so the words are copied from it instead.

use roaring::RoaringBitmap;

const SERIAL_COOKIE_NO_RUNCONTAINER: u32 = 12346;
const SERIAL_COOKIE: u32 = 12347;
const NO_OFFSET_THRESHOLD: usize = 4;

/// `bitmap` as `rows.div_ceil(64)` words: word `i` holds rows `64·i .. 64·i + 63` (rows past
/// the last word are left out).
pub fn dense_words(bitmap: &RoaringBitmap, rows: usize) -> Vec<u64> {
    let mut words = vec![0u64; rows.div_ceil(64)];
    let mut bytes = Vec::with_capacity(bitmap.serialized_size());
    let parsed = bitmap.serialize_into(&mut bytes).is_ok() && spread(&bytes, &mut words).is_some();
    if !parsed {
        // Not the format this reader knows: the slow way, row by row.
        words.iter_mut().for_each(|w| *w = 0);
        for row in bitmap.iter() {
            set(&mut words, row);
        }
    }
    words
}

#[inline]
fn set(words: &mut [u64], row: u32) {
    if let Some(w) = words.get_mut(row as usize / 64) {
        *w |= 1 << (row % 64);
    }
}

/// Reads the portable format into `words`; `None` when the bytes are not as expected.
fn spread(bytes: &[u8], words: &mut [u64]) -> Option<()> {
    let mut at = 0usize;
    let u16_at = |at: usize| -> Option<u16> {
        Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
    };
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    };
    let cookie = u32_at(at)?;
    at += 4;
    let (containers, runs) = if cookie == SERIAL_COOKIE_NO_RUNCONTAINER {
        let n = u32_at(at)? as usize;
        at += 4;
        (n, None)
    } else if cookie & 0xFFFF == SERIAL_COOKIE {
        let n = (cookie >> 16) as usize + 1;
        let flags = bytes.get(at..at + n.div_ceil(8))?;
        at += n.div_ceil(8);
        (n, Some(flags))
    } else {
        return None;
    };
    let header = at;
    at += 4 * containers;
    if runs.is_none() || containers >= NO_OFFSET_THRESHOLD {
        at += 4 * containers;
    }
    for c in 0..containers {
        let key = u32::from(u16_at(header + 4 * c)?);
        let cardinality = usize::from(u16_at(header + 4 * c + 2)?) + 1;
        let base = (key << 16) as usize;
        let is_run = runs.is_some_and(|f| f.get(c / 8).is_some_and(|b| b & (1 << (c % 8)) != 0));
        if is_run {
            let n = usize::from(u16_at(at)?);
            at += 2;
            for r in 0..n {
                let start = u32::from(u16_at(at + 4 * r)?);
                let len = u32::from(u16_at(at + 4 * r + 2)?);
                for low in start..=start + len {
                    set(words, (key << 16) | low);
                }
            }
            at += 4 * n;
        } else if cardinality <= 4096 {
            for i in 0..cardinality {
                set(words, (key << 16) | u32::from(u16_at(at + 2 * i)?));
            }
            at += 2 * cardinality;
        } else {
            let body = bytes.get(at..at + 8192)?;
            let first = base / 64;
            for (i, chunk) in body.chunks_exact(8).enumerate() {
                let w = u64::from_le_bytes(chunk.try_into().ok()?);
                if w != 0 {
                    match words.get_mut(first + i) {
                        Some(slot) => *slot |= w,
                        // Rows past `rows`: cut off, as `set` does.
                        None => break,
                    }
                }
            }
            at += 8192;
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive(bitmap: &RoaringBitmap, rows: usize) -> Vec<u64> {
        let mut words = vec![0u64; rows.div_ceil(64)];
        for row in bitmap.iter() {
            set(&mut words, row);
        }
        words
    }

    proptest! {
        #[test]
        fn same_words_as_row_by_row(
            sparse in proptest::collection::vec(0u32..300_000, 0..3000),
            dense_from in 0u32..200_000,
            dense_len in 0u32..70_000,
            rows in 0usize..300_000,
        ) {
            let mut bitmap: RoaringBitmap = sparse.into_iter().collect();
            // A dense stretch: bitmap containers (more than 4,096 rows of one 65,536 block).
            bitmap.insert_range(dense_from..dense_from + dense_len);
            prop_assert_eq!(dense_words(&bitmap, rows), naive(&bitmap, rows));
        }
    }

    #[test]
    fn empty_and_full_blocks() {
        assert_eq!(dense_words(&RoaringBitmap::new(), 100), vec![0, 0]);
        let full: RoaringBitmap = (0..131_072).collect();
        assert!(dense_words(&full, 131_072).iter().all(|&w| w == u64::MAX));
        let spread = dense_words(&full, 100);
        assert_eq!(spread, vec![u64::MAX, u64::MAX]);
    }
}
