//! Software prefetch: ask the CPU to start loading memory that a search is about to score, so
//! that the loads of several neighbours overlap instead of stalling one after another.

/// Bytes per cache line on the CPUs Quiver targets.
const LINE: usize = 64;

/// Prefetches the first `lines` cache lines of `data` into all cache levels. A hint only:
/// it never faults and has no visible effect but timing. No-op off x86-64.
#[inline(always)]
pub fn prefetch<T>(data: &[T], lines: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let bytes = std::mem::size_of_val(data);
        let ptr = data.as_ptr().cast::<i8>();
        for line in 0..lines.min(bytes.div_ceil(LINE)) {
            // SAFETY: `prefetch` instructions never fault and do not access memory
            // architecturally; the address is inside `data` (line < bytes / 64 rounded up),
            // and SSE is part of the x86-64 baseline.
            #[expect(unsafe_code, reason = "prefetch hint; cannot fault")]
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(ptr.add(line * LINE));
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (data, lines);
    }
}
