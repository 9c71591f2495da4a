//! Prefetching the messages of a batch one and two steps ahead of matching (and, through
//! [`line()`], the filter blocks the scanner requests as it hashes words).
//!
//! A `Message` is 432 bytes of fields (seven or eight cache lines) and its text a heap string
//! of its own. Matched one after the other from a batch (`Vec<Message>`, or the engine's
//! `Vec<Arc<Message>>`), each message costs two misses before any matching work: the struct
//! (its text's pointer and the fields the presearch asks about) and then the text. `perf
//! annotate` of the shared corpus at 100k rules put ~45 ns of a ~300 ns post on those two
//! loads (bench/journal.md, "Prefetching the next messages"). So while message `i` is matched, the
//! lines of message `i + 2`'s struct are requested, and the first lines of message `i + 1`'s
//! text (its struct arrived during the last message). Requesting only the texts cost more
//! than it saved: the text's pointer is in the struct, whose load then stalled the core.

use crate::Message;
use std::borrow::Borrow;

/// The lines of a text requested ahead: a post of 140-280 bytes fits in 3-5 lines, and
/// the first three hold the words of most posts.
const TEXT_BYTES: usize = 192;

/// Requests the struct of `messages[i + 2]` and the start of `messages[i + 1]`'s text,
/// before `messages[i]` is matched. Reads no message field but the text's pointer and
/// length of `messages[i + 1]`.
#[inline(always)]
pub(crate) fn ahead<M: Borrow<Message>>(messages: &[M], i: usize) {
    if let Some(m) = messages.get(i + 2) {
        lines(m.borrow() as *const Message as *const u8, std::mem::size_of::<Message>());
    }
    if let Some(m) = messages.get(i + 1) {
        let text = m.borrow().text.as_bytes();
        lines(text.as_ptr(), text.len().min(TEXT_BYTES));
    }
}

/// Requests the cache lines of `len` bytes from `start` into L1.
#[inline(always)]
fn lines(start: *const u8, len: usize) {
    let mut off = 0;
    while off < len {
        line(start.wrapping_add(off));
        off += 64;
    }
}

/// Requests the cache line holding `at` into L1. `at` points into a live object (callers
/// take it from a reference or a slice).
#[inline(always)]
pub(crate) fn line(at: *const u8) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: a prefetch is a hint to the cache: it reads no value into the program,
        // writes nothing and never faults, whatever the address; and every caller's address
        // is inside a live object. `_mm_prefetch` needs SSE, part of every x86-64 CPU.
        #[allow(unsafe_code)]
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(at.cast::<i8>());
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Every index of batches of every small length, by value and behind `Arc`, with texts
    /// empty, short and longer than the lines requested. CI runs it under Miri
    /// (`cargo +nightly miri test --lib matcher::prefetch`), which executes the prefetch
    /// as the no-op it is for the program and checks the pointers around it.
    #[test]
    fn every_position_of_a_batch_is_safe_to_prefetch_from() {
        let texts = ["", "short", &"long text ".repeat(40)];
        for n in 0..6 {
            let batch: Vec<Message> =
                (0..n).map(|i| Message::new(i.to_string(), texts[i % 3])).collect();
            let shared: Vec<Arc<Message>> = batch.iter().cloned().map(Arc::new).collect();
            for i in 0..n + 2 {
                ahead(&batch, i);
                ahead(&shared, i);
            }
        }
    }
}
