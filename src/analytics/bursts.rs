//! Bursts: an online, deterministic detector per counts series, O(1) per bucket.
//!
//! The baseline is what the series' own recent history predicts: an exponentially weighted mean
//! and variance of the counts (frozen, almost, while a burst lasts, so that a burst does not
//! become its own baseline), or, with [`BurstConfig::season`], the same slot of earlier periods
//! (the same hour on earlier days). The evidence that the current rate is above it is a
//! Poisson tail bound: for `x` counts against an expected `λ`, `P(X ≥ x) ≤ exp(−G)` with
//! `G = x·ln(x/λ) − (x − λ)` (Chernoff), divided by the series' dispersion (variance / mean,
//! at least 1: quasi-Poisson), taken over the last 1, 2 and 3 buckets so that a moderate burst
//! on a quiet series is seen by its second bucket. The evidence in decimal digits `e = G/ln 10`
//! (a p-value of `10^−e`) becomes the score `e / (e + 5)` in [0, 1); a burst starts when the
//! score reaches the sensitivity's threshold (0.5, p ≈ 1e−5, at medium) and ends when the
//! evidence falls below a third of the threshold's.

use std::fmt;
use std::str::FromStr;

/// Evidence (decimal digits of the p-value) that maps to score 0.5.
const SCORE_HALF: f64 = 5.0;

/// How readily a burst is declared.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Sensitivity {
    /// Score threshold 0.6 (p ≈ 1e−7.5).
    Low,
    /// Score threshold 0.5 (p ≈ 1e−5): the default.
    #[default]
    Medium,
    /// Score threshold 0.4 (p ≈ 1e−3.3).
    High,
    /// A number `s` in (0, 1): score threshold `1 − s` (higher is more sensitive; `0.5` is
    /// medium).
    Custom(f64),
}

impl Sensitivity {
    /// The score at or above which a burst starts.
    pub fn threshold(self) -> f64 {
        match self {
            Sensitivity::Low => 0.6,
            Sensitivity::Medium => 0.5,
            Sensitivity::High => 0.4,
            Sensitivity::Custom(s) => (1.0 - s).clamp(0.01, 0.99),
        }
    }
}

/// A sensitivity that is not `low`, `medium`, `high` or a number in (0, 1).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SensitivityError(pub String);

impl fmt::Display for SensitivityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid sensitivity {:?}: expected low, medium, high or a number in (0, 1)",
            self.0
        )
    }
}

impl std::error::Error for SensitivityError {}

impl FromStr for Sensitivity {
    type Err = SensitivityError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "low" => Ok(Sensitivity::Low),
            "medium" | "default" => Ok(Sensitivity::Medium),
            "high" => Ok(Sensitivity::High),
            other => match other.parse::<f64>() {
                Ok(v) if v > 0.0 && v < 1.0 => Ok(Sensitivity::Custom(v)),
                _ => Err(SensitivityError(s.to_string())),
            },
        }
    }
}

/// Settings of a [`BurstDetector`].
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct BurstConfig {
    /// When a burst is declared.
    pub sensitivity: Sensitivity,
    /// Half-life of the baseline's memory, in buckets (default 20).
    pub half_life: f64,
    /// Buckets seen before any burst is declared (default 10); the score is given from the
    /// first bucket.
    pub warmup: u32,
    /// The smallest expected count per bucket (default 0.5): an empty history does not make a
    /// single message a burst.
    pub min_expected: f64,
    /// The smallest excess over the expectation, in counts, for a burst (default 3).
    pub min_excess: f64,
    /// Seasonal baseline: the period in buckets (e.g. 24 for hourly buckets and daily
    /// seasons). Each slot of the period keeps its own mean; once a slot has seen two periods
    /// it is the expectation. `None` (the default): no season.
    pub season: Option<u32>,
}

impl Default for BurstConfig {
    fn default() -> Self {
        BurstConfig {
            sensitivity: Sensitivity::Medium,
            half_life: 20.0,
            warmup: 10,
            min_expected: 0.5,
            min_excess: 3.0,
            season: None,
        }
    }
}

