//! Settings of the processes' allocator (mimalloc, the global allocator of `stead` and
//! `stead-bench`).
//!
//! mimalloc returns memory that stayed free for a second (`purge_delay`, 1000 ms) to the
//! operating system, which hands it back zeroed, a huge page at a time, on the next touch.
//! A server allocates and frees at a high rate (transaction buffers, encoded records, plans)
//! while its state grows, so it kept paying for the same pages again: zeroing freshly
//! faulted pages took 18% of the CPU of a 1,000,000-placement scheduling run, which ran
//! 34 s with the default and 26 s with purging off (docs/benchmarks.md). A server process
//! therefore keeps freed memory for reuse: its resident size is its high-water mark.
//! `MIMALLOC_PURGE_DELAY` in the environment still decides when set.

/// mimalloc's `mi_option_purge_delay` (position 15 of `mi_option_e` in mimalloc.h, stable
/// across releases: retired options keep their place).
#[cfg(not(madsim))]
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Applies stead's allocator settings; call first thing in `main`. Harmless when mimalloc
/// is not the global allocator (its own heap is then barely used).
pub fn configure() {
    #[cfg(not(madsim))]
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one integer option; mimalloc reads options atomically.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
}

#[cfg(all(test, not(madsim)))]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_option_is_the_one_that_defaults_to_a_second() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: reads one integer option.
        let default = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert!(default == 1000 || default == -1, "option {MI_OPTION_PURGE_DELAY} reads {default}");
        configure();
        // SAFETY: as above.
        assert_eq!(unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) }, -1);
    }
}
