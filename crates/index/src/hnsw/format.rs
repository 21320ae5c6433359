//! The graph as bytes (the body of a segment's `hnsw-<i>` file; the engine adds the file
//! envelope). All numbers little-endian `u32`:
//!
//! ```text
//! m, m0, n, entry (u32::MAX = empty graph), max_level, upper_blocks
//! levels        n bytes, zero-padded to a multiple of 4
//! links0        n × (1 + m0)          count, then neighbour offsets
//! upper_start   n + 1                 block index of each node's level-1 list
//! upper         upper_blocks × (1 + m)
//! ```
//! `decode` checks every count and every neighbour id, so search can trust a decoded graph.

#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

use super::HnswGraph;

/// The widest level-0 list `decode` accepts (so `m` ≤ 2048 for the builder's `m0 = 2m`).
pub(crate) const MAX_M0: usize = 4096;

/// Why bytes are not a valid graph.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid HNSW graph at byte {offset}: {message}")]
pub struct FormatError {
    pub offset: usize,
    pub message: String,
}

fn err(offset: usize, message: impl Into<String>) -> FormatError {
    FormatError {
        offset,
        message: message.into(),
    }
}

pub fn encode(g: &HnswGraph) -> Vec<u8> {
    let n = g.levels.len();
    let mut out =
        Vec::with_capacity(24 + n + 4 * (g.links0.len() + g.upper_start.len() + g.upper.len()));
    let upper_blocks = g.upper.len() / (1 + g.m);
    // Every graph comes from `build` (which refuses more than `MAX_ROWS` rows or `u32::MAX`
    // upper blocks and clamps `m`) or from `decode` (which read them as `u32`): all fit.
    for v in [
        g.m,
        g.m0,
        n,
        g.entry.map_or(u32::MAX as usize, |e| e as usize),
        g.max_level,
        upper_blocks,
    ] {
        out.extend_from_slice(&(v as u32).to_le_bytes());
    }
    out.extend_from_slice(&g.levels);
    out.resize(out.len() + (4 - n % 4) % 4, 0);
    for part in [&g.links0[..], &g.upper_start, &g.upper] {
        for v in part.iter() {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn u32s(&mut self, count: usize) -> Result<Vec<u32>, FormatError> {
        let len = count
            .checked_mul(4)
            .ok_or_else(|| err(self.at, "size overflows"))?;
        let end = self
            .at
            .checked_add(len)
            .ok_or_else(|| err(self.at, "size overflows"))?;
        let b = self.bytes.get(self.at..end).ok_or_else(|| {
            err(
                self.at,
                format!(
                    "needs {len} more bytes, has {}",
                    self.bytes.len().saturating_sub(self.at)
                ),
            )
        })?;
        self.at = end;
        Ok(b.chunks_exact(4)
            .map(|c| <[u8; 4]>::try_from(c).map_or(0, u32::from_le_bytes))
            .collect())
    }
}

pub fn decode(bytes: &[u8]) -> Result<HnswGraph, FormatError> {
    let mut r = Reader { bytes, at: 0 };
    let head = r.u32s(6)?;
    let [m, m0, n, entry, max_level, upper_blocks] =
        <[u32; 6]>::try_from(head).map_err(|_| err(0, "short header"))?;
    let (m, m0, n, max_level, upper_blocks) = (
        m as usize,
        m0 as usize,
        n as usize,
        max_level as usize,
        upper_blocks as usize,
    );
    if m < 2 || m0 < m || m0 > MAX_M0 {
        return Err(err(0, format!("m = {m}, m0 = {m0} out of range")));
    }
    let padded = n
        .checked_add((4 - n % 4) % 4)
        .ok_or_else(|| err(8, "n overflows"))?;
    let levels = bytes
        .get(24..24 + padded)
        .ok_or_else(|| err(24, "levels cut short"))?
        .get(..n)
        .ok_or_else(|| err(24, "levels cut short"))?
        .to_vec();
    r.at = 24 + padded;
    let links0 = r.u32s(
        n.checked_mul(1 + m0)
            .ok_or_else(|| err(r.at, "size overflows"))?,
    )?;
    let links0_at = 24 + padded;
    let upper_start = r.u32s(n + 1)?;
    let upper_start_at = r.at - 4 * (n + 1);
    let upper = r.u32s(
        upper_blocks
            .checked_mul(1 + m)
            .ok_or_else(|| err(r.at, "size overflows"))?,
    )?;
    if r.at != bytes.len() {
        return Err(err(r.at, "trailing bytes"));
    }
    // Links: counts within width, ids within the graph.
    let check = |list: &[u32], width: usize, at: usize| -> Result<(), FormatError> {
        for (b, block) in list.chunks_exact(1 + width).enumerate() {
            let count = block.first().copied().unwrap_or(0) as usize;
            let ids = block.get(1..1 + count).ok_or_else(|| {
                err(
                    at + 4 * b * (1 + width),
                    format!("count {count} exceeds {width}"),
                )
            })?;
            if let Some(bad) = ids.iter().find(|&&id| id as usize >= n) {
                return Err(err(
                    at + 4 * b * (1 + width),
                    format!("neighbour {bad} is not below n = {n}"),
                ));
            }
        }
        Ok(())
    };
    check(&links0, m0, links0_at)?;
    check(&upper, m, upper_start_at + 4 * (n + 1))?;
    let mut expect = 0usize;
    for (i, (&start, &level)) in upper_start.iter().zip(&levels).enumerate() {
        if start as usize != expect {
            return Err(err(
                upper_start_at + 4 * i,
                "upper_start does not follow the levels",
            ));
        }
        expect += usize::from(level);
    }
    if upper_start.last().map(|&x| x as usize) != Some(expect) || expect != upper_blocks {
        return Err(err(
            upper_start_at,
            "upper block count does not match the levels",
        ));
    }
    let entry = if entry == u32::MAX {
        if n != 0 {
            return Err(err(12, "non-empty graph without an entry point"));
        }
        None
    } else {
        let level = levels
            .get(entry as usize)
            .ok_or_else(|| err(12, "entry point out of range"))?;
        if usize::from(*level) != max_level || levels.iter().any(|&l| usize::from(l) > max_level) {
            return Err(err(16, "max_level does not match the entry point's level"));
        }
        Some(entry)
    };
    Ok(HnswGraph {
        m,
        m0,
        entry,
        max_level,
        levels,
        links0: crate::huge::HugeArray::from_slice(&links0),
        upper_start,
        upper,
    })
}
