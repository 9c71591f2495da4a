//! Intensity: counts of matched messages in time buckets at several resolutions, with the
//! reactions of each bucket and the burst score of each closed bucket.
//!
//! A series stores only its non-empty buckets (a sorted ring, `VecDeque<(bucket, Cell)>`, grown
//! to at most the resolution's bucket count): memory follows activity. A bucket closes — its
//! count goes to the burst detector and its score is fixed — once the watermark (the latest
//! arrival time seen) has passed its end by the allowed lateness; a message for a closed bucket
//! is counted as late instead.

use super::bursts::{BurstConfig, BurstDetector, BurstEvent};
use std::collections::VecDeque;

/// One resolution: buckets of `bucket_ms` kept over `span_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resolution {
    /// Bucket width in milliseconds (at least 1,000).
    pub bucket_ms: i64,
    /// How far back buckets are kept, in milliseconds (a multiple of `bucket_ms`).
    pub span_ms: i64,
}

impl Resolution {
    /// Buckets of `bucket_ms` over `span_ms` (widths under a second are raised to a second;
    /// the span is rounded up to whole buckets, at least one).
    pub fn new(bucket_ms: i64, span_ms: i64) -> Self {
        let bucket_ms = bucket_ms.max(1000);
        let n = ((span_ms.max(bucket_ms) + bucket_ms - 1) / bucket_ms).max(1);
        Resolution { bucket_ms, span_ms: n * bucket_ms }
    }

    /// Number of buckets kept.
    pub fn buckets(&self) -> usize {
        (self.span_ms / self.bucket_ms) as usize
    }

    /// The defaults: 1 s over 10 minutes, 1 min over 24 h, 1 h over 30 days.
    pub fn defaults() -> Vec<Resolution> {
        vec![
            Resolution::new(1000, 600_000),
            Resolution::new(60_000, 86_400_000),
            Resolution::new(3_600_000, 30 * 86_400_000),
        ]
    }
}

/// The counts of one bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Cell {
    /// Matched messages.
    pub count: u32,
    /// Of which positive (compound >= 0.05).
    pub pos: u32,
    /// Of which negative (compound <= -0.05).
    pub neg: u32,
    /// Sum of their compound scores.
    pub compound_sum: f32,
    /// Burst score of the bucket once closed (0 while open).
    pub score: f32,
}

impl Cell {
    /// Counts `n` messages of reaction `compound` (`None`: unscored) in this cell.
    #[inline]
    pub(crate) fn add(&mut self, n: u32, compound: Option<f64>) {
        self.count = self.count.saturating_add(n);
        if let Some(x) = compound {
            self.compound_sum += x as f32;
            if x >= super::sentiment::LABEL_THRESHOLD {
                self.pos += n;
            } else if x <= -super::sentiment::LABEL_THRESHOLD {
                self.neg += n;
            }
        }
    }
}

/// One bucket of a series as a view reads it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// Start of the bucket, ms since the epoch (UTC).
    pub start_ms: i64,
    /// Matched messages.
    pub count: u32,
    /// Messages per second.
    pub rate: f64,
    /// Positive messages.
    pub pos: u32,
    /// Neutral messages (count − pos − neg).
    pub neu: u32,
    /// Negative messages.
    pub neg: u32,
    /// Mean compound score (0 when empty or unscored).
    pub mean_compound: f64,
    /// Burst score of the bucket (0 while open).
    pub score: f64,
    /// Whether the bucket is closed (its count final).
    pub closed: bool,
}

/// A burst start or end of one series at one resolution.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SeriesEvent {
    /// Which resolution (index into the configured list).
    pub resolution: usize,
    /// Start or end.
    pub kind: BurstEvent,
    /// Start of the bucket where it happened.
    pub bucket_start_ms: i64,
    /// The burst score of that bucket.
    pub score: f64,
}

/// The first bucket still open at `watermark`: bucket b is closed when
/// (b + 1)·width + lateness <= watermark.
pub(crate) fn first_open(r: &Resolution, watermark: i64, lateness_ms: i64) -> i64 {
    watermark.saturating_sub(lateness_ms).div_euclid(r.bucket_ms)
}

