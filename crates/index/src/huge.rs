//! Large arrays that searches read at random (codes, level-0 links), in memory that can be backed by
//! transparent huge pages.
//!
//! A graph search touches a few hundred rows scattered over tens of megabytes: with 4 KiB
//! pages nearly every row costs a TLB miss and a page walk on top of its cache misses. An
//! anonymous mapping advised `MADV_HUGEPAGE` is backed by 2 MiB pages where the kernel allows
//! it (Linux with transparent huge pages in `madvise` or `always` mode); elsewhere the advice
//! fails harmlessly and the buffer behaves as ordinary memory.

use bytemuck::Pod;
use memmap2::{Advice, MmapMut};
use std::marker::PhantomData;

/// A zero-initialised, page-aligned array of plain numbers of fixed length.
pub struct HugeArray<T: Pod> {
    map: Option<MmapMut>,
    len: usize,
    _item: PhantomData<T>,
}

impl<T: Pod> HugeArray<T> {
    /// `len` zeroed items. A failed mapping is an allocation failure and aborts like `Vec`'s.
    pub fn zeroed(len: usize) -> HugeArray<T> {
        let bytes = len * size_of::<T>();
        let map = (bytes > 0).then(|| {
            let map = match MmapMut::map_anon(bytes) {
                Ok(m) => m,
                Err(e) => panic!("cannot allocate {bytes} bytes: {e}"),
            };
            // Advice only: without transparent huge pages the buffer keeps 4 KiB pages.
            let _ = map.advise(Advice::HugePage);
            map
        });
        HugeArray {
            map,
            len,
            _item: PhantomData,
        }
    }

    /// A copy of `items`.
    pub fn from_slice(items: &[T]) -> HugeArray<T> {
        let mut a = HugeArray::zeroed(items.len());
        a.as_mut_slice().copy_from_slice(items);
        a
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn as_slice(&self) -> &[T] {
        // A mapping is page-aligned, so the cast cannot fail on alignment or size.
        self.map.as_deref().map_or(&[], |b| bytemuck::cast_slice(b))
    }

    pub fn as_mut_slice(&mut self) -> &mut [T] {
        self.map
            .as_deref_mut()
            .map_or(&mut [], |b| bytemuck::cast_slice_mut(b))
    }
}

impl<T: Pod> std::ops::Deref for HugeArray<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.as_slice()
    }
}

impl<T: Pod> Clone for HugeArray<T> {
    fn clone(&self) -> HugeArray<T> {
        HugeArray::from_slice(self.as_slice())
    }
}

impl<T: Pod + PartialEq> PartialEq for HugeArray<T> {
    fn eq(&self, other: &HugeArray<T>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl<T: Pod + Eq> Eq for HugeArray<T> {}

impl<T: Pod> std::fmt::Debug for HugeArray<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HugeArray({} items)", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroed_aligned_and_cloned() {
        let mut b = HugeArray::<u32>::zeroed(5 << 18);
        assert!(b.iter().all(|&x| x == 0));
        assert_eq!(b.as_ptr().align_offset(4096), 0);
        b.as_mut_slice()[12345] = 7;
        let c = b.clone();
        assert_eq!(c[12345], 7);
        assert_eq!(c, b);
        assert_eq!(HugeArray::<u8>::zeroed(0).len(), 0);
        assert_eq!(HugeArray::from_slice(&[1u8, 2, 3]).as_slice(), &[1, 2, 3]);
    }
}