impl BurstConfig {
    /// The default settings at another sensitivity.
    pub fn with_sensitivity(mut self, s: Sensitivity) -> Self {
        self.sensitivity = s;
        self
    }

    /// The same settings with a seasonal baseline of `period` buckets.
    pub fn with_season(mut self, period: u32) -> Self {
        self.season = (period > 1).then_some(period);
        self
    }
}

/// A change of burst state, reported on the bucket where it happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BurstEvent {
    /// A burst starts at this bucket.
    Start,
    /// The burst that was running ended before this bucket (this bucket is back to normal).
    End,
}

/// What the detector says about one bucket.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BurstStep {
    /// Evidence of a burst at this bucket, in [0, 1).
    pub score: f64,
    /// Whether this bucket is inside a burst.
    pub burst: bool,
    /// A start or end at this bucket.
    pub event: Option<BurstEvent>,
    /// The count the baseline expected.
    pub expected: f64,
}

#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    mean: f32,
    n: u32,
}

/// The online burst detector of one series (about 80 bytes without season).
#[derive(Clone, Debug)]
pub struct BurstDetector {
    cfg: BurstConfig,
    mean: f64,
    var: f64,
    seen: u64,
    recent: [f64; 2],
    in_burst: bool,
    /// The baseline's smoothing factor per bucket, from the half-life.
    alpha: f64,
    slots: Option<Box<[Slot]>>,
}

/// Poisson tail evidence, in nats, of `x` counts against an expectation `lam`.
fn chernoff(x: f64, lam: f64) -> f64 {
    if x <= lam || lam <= 0.0 {
        return 0.0;
    }
    x * (x / lam).ln() - (x - lam)
}

impl BurstDetector {
    /// A detector with no history.
    pub fn new(cfg: BurstConfig) -> Self {
        let slots = cfg.season.map(|p| vec![Slot::default(); p as usize].into_boxed_slice());
        let alpha = 1.0 - 0.5f64.powf(1.0 / cfg.half_life.max(1.0));
        BurstDetector {
            cfg,
            mean: 0.0,
            var: 0.0,
            seen: 0,
            recent: [0.0; 2],
            in_burst: false,
            alpha,
            slots,
        }
    }

    /// The settings.
    pub fn config(&self) -> &BurstConfig {
        &self.cfg
    }

    /// Whether the series is in a burst now.
    pub fn in_burst(&self) -> bool {
        self.in_burst
    }

    /// The count the baseline expects for the next bucket.
    pub fn expected(&self) -> f64 {
        let mut lam = self.mean;
        if let (Some(slots), Some(p)) = (&self.slots, self.cfg.season) {
            let s = slots[(self.seen % u64::from(p)) as usize];
            if s.n >= 2 {
                lam = f64::from(s.mean);
            }
        }
        lam.max(self.cfg.min_expected)
    }

    /// Feeds the next bucket's count (negative or non-finite counts are read as 0).
    pub fn push(&mut self, count: f64) -> BurstStep {
        let x = if count.is_finite() && count > 0.0 { count } else { 0.0 };
        let lam = self.expected();
        let mut g: f64 = 0.0;
        let mut excess_ok = false;
        // Only a bucket that is itself above the expectation can be in a (starting) burst: at
        // or under it the evidence is `min(windows, chernoff(x, lam) / disp)` = 0 whatever
        // the windows say, and their `excess_ok` is not read (a start needs `e >= start_e`,
        // and `start_e > 0`), so they are not computed (most closed buckets are empty).
        if x > lam || lam.is_nan() {
            // Dispersion beyond 1.5× Poisson (the sampling noise of the variance estimate).
            let disp = if self.seen >= 2 {
                (self.var / (1.5 * self.mean.max(1e-9))).clamp(1.0, 50.0)
            } else {
                1.0
            };
            // Evidence over the last 1, 2 and 3 buckets (each window's own excess is required).
            let mut sum = 0.0;
            for k in 0..3usize {
                sum += if k == 0 { x } else { self.recent[k - 1] };
                let n = (k + 1) as f64;
                if k as u64 > self.seen {
                    break;
                }
                let gk = chernoff(sum, n * lam) / disp;
                if gk > g {
                    g = gk;
                    excess_ok = sum - n * lam >= self.cfg.min_excess;
                }
            }
        }
        let e = g / std::f64::consts::LN_10;
        let score = e / (e + SCORE_HALF);
        let thr = self.cfg.sensitivity.threshold();
        let start_e = SCORE_HALF * thr / (1.0 - thr);
        let mut event = None;
        let warm = self.seen >= u64::from(self.cfg.warmup);
        if !self.in_burst {
            if warm && e >= start_e && excess_ok {
                self.in_burst = true;
                event = Some(BurstEvent::Start);
            }
        } else if e < start_e / 3.0 || x <= lam {
            self.in_burst = false;
            event = Some(BurstEvent::End);
        }
        self.learn(x);
        BurstStep { score, burst: self.in_burst, event, expected: lam }
    }

