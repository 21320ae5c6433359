//! The bytes of a sealed sparse index, and a view that reads them in place (from a mapped
//! file). All numbers little-endian; every section starts 8-byte aligned relative to the body.
//!
//! ```text
//! header   24 bytes   terms u32, blocks u32, postings u64, data_len u64
//! terms    terms × 24    term u32, first_block u32, blocks u32, len u32, max f32, min f32
//!                        ascending by term; a term's blocks are contiguous
//! blocks   blocks × 40   first u32, last u32, max f32, min f32, count u32, width u32,
//!                        start u64 (index of its first weight), data u64 (byte offset of
//!                        its packed offsets in `data`)
//! weights  postings × f32   exact, in list order
//! data     data_len bytes   per block: count − 1 gaps (offset − previous − 1), each `width`
//!                           bits, packed LSB first, ceil((count − 1)·width / 8) bytes
//! ```
//! A block holds 1..=[`BLOCK`] postings of one term, rows strictly ascending, `first` and
//! `last` its first and last row, `max`/`min` its largest and smallest weight; a term's
//! `max`/`min` are those of its blocks and `len` its postings. Weights are exact `f32`: a
//! quantized copy would need a re-scoring pass over the rows' vectors to stay exact, and the
//! block bounds already give the skipping (no measurement yet says quantizing pays).
//!
//! [`PostingsView::new`] checks the section sizes only (O(1), for every query);
//! [`PostingsView::verify`] checks everything above once, when a segment is opened, so that
//! the search can trust the structure (it still reads every byte through checked accessors,
//! and treats an inconsistency as the end of a list, never a panic).

#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

use super::BLOCK;
use super::postings::Postings;

const HEADER: usize = 24;
const TERM: usize = 24;
const BLOCK_ENTRY: usize = 40;

/// Why an index cannot be encoded or its bytes are not one.
pub type FormatError = String;

/// Encodes `postings`. Fails only past the format's `u32` counts (terms, blocks per index).
pub fn encode(postings: &Postings) -> Result<Vec<u8>, FormatError> {
    let sorted = postings.sorted();
    let mut terms = Vec::with_capacity(sorted.len() * TERM);
    let mut blocks = Vec::new();
    let mut weights = Vec::with_capacity(postings.len() * 4);
    let mut data = Vec::new();
    let (mut n_blocks, mut n_postings) = (0u64, 0u64);
    let too_many = |what: &str| format!("too many {what} for a sparse index (over 2^32)");
    for (term, list) in &sorted {
        let first_block = u32::try_from(n_blocks).map_err(|_| too_many("blocks"))?;
        let mut list_max = f32::NEG_INFINITY;
        let mut list_min = f32::INFINITY;
        let mut count_blocks = 0u32;
        for chunk in list.chunks(BLOCK) {
            let (max, min) = chunk
                .iter()
                .fold((f32::NEG_INFINITY, f32::INFINITY), |(a, b), &(_, w)| {
                    (a.max(w), b.min(w))
                });
            list_max = list_max.max(max);
            list_min = list_min.min(min);
            let first = chunk.first().map_or(0, |p| p.0);
            let last = chunk.last().map_or(0, |p| p.0);
            let gaps: Vec<u32> = chunk
                .windows(2)
                .map(|w| match w {
                    [a, b] => b.0.wrapping_sub(a.0).wrapping_sub(1),
                    _ => 0,
                })
                .collect();
            let width = gaps
                .iter()
                .map(|&g| 32 - g.leading_zeros())
                .max()
                .unwrap_or(0);
            for v in [first, last] {
                blocks.extend_from_slice(&v.to_le_bytes());
            }
            for v in [max, min] {
                blocks.extend_from_slice(&v.to_le_bytes());
            }
            blocks.extend_from_slice(&(chunk.len() as u32).to_le_bytes());
            blocks.extend_from_slice(&width.to_le_bytes());
            blocks.extend_from_slice(&n_postings.to_le_bytes());
            blocks.extend_from_slice(&(data.len() as u64).to_le_bytes());
            pack(&gaps, width, &mut data);
            for &(_, w) in chunk.iter() {
                weights.extend_from_slice(&w.to_le_bytes());
            }
            n_postings += chunk.len() as u64;
            n_blocks += 1;
            count_blocks += 1;
        }
        let len = u32::try_from(list.len()).map_err(|_| too_many("postings in one list"))?;
        terms.extend_from_slice(&term.to_le_bytes());
        terms.extend_from_slice(&first_block.to_le_bytes());
        terms.extend_from_slice(&count_blocks.to_le_bytes());
        terms.extend_from_slice(&len.to_le_bytes());
        terms.extend_from_slice(&list_max.to_le_bytes());
        terms.extend_from_slice(&list_min.to_le_bytes());
    }
    let n_terms = u32::try_from(sorted.len()).map_err(|_| too_many("terms"))?;
    let n_blocks = u32::try_from(n_blocks).map_err(|_| too_many("blocks"))?;
    let mut out =
        Vec::with_capacity(HEADER + terms.len() + blocks.len() + weights.len() + data.len());
    out.extend_from_slice(&n_terms.to_le_bytes());
    out.extend_from_slice(&n_blocks.to_le_bytes());
    out.extend_from_slice(&n_postings.to_le_bytes());
    out.extend_from_slice(&(data.len() as u64).to_le_bytes());
    out.extend_from_slice(&terms);
    out.extend_from_slice(&blocks);
    out.extend_from_slice(&weights);
    out.extend_from_slice(&data);
    Ok(out)
}

