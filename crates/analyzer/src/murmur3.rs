//! MurmurHash3, x86 32-bit variant (Austin Appleby's public-domain algorithm), the hash that
//! Python's `mmh3.hash` computes and fastembed's `qdrant/bm25` turns into term ids.

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

fn mix(k: u32) -> u32 {
    k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2)
}

/// The 32-bit hash of `bytes` with `seed`.
pub(crate) fn hash32(bytes: &[u8], seed: u32) -> u32 {
    let mut h = seed;
    let mut blocks = bytes.chunks_exact(4);
    for b in &mut blocks {
        let k = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        h ^= mix(k);
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        let k = tail
            .iter()
            .rev()
            .fold(0u32, |k, &byte| (k << 8) | u32::from(byte));
        h ^= mix(k);
    }
    // The length is mixed in modulo 2^32, as the reference does.
    h ^= bytes.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

#[cfg(test)]
mod tests {
    use super::hash32;

    /// Published values: `mmh3.hash("foo") == -156908512` (mmh3's README) and the SMHasher
    /// test strings (tails of 0, 1 and 3 bytes).
    #[test]
    fn known_values() {
        assert_eq!(hash32(b"", 0), 0);
        assert_eq!(hash32(b"", 1), 0x514e_28b7);
        assert_eq!(hash32(b"foo", 0) as i32, -156_908_512);
        assert_eq!(hash32(b"hello", 0), 0x248b_fa47);
        assert_eq!(hash32(b"Hello, world!", 1234), 0xfaf6_cdb3);
        assert_eq!(
            hash32(b"The quick brown fox jumps over the lazy dog", 0),
            0x2e4f_f723
        );
    }
}