    fn learn(&mut self, x: f64) {
        // The first buckets average evenly; a burst barely moves the baseline.
        let mut a = self.alpha.max(1.0 / (self.seen as f64 + 1.0));
        if self.in_burst {
            a *= 0.05;
        }
        let mut d = x - self.mean;
        if self.seen >= u64::from(self.cfg.warmup) {
            // Winsorised at 4 standard deviations: an undetected spike barely moves the baseline.
            let sd = self.var.max(self.mean).max(self.cfg.min_expected).sqrt();
            d = d.clamp(-4.0 * sd, 4.0 * sd);
        }
        self.mean += a * d;
        self.var = (1.0 - a) * (self.var + a * d * d);
        if let (Some(slots), Some(p)) = (&mut self.slots, self.cfg.season) {
            let s = &mut slots[(self.seen % u64::from(p)) as usize];
            if !self.in_burst || s.n == 0 {
                let sa = (1.0 / (f64::from(s.n) + 1.0)).max(0.3);
                s.mean += (sa * (x - f64::from(s.mean))) as f32;
                s.n = s.n.saturating_add(1);
            }
        }
        self.recent = [x, self.recent[0]];
        self.seen += 1;
    }
}

/// The synthetic benchmark of the detector: Poisson backgrounds at several rates, bursts of
/// known start, length and size injected, and quiet series with none.
pub mod synthetic {
    use super::{BurstConfig, BurstDetector, BurstEvent, Sensitivity};

    /// A deterministic generator (SplitMix64).
    #[derive(Clone, Debug)]
    pub struct Rng(u64);

    impl Rng {
        /// A generator from a seed.
        pub fn new(seed: u64) -> Self {
            Rng(seed)
        }
        /// The next 64 random bits.
        pub fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        /// A uniform number in [0, 1).
        pub fn uniform(&mut self) -> f64 {
            (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
        }
        /// A Poisson draw (Knuth's method, in pieces of rate ≤ 30: exact).
        pub fn poisson(&mut self, mut lam: f64) -> u64 {
            let mut total = 0;
            while lam > 0.0 {
                let piece = lam.min(30.0);
                lam -= piece;
                let l = (-piece).exp();
                let mut p = 1.0;
                let mut k = 0;
                loop {
                    p *= self.uniform();
                    if p <= l {
                        break;
                    }
                    k += 1;
                }
                total += k;
            }
            total
        }
    }

    /// A burst injected into a series.
    #[derive(Clone, Copy, Debug, PartialEq)]
    pub struct Injected {
        /// First bucket of the burst.
        pub start: usize,
        /// Length in buckets.
        pub len: usize,
        /// The rate during the burst.
        pub rate: f64,
    }

    /// One synthetic series and its injected bursts.
    #[derive(Clone, Debug)]
    pub struct Series {
        /// The background rate.
        pub background: f64,
        /// Counts per bucket.
        pub counts: Vec<u64>,
        /// The bursts, in order.
        pub bursts: Vec<Injected>,
    }

    /// Background rates (counts per bucket) of the benchmark.
    pub const RATES: [f64; 5] = [1.0, 5.0, 20.0, 100.0, 500.0];
    /// Burst rate = `m · background + 8` for `m` in these.
    pub const MULTIPLIERS: [f64; 3] = [2.0, 3.0, 5.0];
    /// Burst lengths, in buckets.
    pub const LENGTHS: [usize; 4] = [3, 5, 10, 20];

