//! Huge pages for the presearch's large tables.
//!
//! At a million rules a post reads a few dozen places scattered over ~50 MB of tables (the
//! Bloom filter, the word table, postings, programs), and with 4 KiB pages most of those
//! reads also miss the TLB. Linux backs a region with 2 MiB pages where the process asks
//! (`madvise(MADV_HUGEPAGE)`, transparent huge pages in their default `madvise` mode), but only
//! for memory not yet touched: so each large table is advised right after its allocation,
//! before it is filled, at its final size. Asked later, the kernel would have to copy the
//! table (`MADV_COLLAPSE`: 24-114 ms of a 1M-rule compile; bench/journal.md, "Huge pages").
//!
//! `STREAMTRACK_HUGE_PAGES=off` (or `0`) turns the advice off, e.g. where memory is tight:
//! a partly used 2 MiB page costs up to 2 MiB of resident memory.

/// Buffers smaller than this are left alone: the 2 MiB pages around them would mostly hold
/// other data, and small tables stay in cache.
const MIN_BYTES: usize = 1 << 20;

/// The size of a huge page on x86-64 and AArch64 with 4 KiB base pages.
#[cfg(all(target_os = "linux", not(miri)))]
const HUGE_PAGE: usize = 2 << 20;

/// Whether the advice is on (the environment is read once per process).
fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| {
        !matches!(std::env::var("STREAMTRACK_HUGE_PAGES").as_deref(), Ok("off" | "0"))
    })
}

/// Asks the kernel to back `v`'s whole buffer (its capacity) with huge pages where it is
/// first touched. Call it before writing to a freshly allocated large buffer, and do not
/// grow the buffer afterwards (a grown buffer is a new, unadvised allocation). The range is
/// rounded out to whole huge pages, so neighbouring heap memory is advised too, which changes
/// nothing but its page size. A refusal (no THP support, an old kernel) is ignored: the
/// buffer keeps its small pages.
pub(crate) fn advise_huge_pages<T>(v: &Vec<T>) {
    let bytes = v.capacity().saturating_mul(std::mem::size_of::<T>());
    if bytes < MIN_BYTES || !enabled() {
        return;
    }
    #[cfg(all(target_os = "linux", not(miri)))]
    {
        let start = v.as_ptr() as usize & !(HUGE_PAGE - 1);
        let end = (v.as_ptr() as usize).saturating_add(bytes).saturating_add(HUGE_PAGE - 1)
            & !(HUGE_PAGE - 1);
        // SAFETY: `madvise(MADV_HUGEPAGE)` reads and writes no memory and changes no
        // mapping's contents or permissions, only which page size later faults in the range
        // get; the range (page-aligned, as the call requires) covers `v`'s allocation, and
        // parts of it that are not mapped make the call fail with ENOMEM, which is ignored.
        #[allow(unsafe_code)]
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(all(test, target_os = "linux", not(miri)))]
pub(crate) mod tests {
    /// The kB of huge pages of the mapping holding `addr`, from `/proc/self/smaps`; `None`
    /// when this machine cannot say (no THP, THP turned off, no `/proc`): callers skip.
    pub(crate) fn huge_kb_at(addr: usize) -> Option<u64> {
        if !super::enabled() {
            eprintln!("skipped: STREAMTRACK_HUGE_PAGES turns the advice off");
            return None;
        }
        let Ok(mode) = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
        else {
            eprintln!("skipped: this kernel has no transparent huge pages");
            return None;
        };
        if mode.contains("[never]") {
            eprintln!("skipped: transparent huge pages are off here ({})", mode.trim());
            return None;
        }
        let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
            eprintln!("skipped: no /proc/self/smaps to read the page sizes from");
            return None;
        };
        let mut inside = false;
        for line in smaps.lines() {
            let range = line.split(' ').next().unwrap_or("");
            if let Some((a, b)) = range.split_once('-') {
                if let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
                {
                    inside = a <= addr && addr < b;
                    continue;
                }
            }
            if inside {
                if let Some(kb) = line.strip_prefix("AnonHugePages:") {
                    return kb.trim().trim_end_matches("kB").trim().parse().ok();
                }
            }
        }
        panic!("no mapping of /proc/self/smaps holds {addr:#x} with an AnonHugePages line")
    }

    /// Large enough for glibc's `calloc` to map fresh, untouched memory (its mmap threshold
    /// grows to at most 32 MiB), as a large table's allocation is in a running engine.
    pub(crate) const FRESH_BYTES: usize = 40 << 20;

    /// The kernel's counters of huge-page faults served and fallen back to small pages
    /// (`/proc/vmstat`), for the failure message below.
    fn thp_fault_counters() -> String {
        let vmstat = std::fs::read_to_string("/proc/vmstat").unwrap_or_default();
        vmstat
            .lines()
            .filter(|l| l.starts_with("thp_fault_alloc ") || l.starts_with("thp_fault_fallback "))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// In THP's default `madvise` mode (this machine's and CI's) this fails without the call
    /// (checked: the message then shows `thp_fault_alloc` unchanged); in `always` mode it
    /// passes either way. Up to three fresh buffers: one CI run (2026-12-07, a loaded
    /// machine) saw 0 kB once, which no run reproduced since; no huge page three times in a
    /// row is a failure, with the kernel's counters in the message.
    #[test]
    fn an_advised_buffer_gets_huge_pages_when_touched() {
        let mut seen = Vec::new();
        for _ in 0..3 {
            let before = thp_fault_counters();
            let mut v: Vec<u8> = vec![0; FRESH_BYTES];
            super::advise_huge_pages(&v);
            for i in (0..v.len()).step_by(4096) {
                v[i] = 1;
            }
            let Some(kb) = huge_kb_at(v.as_ptr() as usize + FRESH_BYTES / 2) else { return };
            if kb >= 2048 {
                return;
            }
            seen.push(format!(
                "{kb} kB (vmstat before: {before}; after: {})",
                thp_fault_counters()
            ));
        }
        panic!("no huge page in three advised buffers' mappings: {}", seen.join("; "));
    }
}
