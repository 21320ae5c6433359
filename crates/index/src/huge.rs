//! Large arrays that searches read at random (codes, links), in memory that can be backed by
//! transparent huge pages.
//!
//! A graph search touches a few hundred rows scattered over tens of megabytes: with 4 KiB
//! pages nearly every row costs a TLB miss and a page walk on top of its cache misses. An
//! anonymous mapping advised `MADV_HUGEPAGE` is backed by 2 MiB pages where the kernel allows
//! it (Linux with transparent huge pages in `madvise` or `always` mode); elsewhere the advice
//! fails harmlessly and the buffer behaves as ordinary memory.

use memmap2::{Advice, MmapMut};

/// A zero-initialised, page-aligned byte buffer of fixed length.
pub struct HugeBytes {
    map: Option<MmapMut>,
}

impl HugeBytes {
    /// `len` zero bytes. Falls back to no buffer (length 0) only for `len == 0`; a failed
    /// mapping is an allocation failure and aborts like `Vec`'s.
    pub fn zeroed(len: usize) -> HugeBytes {
        if len == 0 {
            return HugeBytes { map: None };
        }
        let map = match MmapMut::map_anon(len) {
            Ok(m) => m,
            Err(e) => panic!("cannot allocate {len} bytes: {e}"),
        };
        // Advice only: without transparent huge pages the buffer simply keeps 4 KiB pages.
        let _ = map.advise(Advice::HugePage);
        HugeBytes { map: Some(map) }
    }

    pub fn len(&self) -> usize {
        self.map.as_ref().map_or(0, |m| m.len())
    }

    pub fn as_slice(&self) -> &[u8] {
        self.map.as_deref().unwrap_or_default()
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        self.map.as_deref_mut().unwrap_or_default()
    }
}

impl Clone for HugeBytes {
    fn clone(&self) -> HugeBytes {
        let mut copy = HugeBytes::zeroed(self.len());
        copy.as_mut_slice().copy_from_slice(self.as_slice());
        copy
    }
}

impl std::fmt::Debug for HugeBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HugeBytes({} bytes)", self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_aligned_and_cloned() {
        let mut b = HugeBytes::zeroed(5 << 20);
        assert!(b.as_slice().iter().all(|&x| x == 0));
        assert_eq!(b.as_slice().as_ptr().align_offset(4096), 0);
        b.as_mut_slice()[12345] = 7;
        let c = b.clone();
        assert_eq!(c.as_slice()[12345], 7);
        assert_eq!(HugeBytes::zeroed(0).len(), 0);
    }
}