    /// The benchmark's series: for each rate, 4 series of 1,500 buckets with 6 bursts each
    /// (size and length drawn from the lists above, at least 80 buckets apart), plus 2 quiet
    /// series with none; all from `seed`.
    pub fn series(seed: u64) -> Vec<Series> {
        let mut rng = Rng::new(seed);
        let mut out = Vec::new();
        for &bg in &RATES {
            for k in 0..6 {
                let n = 1500;
                let mut bursts = Vec::new();
                if k < 4 {
                    let mut at = 100 + (rng.next_u64() % 60) as usize;
                    while bursts.len() < 6 && at + 25 < n {
                        let m = MULTIPLIERS[(rng.next_u64() % 3) as usize];
                        let len = LENGTHS[(rng.next_u64() % 4) as usize];
                        bursts.push(Injected { start: at, len, rate: m * bg + 8.0 });
                        at += len + 80 + (rng.next_u64() % 120) as usize;
                    }
                }
                let counts = (0..n)
                    .map(|t| {
                        let rate = bursts
                            .iter()
                            .find(|b| t >= b.start && t < b.start + b.len)
                            .map_or(bg, |b| b.rate);
                        rng.poisson(rate)
                    })
                    .collect();
                out.push(Series { background: bg, counts, bursts });
            }
        }
        out
    }

    /// Precision, recall and detection delay of the detector on the benchmark.
    #[derive(Clone, Debug, Default, PartialEq)]
    pub struct Report {
        /// Detected burst starts.
        pub detections: usize,
        /// Detections inside an injected burst (or within 2 buckets after it).
        pub true_detections: usize,
        /// Injected bursts.
        pub injected: usize,
        /// Injected bursts detected while they last.
        pub found: usize,
        /// true_detections / detections.
        pub precision: f64,
        /// found / injected.
        pub recall: f64,
        /// Median buckets from an injected start to its detection.
        pub median_delay: f64,
        /// Detections on the quiet series (false alarms).
        pub quiet_alarms: usize,
    }

