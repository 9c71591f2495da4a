//! The burst detector on synthetic series: Poisson backgrounds at several rates, injected bursts
//! of known start, length and size, and quiet series.

use streamtrack::analytics::bursts::synthetic;
use streamtrack::analytics::{BurstConfig, BurstDetector, BurstEvent, Sensitivity};

#[test]
fn default_sensitivity_meets_precision_recall_and_delay() {
    for seed in [1, 2, 3] {
        let r = synthetic::evaluate(Sensitivity::Medium, seed);
        eprintln!("seed {seed}: {r:?}");
        assert!(r.injected >= 100, "{r:?}");
        assert!(r.precision >= 0.9, "{r:?}");
        assert!(r.recall >= 0.9, "{r:?}");
        assert!(r.median_delay <= 2.0, "{r:?}");
        assert!(r.quiet_alarms <= 1, "{r:?}");
    }
}

#[test]
fn sensitivity_orders_detections() {
    let low = synthetic::evaluate(Sensitivity::Low, 7);
    let high = synthetic::evaluate(Sensitivity::High, 7);
    assert!(high.detections >= low.detections, "{low:?} {high:?}");
    assert!(high.recall >= low.recall);
}

#[test]
fn output_depends_only_on_the_past_and_is_deterministic() {
    let s = &synthetic::series(5)[7];
    let run = |n: usize| {
        let mut d = BurstDetector::new(BurstConfig::default());
        s.counts[..n].iter().map(|&c| d.push(c as f64)).collect::<Vec<_>>()
    };
    let full = run(s.counts.len());
    let half = run(s.counts.len() / 2);
    assert_eq!(&full[..half.len()], &half[..]);
    assert_eq!(full, run(s.counts.len()));
    assert!(full.iter().all(|st| (0.0..1.0).contains(&st.score)));
}

#[test]
fn start_and_end_events_bracket_a_burst() {
    let mut d = BurstDetector::new(BurstConfig::default());
    let mut events = Vec::new();
    let counts: Vec<f64> =
        (0..60).map(|t| if (30..36).contains(&t) { 60.0 } else { 10.0 }).collect();
    for (t, &c) in counts.iter().enumerate() {
        let s = d.push(c);
        if let Some(e) = s.event {
            events.push((t, e));
        }
        assert_eq!(s.burst, (30..36).contains(&t), "bucket {t}: {s:?}");
    }
    assert_eq!(events, vec![(30, BurstEvent::Start), (36, BurstEvent::End)]);
}

#[test]
fn seasonal_baseline_expects_the_daily_peak() {
    // Hourly buckets: 5 counts a bucket, 60 at 9:00 every day; on day 7 also 60 at 15:00.
    let counts: Vec<f64> =
        (0..24 * 8).map(|h| if h % 24 == 9 || h == 24 * 7 + 15 { 60.0 } else { 5.0 }).collect();
    let starts = |cfg: BurstConfig| {
        let mut d = BurstDetector::new(cfg);
        let v: Vec<usize> = counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| d.push(c).event == Some(BurstEvent::Start))
            .map(|(h, _)| h)
            .collect();
        v
    };
    let seasonal = starts(BurstConfig::default().with_season(24));
    // The first peaks are bursts (nothing to expect yet); from the third day on they are
    // expected, and only the unusual 15:00 peak is one.
    assert!(seasonal.iter().all(|&h| h < 24 * 2 || h == 24 * 7 + 15), "{seasonal:?}");
    assert!(seasonal.contains(&(24 * 7 + 15)), "{seasonal:?}");
    let mut d = BurstDetector::new(BurstConfig::default().with_season(24));
    let mut plain = BurstDetector::new(BurstConfig::default());
    for &c in &counts[..24 * 6 + 9] {
        d.push(c);
        plain.push(c);
    }
    assert!(
        d.expected() > 30.0 && plain.expected() < 30.0,
        "{} {}",
        d.expected(),
        plain.expected()
    );
}