/// Packs `values` (each below 2^width) LSB first.
fn pack(values: &[u32], width: u32, out: &mut Vec<u8>) {
    let (mut acc, mut bits) = (0u64, 0u32);
    for &v in values {
        acc |= u64::from(v) << bits;
        bits += width;
        while bits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            bits -= 8;
        }
    }
    if bits > 0 {
        out.push(acc as u8);
    }
}

/// Bytes `n` values of `width` bits take.
fn packed_len(n: usize, width: u32) -> usize {
    (n * width as usize).div_ceil(8)
}

/// Unpacks `out.len()` values of `width` bits; `None` if `bytes` is too short.
fn unpack(bytes: &[u8], width: u32, out: &mut [u32]) -> Option<()> {
    let mask = if width >= 32 {
        u64::from(u32::MAX)
    } else {
        (1u64 << width) - 1
    };
    let (mut acc, mut bits) = (0u64, 0u32);
    let mut it = bytes.iter();
    for slot in out.iter_mut() {
        while bits < width {
            acc |= u64::from(*it.next()?) << bits;
            bits += 8;
        }
        *slot = (acc & mask) as u32;
        acc >>= width;
        bits -= width;
    }
    Some(())
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at.checked_add(4)?)?
        .try_into()
        .ok()
        .map(u32::from_le_bytes)
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at.checked_add(8)?)?
        .try_into()
        .ok()
        .map(u64::from_le_bytes)
}

fn f32_at(b: &[u8], at: usize) -> Option<f32> {
    u32_at(b, at).map(f32::from_bits)
}

/// One term's entry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TermEntry {
    pub term: u32,
    pub first_block: u32,
    pub blocks: u32,
    /// Postings of the term (rows holding it, deleted ones included).
    pub len: u32,
    pub max: f32,
    pub min: f32,
}

/// One block's entry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockEntry {
    pub first: u32,
    pub last: u32,
    pub max: f32,
    pub min: f32,
    pub count: u32,
    pub width: u32,
    pub start: u64,
    pub data: u64,
}

/// A sealed index read in place.
#[derive(Debug, Clone, Copy)]
pub struct PostingsView<'a> {
    terms: &'a [u8],
    blocks: &'a [u8],
    weights: &'a [u8],
    data: &'a [u8],
}