    /// Runs the detector at `sensitivity` over [`series`]`(seed)`.
    pub fn evaluate(sensitivity: Sensitivity, seed: u64) -> Report {
        let mut r = Report::default();
        let mut delays = Vec::new();
        for s in series(seed) {
            let mut d = BurstDetector::new(BurstConfig::default().with_sensitivity(sensitivity));
            let starts: Vec<usize> = s
                .counts
                .iter()
                .enumerate()
                .filter_map(|(t, &c)| {
                    (d.push(c as f64).event == Some(BurstEvent::Start)).then_some(t)
                })
                .collect();
            r.detections += starts.len();
            if s.bursts.is_empty() {
                r.quiet_alarms += starts.len();
            }
            r.true_detections += starts
                .iter()
                .filter(|&&t| s.bursts.iter().any(|b| t >= b.start && t < b.start + b.len + 2))
                .count();
            for b in &s.bursts {
                r.injected += 1;
                if let Some(&t) = starts.iter().find(|&&t| t >= b.start && t < b.start + b.len) {
                    r.found += 1;
                    delays.push((t - b.start) as f64);
                }
            }
        }
        r.precision =
            if r.detections == 0 { 1.0 } else { r.true_detections as f64 / r.detections as f64 };
        r.recall = if r.injected == 0 { 1.0 } else { r.found as f64 / r.injected as f64 };
        delays.sort_by(f64::total_cmp);
        r.median_delay = if delays.is_empty() { f64::NAN } else { delays[delays.len() / 2] };
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `push` before its shortcut for buckets at or under the expectation: the windows'
    /// evidence always computed, then capped by the bucket's own.
    fn push_reference(d: &mut BurstDetector, count: f64) -> BurstStep {
        let x = if count.is_finite() && count > 0.0 { count } else { 0.0 };
        let lam = d.expected();
        let disp =
            if d.seen >= 2 { (d.var / (1.5 * d.mean.max(1e-9))).clamp(1.0, 50.0) } else { 1.0 };
        let mut g: f64 = 0.0;
        let mut sum = 0.0;
        let mut excess_ok = false;
        for k in 0..3usize {
            sum += if k == 0 { x } else { d.recent[k - 1] };
            let n = (k + 1) as f64;
            if k as u64 > d.seen {
                break;
            }
            let gk = chernoff(sum, n * lam) / disp;
            if gk > g {
                g = gk;
                excess_ok = sum - n * lam >= d.cfg.min_excess;
            }
        }
        if x <= lam {
            g = g.min(chernoff(x, lam) / disp);
        }
        let e = g / std::f64::consts::LN_10;
        let score = e / (e + SCORE_HALF);
        let thr = d.cfg.sensitivity.threshold();
        let start_e = SCORE_HALF * thr / (1.0 - thr);
        let mut event = None;
        let warm = d.seen >= u64::from(d.cfg.warmup);
        if !d.in_burst {
            if warm && e >= start_e && excess_ok {
                d.in_burst = true;
                event = Some(BurstEvent::Start);
            }
        } else if e < start_e / 3.0 || x <= lam {
            d.in_burst = false;
            event = Some(BurstEvent::End);
        }
        d.learn(x);
        BurstStep { score, burst: d.in_burst, event, expected: lam }
    }

    /// The shortcut changes no bit: steps and detector states against `push_reference` over
    /// bursty random streams (long quiet runs, spikes, zeros after spikes, non-finite and
    /// negative counts), every sensitivity, seasons, a zero `min_expected`.
    #[test]
    fn push_matches_the_reference() {
        let mut rnd = crate::test_rng::xorshift(0x9e37_79b9_7f4a_7c15u64);
        let sens = [
            Sensitivity::Low,
            Sensitivity::Medium,
            Sensitivity::High,
            Sensitivity::Custom(0.999),
            Sensitivity::Custom(0.001),
        ];
        let (mut starts, mut shortcut) = (0, 0);
        for round in 0..60u64 {
            let mut cfg = BurstConfig::default().with_sensitivity(sens[(round % 5) as usize]);
            if round % 3 == 1 {
                cfg = cfg.with_season(1 + rnd(30) as u32);
            }
            if round % 4 == 2 {
                cfg.min_expected = 0.0;
            }
            cfg.warmup = rnd(12) as u32;
            let mut fast = BurstDetector::new(cfg);
            let mut slow = fast.clone();
            let base = rnd(50) as f64;
            for i in 0..3_000 {
                let c = match rnd(100) {
                    0..=39 => 0.0,
                    40..=79 => (base + rnd(1 + base as u64 / 2 + 2) as f64).floor(),
                    80..=93 => base * (2 + rnd(8)) as f64 + rnd(20) as f64,
                    94 => f64::NAN,
                    95 => -3.0,
                    96 => f64::INFINITY,
                    _ => rnd(1_000) as f64 / 7.0,
                };
                shortcut += usize::from(c.is_nan() || c <= fast.expected());
                let (a, b) = (fast.push(c), push_reference(&mut slow, c));
                assert_eq!(a, b, "round {round}, bucket {i}, count {c}");
                assert_eq!(format!("{fast:?}"), format!("{slow:?}"));
                starts += usize::from(a.event == Some(BurstEvent::Start));
            }
        }
        assert!(starts > 100 && shortcut > 50_000, "{starts} starts, {shortcut} shortcuts");
    }

    #[test]
    fn sensitivity_parses() {
        assert_eq!("LOW".parse::<Sensitivity>().unwrap(), Sensitivity::Low);
        assert_eq!("0.7".parse::<Sensitivity>().unwrap(), Sensitivity::Custom(0.7));
        assert!("1.5".parse::<Sensitivity>().is_err());
        assert!("loud".parse::<Sensitivity>().is_err());
        assert!(Sensitivity::High.threshold() < Sensitivity::Low.threshold());
    }

    #[test]
    fn chernoff_bound_is_zero_below_expectation_and_grows() {
        assert_eq!(chernoff(3.0, 5.0), 0.0);
        assert!(chernoff(20.0, 5.0) > chernoff(10.0, 5.0));
    }
}
