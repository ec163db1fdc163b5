//! The key layout and payloads of the kill -9 crash test, shared by its writer child
//! (`src/bin/crash-writer.rs`) and its checker (`tests/crash_recovery.rs`).
//!
//! Transaction `i` sets `("txn", i)`, `("a", i)` and `("b", i)` to `payload(..., i)`, adds 1
//! to `("count",)`, clears `("open", i)` and sets `("open", i + WRITERS)`.

use stead_store::tuple;

/// Concurrent writer tasks; also the stride between one task's transaction ids.
pub const WRITERS: u64 = 16;

pub fn txn_key(i: u64) -> Vec<u8> {
    tuple::pack(&("txn", i))
}

pub fn a_key(i: u64) -> Vec<u8> {
    tuple::pack(&("a", i))
}

pub fn b_key(i: u64) -> Vec<u8> {
    tuple::pack(&("b", i))
}

pub fn open_key(i: u64) -> Vec<u8> {
    tuple::pack(&("open", i))
}

pub fn count_key() -> Vec<u8> {
    tuple::pack(&("count",))
}

/// The value of key `which` ("txn", "a", "b") of transaction `i`: a few hundred bytes
/// derived from both, so a torn or misplaced value is caught.
pub fn payload(which: &str, i: u64) -> Vec<u8> {
    let unit = format!("{which}:{i};");
    let len = 200 + (i % 7) as usize * 40;
    unit.bytes().cycle().take(len).collect()
}