impl<'a> PostingsView<'a> {
    /// Splits `bytes` into its sections, checking their sizes add up exactly.
    pub fn new(bytes: &'a [u8]) -> Result<PostingsView<'a>, FormatError> {
        let short = || "sparse index shorter than its header".to_string();
        let n_terms = u32_at(bytes, 0).ok_or_else(short)? as usize;
        let n_blocks = u32_at(bytes, 4).ok_or_else(short)? as usize;
        let n_postings = u64_at(bytes, 8).ok_or_else(short)?;
        let data_len = u64_at(bytes, 16).ok_or_else(short)?;
        let size = |n: u64, each: u64| n.checked_mul(each);
        let parts = [
            size(n_terms as u64, TERM as u64),
            size(n_blocks as u64, BLOCK_ENTRY as u64),
            size(n_postings, 4),
            Some(data_len),
        ];
        let mut at = HEADER;
        let mut sections = [&[][..]; 4];
        for (slot, len) in sections.iter_mut().zip(parts) {
            let len = len
                .and_then(|l| usize::try_from(l).ok())
                .ok_or_else(|| "sparse index section sizes overflow".to_string())?;
            let end = at
                .checked_add(len)
                .ok_or_else(|| "sparse index section sizes overflow".to_string())?;
            *slot = bytes.get(at..end).ok_or_else(|| {
                format!(
                    "sparse index is {} bytes, its header needs at least {end}",
                    bytes.len()
                )
            })?;
            at = end;
        }
        if at != bytes.len() {
            return Err(format!(
                "sparse index is {} bytes, its header says {at}",
                bytes.len()
            ));
        }
        let [terms, blocks, weights, data] = sections;
        Ok(PostingsView {
            terms,
            blocks,
            weights,
            data,
        })
    }

    pub fn term_count(&self) -> usize {
        self.terms.len() / TERM
    }

    pub fn term_at(&self, i: usize) -> Option<TermEntry> {
        let at = i.checked_mul(TERM)?;
        Some(TermEntry {
            term: u32_at(self.terms, at)?,
            first_block: u32_at(self.terms, at + 4)?,
            blocks: u32_at(self.terms, at + 8)?,
            len: u32_at(self.terms, at + 12)?,
            max: f32_at(self.terms, at + 16)?,
            min: f32_at(self.terms, at + 20)?,
        })
    }

    /// The entry of `term`, by binary search.
    pub fn term(&self, term: u32) -> Option<TermEntry> {
        let (mut lo, mut hi) = (0, self.term_count());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let e = self.term_at(mid)?;
            match e.term.cmp(&term) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(e),
            }
        }
        None
    }

    pub fn block_at(&self, i: usize) -> Option<BlockEntry> {
        let at = i.checked_mul(BLOCK_ENTRY)?;
        Some(BlockEntry {
            first: u32_at(self.blocks, at)?,
            last: u32_at(self.blocks, at + 4)?,
            max: f32_at(self.blocks, at + 8)?,
            min: f32_at(self.blocks, at + 12)?,
            count: u32_at(self.blocks, at + 16)?,
            width: u32_at(self.blocks, at + 20)?,
            start: u64_at(self.blocks, at + 24)?,
            data: u64_at(self.blocks, at + 32)?,
        })
    }

    /// Weight `i` (in list order across the index).
    pub fn weight(&self, i: u64) -> Option<f32> {
        f32_at(self.weights, usize::try_from(i).ok()?.checked_mul(4)?)
    }

    /// Decodes a block's rows into `out` (at least `count` long); returns `count`.
    pub fn decode_block(&self, b: &BlockEntry, out: &mut [u32; BLOCK]) -> Option<usize> {
        let n = b.count as usize;
        if n == 0 || n > BLOCK || b.width > 32 {
            return None;
        }
        let start = usize::try_from(b.data).ok()?;
        let bytes = self
            .data
            .get(start..start.checked_add(packed_len(n - 1, b.width))?)?;
        let (first, rest) = out.split_first_mut()?;
        *first = b.first;
        let rest = rest.get_mut(..n - 1)?;
        unpack(bytes, b.width, rest)?;
        let mut prev = b.first;
        for slot in rest.iter_mut() {
            prev = prev.checked_add(*slot)?.checked_add(1)?;
            *slot = prev;
        }
        Some(n)
    }

    /// Rows holding `term` that `live` accepts (for document frequencies when some rows are
    /// deleted; without deletions the term's `len` is the count).
    pub fn count(&self, term: u32, live: impl Fn(u32) -> bool) -> u64 {
        let Some(t) = self.term(term) else {
            return 0;
        };
        let mut buf = [0u32; BLOCK];
        let mut n = 0;
        for b in t.first_block..t.first_block.saturating_add(t.blocks) {
            let Some(e) = self.block_at(b as usize) else {
                break;
            };
            let Some(len) = self.decode_block(&e, &mut buf) else {
                break;
            };
            n += buf.iter().take(len).filter(|&&r| live(r)).count() as u64;
        }
        n
    }

    /// Checks the whole structure (see the module documentation) for a segment of `rows`
    /// rows: what [`crate::sparse::maxscore`] relies on.
    pub fn verify(&self, rows: u64) -> Result<(), FormatError> {
        let mut next_block = 0u64;
        let mut next_weight = 0u64;
        let mut next_data = 0u64;
        let mut prev_term = None;
        let mut buf = [0u32; BLOCK];
        for i in 0..self.term_count() {
            let t = self.term_at(i).ok_or("term table ends early")?;
            let at = |what: &str| format!("term {} (entry {i}): {what}", t.term);
            if prev_term.is_some_and(|p| p >= t.term) {
                return Err(at("terms not strictly ascending"));
            }
            prev_term = Some(t.term);
            if u64::from(t.first_block) != next_block || t.blocks == 0 {
                return Err(at("blocks not contiguous"));
            }
            let (mut len, mut max, mut min) = (0u64, f32::NEG_INFINITY, f32::INFINITY);
            let mut prev_last: Option<u32> = None;
            for b in 0..t.blocks {
                let index = u64::from(t.first_block) + u64::from(b);
                let e = usize::try_from(index)
                    .ok()
                    .and_then(|i| self.block_at(i))
                    .ok_or_else(|| at("block table ends early"))?;
                let bad = |what: &str| at(&format!("block {index}: {what}"));
                if e.start != next_weight || e.data != next_data {
                    return Err(bad("weights or offsets not contiguous"));
                }
                let n = self
                    .decode_block(&e, &mut buf)
                    .ok_or_else(|| bad("offsets do not decode"))?;
                let rows_in = buf.get(..n).ok_or_else(|| bad("offsets do not decode"))?;
                let used = (n - 1) * e.width as usize;
                let padding_clean = used.is_multiple_of(8)
                    || usize::try_from(e.data)
                        .ok()
                        .and_then(|d| self.data.get(d + used / 8))
                        .is_some_and(|&last| last >> (used % 8) == 0);
                if !padding_clean {
                    return Err(bad("unused bits after the packed offsets are not 0"));
                }
                if rows_in.last() != Some(&e.last) || u64::from(e.last) >= rows {
                    return Err(bad(&format!(
                        "last row {} wrong or past the segment's {rows} rows",
                        e.last
                    )));
                }
                if prev_last.is_some_and(|p| p >= e.first) {
                    return Err(bad("rows not ascending across blocks"));
                }
                prev_last = Some(e.last);
                let (mut bmax, mut bmin) = (f32::NEG_INFINITY, f32::INFINITY);
                for k in 0..e.count {
                    let w = self
                        .weight(e.start + u64::from(k))
                        .ok_or_else(|| bad("weights end early"))?;
                    if !w.is_finite() {
                        return Err(bad("weight not finite"));
                    }
                    bmax = bmax.max(w);
                    bmin = bmin.min(w);
                }
                if bmax.to_bits() != e.max.to_bits() || bmin.to_bits() != e.min.to_bits() {
                    return Err(bad("stored maximum or minimum weight is wrong"));
                }
                max = max.max(bmax);
                min = min.min(bmin);
                len += u64::from(e.count);
                next_weight += u64::from(e.count);
                next_data += packed_len(n - 1, e.width) as u64;
                next_block += 1;
            }
            if len != u64::from(t.len)
                || max.to_bits() != t.max.to_bits()
                || min.to_bits() != t.min.to_bits()
            {
                return Err(at("length, maximum or minimum disagrees with its blocks"));
            }
        }
        if next_block * BLOCK_ENTRY as u64 != self.blocks.len() as u64
            || next_weight * 4 != self.weights.len() as u64
            || next_data != self.data.len() as u64
        {
            return Err("sparse index holds blocks, weights or offsets no term uses".into());
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample(rows: u32, seed: u32) -> Postings {
        let mut p = Postings::new();
        for r in 0..rows {
            let mut terms = vec![];
            let mut weights = vec![];
            for t in 0..20u32 {
                let h = (r.wrapping_mul(2_654_435_761) ^ t.wrapping_mul(40_503) ^ seed) % 7;
                if h < 2 + t % 3 {
                    terms.push(t * 1000 + seed % 5);
                    weights.push((h as f32 - 2.0) * 0.75 + t as f32 / 10.0);
                }
            }
            p.push(r * 3 + r % 2, &terms, &weights);
        }
        p
    }

    #[test]
    fn encoded_lists_decode_to_the_same_postings() {
        let p = sample(1000, 7);
        let bytes = encode(&p).unwrap();
        let v = PostingsView::new(&bytes).unwrap();
        v.verify(3000).unwrap();
        assert!(v.verify(2000).is_err(), "rows past the segment are refused");
        let mut buf = [0u32; BLOCK];
        for (term, list) in p.sorted() {
            let e = v.term(term).unwrap();
            assert_eq!(e.len as usize, list.len());
            let mut got = vec![];
            for b in e.first_block..e.first_block + e.blocks {
                let be = v.block_at(b as usize).unwrap();
                let n = v.decode_block(&be, &mut buf).unwrap();
                for (k, &row) in buf[..n].iter().enumerate() {
                    got.push((row, v.weight(be.start + k as u64).unwrap()));
                }
            }
            assert_eq!(got, list);
        }
        assert!(v.term(u32::MAX).is_none());
        let (term, list) = p.sorted()[3];
        assert_eq!(v.count(term, |_| true), list.len() as u64);
        let odd = list.iter().filter(|(r, _)| r % 2 == 1).count() as u64;
        assert_eq!(v.count(term, |r| r % 2 == 1), odd);
        assert_eq!(v.count(u32::MAX, |_| true), 0);
    }

    #[test]
    fn empty_index_round_trips() {
        let bytes = encode(&Postings::new()).unwrap();
        assert_eq!(bytes.len(), HEADER);
        PostingsView::new(&bytes).unwrap().verify(0).unwrap();
    }

    #[test]
    fn wide_gaps_pack_at_32_bits() {
        let mut p = Postings::new();
        p.push(0, &[5], &[1.0]);
        p.push(u32::MAX - 1, &[5], &[2.0]);
        let bytes = encode(&p).unwrap();
        let v = PostingsView::new(&bytes).unwrap();
        v.verify(u64::from(u32::MAX)).unwrap();
        assert_eq!(v.block_at(0).unwrap().width, 32);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// A damaged index never panics: `new`, `verify` and decoding return errors or
        /// values. (The frame's checksum catches damage before this; this is the second line.)
        #[test]
        fn damaged_bytes_never_panic(at in 0usize..4000, xor in 1u8..=255, cut in 0usize..4000) {
            let mut bytes = encode(&sample(60, 3)).unwrap();
            let at = at % bytes.len();
            bytes[at] ^= xor;
            bytes.truncate(cut.max(at + 1));
            if let Ok(v) = PostingsView::new(&bytes) {
                let _ = v.verify(200);
                let mut buf = [0u32; BLOCK];
                for i in 0..v.term_count() {
                    if let Some(t) = v.term_at(i)
                        && let Some(b) = v.block_at(t.first_block as usize)
                    {
                        let _ = v.decode_block(&b, &mut buf);
                    }
                }
            }
        }

        /// Flipping one bit of any row offset, count, width or bound is caught by `verify`.
        /// Term ids and weights are left out: any value is valid for them (the frame's
        /// checksum catches their damage), as long as the bounds stay right.
        #[test]
        fn structural_damage_is_detected(pick in 0usize..10_000, bit in 0u32..8) {
            let bytes0 = encode(&sample(300, 11)).unwrap();
            let v = PostingsView::new(&bytes0).unwrap();
            let terms_end = HEADER + v.terms.len();
            let weights_start = terms_end + v.blocks.len();
            let weights_end = weights_start + v.weights.len();
            let checked: Vec<usize> = (0..bytes0.len())
                .filter(|&at| !(weights_start..weights_end).contains(&at))
                .filter(|&at| !((HEADER..terms_end).contains(&at) && (at - HEADER) % TERM < 4))
                .collect();
            let at = checked[pick % checked.len()];
            let mut bytes = bytes0.clone();
            bytes[at] ^= 1 << bit;
            let ok = PostingsView::new(&bytes).and_then(|v| v.verify(900));
            prop_assert!(ok.is_err(), "flip at byte {} bit {} not detected", at, bit);
        }
    }
}