/// Catching up on a long silence feeds at most this many empty buckets to the detector (its
/// baseline has forgotten the past by then).
const MAX_CATCH_UP: i64 = 256;

/// One series at one resolution.
#[derive(Clone, Debug)]
pub(crate) struct Series {
    cells: VecDeque<(u32, Cell)>,
    /// The next bucket the detector has not consumed (`None`: nothing seen yet).
    next_close: Option<i64>,
    detector: BurstDetector,
    last_score: f32,
    late: u64,
}

impl Series {
    pub(crate) fn new(burst: BurstConfig) -> Self {
        Series {
            cells: VecDeque::new(),
            next_close: None,
            detector: BurstDetector::new(burst),
            last_score: 0.0,
            late: 0,
        }
    }

    /// Heap and inline bytes of this series.
    pub(crate) fn bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.cells.capacity() * std::mem::size_of::<(u32, Cell)>()
    }

    /// The first bucket not closed yet (`None`: nothing seen yet).
    pub(crate) fn next_close(&self) -> Option<i64> {
        self.next_close
    }

    pub(crate) fn late(&self) -> u64 {
        self.late
    }

    pub(crate) fn in_burst(&self) -> bool {
        self.detector.in_burst()
    }

    pub(crate) fn last_score(&self) -> f64 {
        f64::from(self.last_score)
    }

    /// Adds one message to bucket `b` (`t.div_euclid(r.bucket_ms)` for event time `t`: the
    /// same for every series a message goes to, so computed once per message); `false` when
    /// that bucket is already closed (late).
    pub(crate) fn add_to(&mut self, r: &Resolution, b: i64, compound: Option<f64>) -> bool {
        if let Some(nc) = self.next_close {
            if b < nc {
                self.late += 1;
                return false;
            }
        } else {
            self.next_close = Some(b);
        }
        self.cell(r, b).add(1, compound);
        true
    }

    /// Adds a finer bucket's counts (the engine's pending second, see `Analytics`) to bucket
    /// `b`, which the caller knows to be open.
    pub(crate) fn add_cell(&mut self, r: &Resolution, b: i64, add: &Cell) {
        if self.next_close.is_none() {
            self.next_close = Some(b);
        }
        let c = self.cell(r, b);
        c.count = c.count.saturating_add(add.count);
        c.pos = c.pos.saturating_add(add.pos);
        c.neg = c.neg.saturating_add(add.neg);
        c.compound_sum += add.compound_sum;
    }

    /// The cell of bucket `b`, inserted (empty) when missing.
    fn cell(&mut self, r: &Resolution, b: i64) -> &mut Cell {
        let key = b as u32;
        let pos = match self.cells.back() {
            Some(&(k, _)) if k < key => self.cells.len(),
            Some(&(k, _)) if k == key => self.cells.len() - 1,
            None => 0,
            _ => self.cells.partition_point(|&(k, _)| k < key),
        };
        if pos == self.cells.len() || self.cells[pos].0 != key {
            if self.cells.len() == self.cells.capacity() {
                let want = (self.cells.capacity() * 2).clamp(4, r.buckets() + 1);
                self.cells.reserve_exact(want.saturating_sub(self.cells.len()).max(1));
            }
            self.cells.insert(pos, (key, Cell::default()));
        }
        &mut self.cells[pos].1
    }

    /// Closes every bucket that ended `lateness_ms` or more before `watermark`, feeding the
    /// detector, and drops buckets older than the span. Events go to `out`.
    pub(crate) fn close(
        &mut self,
        r: &Resolution,
        idx: usize,
        watermark: i64,
        lateness_ms: i64,
        out: &mut Vec<SeriesEvent>,
    ) {
        self.close_to(r, idx, first_open(r, watermark, lateness_ms), out);
    }

    /// [`Series::close`] with the first open bucket already computed ([`first_open`]).
    pub(crate) fn close_to(
        &mut self,
        r: &Resolution,
        idx: usize,
        limit: i64,
        out: &mut Vec<SeriesEvent>,
    ) {
        let Some(mut nc) = self.next_close else {
            // A new series: what is closed already has nothing to feed.
            self.next_close = Some(limit);
            return;
        };
        if limit <= nc {
            return; // nothing new to close (the common case)
        }
        if limit > nc + MAX_CATCH_UP {
            // A long silence: the non-empty buckets before the last MAX_CATCH_UP are fed
            // without their empty neighbours.
            let skip_to = limit - MAX_CATCH_UP;
            let mut i = self.cells.partition_point(|&(k, _)| i64::from(k) < nc);
            while let Some(&(k, c)) = self.cells.get(i) {
                if i64::from(k) >= skip_to {
                    break;
                }
                let score = self.feed(c.count, i64::from(k), r, idx, out);
                self.cells[i].1.score = score as f32;
                i += 1;
            }
            nc = nc.max(skip_to);
        }
        let mut i = self.cells.partition_point(|&(k, _)| i64::from(k) < nc);
        while nc < limit {
            let count = match self.cells.get(i) {
                Some(&(k, c)) if i64::from(k) == nc => c.count,
                _ => 0,
            };
            let score = self.feed(count, nc, r, idx, out);
            if let Some((k, c)) = self.cells.get_mut(i) {
                if i64::from(*k) == nc {
                    c.score = score as f32;
                    i += 1;
                }
            }
            nc += 1;
        }
        self.next_close = Some(nc);
        let oldest = limit - r.buckets() as i64;
        while self.cells.front().is_some_and(|&(k, _)| i64::from(k) < oldest) {
            self.cells.pop_front();
        }
    }

    fn feed(
        &mut self,
        count: u32,
        b: i64,
        r: &Resolution,
        idx: usize,
        out: &mut Vec<SeriesEvent>,
    ) -> f64 {
        let step = self.detector.push(f64::from(count));
        self.last_score = step.score as f32;
        if let Some(kind) = step.event {
            out.push(SeriesEvent {
                resolution: idx,
                kind,
                bucket_start_ms: b * r.bucket_ms,
                score: step.score,
            });
        }
        step.score
    }

    /// Dense points from `from_ms` to `to_ms` (bucket starts), zeros where nothing matched.
    /// `pending`: counts not yet added to their bucket (the engine's pending second).
    pub(crate) fn points(
        &self,
        r: &Resolution,
        from_ms: i64,
        to_ms: i64,
        pending: Option<(i64, Cell)>,
    ) -> Vec<Point> {
        let secs = r.bucket_ms as f64 / 1000.0;
        let (b0, b1) = (from_ms.div_euclid(r.bucket_ms), to_ms.div_euclid(r.bucket_ms));
        let mut out = Vec::with_capacity((b1 - b0 + 1).clamp(0, 1 << 20) as usize);
        let mut i = self.cells.partition_point(|&(k, _)| i64::from(k) < b0);
        let closed_before = self.next_close.unwrap_or(i64::MIN);
        for b in b0..=b1 {
            let mut c = match self.cells.get(i) {
                Some(&(k, c)) if i64::from(k) == b => {
                    i += 1;
                    c
                }
                _ => Cell::default(),
            };
            if let Some((pb, p)) = &pending {
                if *pb == b {
                    c.count = c.count.saturating_add(p.count);
                    c.pos = c.pos.saturating_add(p.pos);
                    c.neg = c.neg.saturating_add(p.neg);
                    c.compound_sum += p.compound_sum;
                }
            }
            out.push(Point {
                start_ms: b * r.bucket_ms,
                count: c.count,
                rate: f64::from(c.count) / secs,
                pos: c.pos,
                neu: c.count - c.pos - c.neg,
                neg: c.neg,
                mean_compound: if c.count == 0 {
                    0.0
                } else {
                    f64::from(c.compound_sum) / f64::from(c.count)
                },
                score: f64::from(c.score),
                closed: b < closed_before,
            });
        }
        out
    }

    /// Messages per second over the last `n` closed buckets.
    pub(crate) fn rate(&self, r: &Resolution, n: i64) -> f64 {
        let Some(nc) = self.next_close else { return 0.0 };
        let from = nc - n;
        let sum: u64 = self
            .cells
            .iter()
            .rev()
            .skip_while(|&&(k, _)| i64::from(k) >= nc)
            .take_while(|&&(k, _)| i64::from(k) >= from)
            .map(|&(_, c)| u64::from(c.count))
            .sum();
        sum as f64 / (n as f64 * r.bucket_ms as f64 / 1000.0)
    }
}
