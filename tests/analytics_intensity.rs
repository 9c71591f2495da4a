//! Intensity series, late and out-of-order messages, the ring of recent messages, reactions
//! per bucket, top-k and memory per active rule.

use streamtrack::analytics::{Analytics, AnalyticsConfig, BurstEvent, Resolution, SeriesKey};
use streamtrack::message::time::parse_timestamp;
use streamtrack::Message;

const T0: i64 = 1_700_000_000_000; // 2023-11-14T22:13:20Z, a whole second

fn msg(id: &str, text: &str, t: i64) -> Message {
    Message::new(id, text).with_timestamp(t)
}

fn count_at(a: &Analytics, k: &SeriesKey, res: usize, t: i64) -> u32 {
    a.series(k, res, t, t).unwrap()[0].count
}

#[test]
fn bucket_edges_are_half_open_and_utc_aligned() {
    let mut a = Analytics::new(AnalyticsConfig::default());
    let k = SeriesKey::rule("r");
    a.record(&msg("1", "x", T0 + 999), std::slice::from_ref(&k), T0 + 999);
    a.record(&msg("2", "x", T0 + 1000), std::slice::from_ref(&k), T0 + 1000);
    assert_eq!(count_at(&a, &k, 0, T0), 1);
    assert_eq!(count_at(&a, &k, 0, T0 + 1000), 1);
    // Minute and hour buckets start on UTC minute and hour boundaries.
    let t = parse_timestamp("2023-11-14T22:59:59.999Z").unwrap();
    let mut a = Analytics::new(AnalyticsConfig::default());
    a.record(&msg("3", "x", t), std::slice::from_ref(&k), t);
    let p = a.series(&k, 2, t - 3_600_000, t).unwrap();
    let last = p.last().unwrap();
    assert_eq!(last.start_ms, parse_timestamp("2023-11-14T22:00:00Z").unwrap());
    assert_eq!(last.count, 1);
    let p = a.series(&k, 1, t, t).unwrap();
    assert_eq!(p[0].start_ms, parse_timestamp("2023-11-14T22:59:00Z").unwrap());
    // Points are dense: zeros between.
    let p = a.series(&k, 1, t - 120_000, t).unwrap();
    assert_eq!(p.len(), 3);
    assert_eq!(p.iter().map(|p| p.count).collect::<Vec<_>>(), [0, 0, 1]);
}

#[test]
fn out_of_order_within_lateness_lands_in_its_bucket_and_later_is_counted_late() {
    let cfg = AnalyticsConfig::default().with_lateness_ms(5_000);
    let mut a = Analytics::new(cfg);
    let k = SeriesKey::rule("r");
    a.record(&msg("1", "x", T0 + 10_500), std::slice::from_ref(&k), T0 + 10_500);
    // Bucket [9 s, 10 s) closes at 10 s + 5 s: at 11 s a message for it still counts there.
    a.record(&msg("2", "x", T0 + 9_200), std::slice::from_ref(&k), T0 + 11_000);
    assert_eq!(count_at(&a, &k, 0, T0 + 9_000), 1);
    assert_eq!(a.late(&k, 0), 0);
    // At 20 s it is late at 1 s resolution (counted, not lost) but on time at 1 min.
    a.record(&msg("3", "x", T0 + 9_300), std::slice::from_ref(&k), T0 + 20_000);
    assert_eq!(count_at(&a, &k, 0, T0 + 9_000), 1);
    assert_eq!(a.late(&k, 0), 1);
    assert_eq!(a.late(&k, 1), 0);
    let minute = T0 - T0.rem_euclid(60_000);
    assert_eq!(count_at(&a, &k, 1, minute), 3);
    assert_eq!(a.stats().late, 1);
    // Exactly at the edge: bucket [9 s, 10 s) is closed at 15 s, open at 14.999 s.
    let mut b = Analytics::new(AnalyticsConfig::default().with_lateness_ms(5_000));
    b.record(&msg("1", "x", T0 + 9_000), std::slice::from_ref(&k), T0 + 9_000);
    b.record(&msg("2", "x", T0 + 9_999), std::slice::from_ref(&k), T0 + 14_999);
    assert_eq!(b.late(&k, 0), 0);
    b.record(&msg("3", "x", T0 + 9_999), std::slice::from_ref(&k), T0 + 15_000);
    assert_eq!(b.late(&k, 0), 1);
}

#[test]
fn future_event_time_counts_at_arrival() {
    let mut a = Analytics::new(AnalyticsConfig::default());
    let k = SeriesKey::rule("r");
    a.record(&msg("1", "x", T0 + 3_600_000), std::slice::from_ref(&k), T0);
    assert_eq!(a.stats().future_clamped, 1);
    assert_eq!(count_at(&a, &k, 0, T0), 1);
    // Without a timestamp, arrival time is the event time.
    a.record(&Message::new("2", "x"), std::slice::from_ref(&k), T0 + 2_000);
    assert_eq!(count_at(&a, &k, 0, T0 + 2_000), 1);
}

#[test]
fn reaction_is_computed_once_and_counted_per_bucket() {
    let mut a = Analytics::new(AnalyticsConfig::default());
    let keys = [
        SeriesKey::rule("a"),
        SeriesKey::rule("b"),
        SeriesKey::subscriber("s"),
        SeriesKey::tag("t"),
    ];
    let out = a.record(&msg("1", "I love this launch!", T0), &keys, T0);
    a.record(&msg("2", "This is awful.", T0 + 10), &keys, T0 + 10);
    a.record(&msg("3", "The launch is today.", T0 + 20), &keys, T0 + 20);
    assert_eq!(a.stats().scored, 3, "one score per message, not per series");
    assert!(out.reaction.unwrap().compound > 0.5);
    let ra = a.recent(&keys[0], i64::MIN, i64::MAX);
    let rs = a.recent(&keys[2], i64::MIN, i64::MAX);
    assert_eq!(ra[0].message, rs[0].message, "every series keeps the message");
    assert_eq!(ra[0].reaction, out.reaction, "with its reaction");
    for k in &keys {
        let p = a.series(k, 0, T0, T0).unwrap()[0];
        assert_eq!((p.count, p.pos, p.neu, p.neg), (3, 1, 1, 1), "{k:?}");
        assert!(p.mean_compound.abs() < 0.5);
    }
}

#[test]
fn ring_keeps_the_last_n_per_series_and_respects_the_memory_cap() {
    let mut a = Analytics::new(AnalyticsConfig::default().with_recent(3, usize::MAX));
    let k = SeriesKey::rule("r");
    for i in 0..5 {
        a.record(&msg(&i.to_string(), "x", T0 + i * 100), std::slice::from_ref(&k), T0 + i * 100);
    }
    let r = a.recent(&k, i64::MIN, i64::MAX);
    assert_eq!(r.iter().map(|r| r.message.id.as_str()).collect::<Vec<_>>(), ["2", "3", "4"]);
    // Time-range query.
    assert_eq!(a.recent(&k, T0 + 250, T0 + 350).len(), 1);

    // A global cap of 4 KiB (16 chunks of 256 bytes, two of these 116-byte messages with
    // their reactions each), shared by two series: the newest are held, the oldest dropped
    // and counted.
    let cap = 4096;
    let mut b = Analytics::new(AnalyticsConfig::default().with_recent(100, cap));
    let (x, y) = (SeriesKey::rule("x"), SeriesKey::rule("y"));
    for i in 0..100 {
        let key = if i % 2 == 0 { &x } else { &y };
        b.record(
            &msg(&format!("{i:02}"), "y", T0 + i * 10),
            std::slice::from_ref(key),
            T0 + i * 10,
        );
        assert!(b.recent_bytes() <= cap);
    }
    let mut kept: Vec<i64> = b
        .recent(&x, i64::MIN, i64::MAX)
        .into_iter()
        .chain(b.recent(&y, i64::MIN, i64::MAX))
        .map(|r| r.message.id.parse().unwrap())
        .collect();
    kept.sort_unstable();
    let n = kept.len() as i64;
    assert_eq!(kept, (100 - n..100).collect::<Vec<_>>(), "the oldest go first");
    assert!(n >= 28, "{n} kept: at least the 14 chunks the cap holds beside the newest");
    assert_eq!(b.stats().recent_evicted, 100 - n as u64, "each dropped message counted once");
}

#[test]
fn top_k_by_rate_and_burst() {
    let mut a = Analytics::new(AnalyticsConfig::default());
    let (hot, cold) = (SeriesKey::rule("hot"), SeriesKey::rule("cold"));
    for s in 0..60 {
        for j in 0..5 {
            a.record(
                &msg("h", "x", T0 + s * 1000 + j),
                std::slice::from_ref(&hot),
                T0 + s * 1000 + j,
            );
        }
        a.record(&msg("c", "x", T0 + s * 1000), std::slice::from_ref(&cold), T0 + s * 1000);
    }
    a.advance(T0 + 70_000);
    let top = a.top_by_rate(0, 2, Some("rule"));
    assert_eq!(top[0].0, hot);
    assert_eq!(top[1].0, cold);
    assert!(a.top_by_rate(0, 5, Some("tag")).is_empty());
    assert_eq!(a.top_by_rate(0, 1, None).len(), 1);
    let _ = a.top_by_burst(0, 2, None);
}

#[test]
fn bursts_become_events_of_their_series() {
    let mut a = Analytics::new(AnalyticsConfig::default().with_lateness_ms(0));
    let k = SeriesKey::rule("launch");
    let mut events = Vec::new();
    let mut t = T0;
    for s in 0..300i64 {
        let n = if (200..210).contains(&s) { 40 } else { 2 };
        for j in 0..n {
            t = T0 + s * 1000 + j * (1000 / n);
            events.extend(a.record(&msg("m", "x", t), std::slice::from_ref(&k), t).events);
        }
    }
    events.extend(a.advance(t + 1000));
    let secs: Vec<(i64, BurstEvent)> = events
        .iter()
        .filter(|e| e.event.resolution == 0)
        .map(|e| ((e.event.bucket_start_ms - T0) / 1000, e.event.kind))
        .collect();
    assert!(secs.contains(&(200, BurstEvent::Start)), "{secs:?}");
    assert!(
        secs.iter().any(|&(s, e)| e == BurstEvent::End && (210..=212).contains(&s)),
        "{secs:?}"
    );
    assert!(secs.iter().all(|&(s, _)| (200..=212).contains(&s)), "no other burst: {secs:?}");
    let p = a.series(&k, 0, T0 + 200_000, T0 + 200_000).unwrap()[0];
    assert!(p.score > 0.5 && p.closed);
}

#[test]
fn memory_per_active_rule_is_bounded() {
    let cfg = AnalyticsConfig::default().with_recent(0, 0);
    let mut a = Analytics::new(cfg.clone());
    let k = SeriesKey::rule("busy");
    assert_eq!(a.series_bytes(&k), 0, "a rule that never matched costs nothing");
    // Fill every bucket of every default resolution: one match an hour for 29 days, a minute
    // for 23 hours, a second for 10 minutes.
    let mut t = T0;
    let rec = |a: &mut Analytics, t: i64| {
        a.record(&msg("m", "x", t), std::slice::from_ref(&k), t);
    };
    for _ in 0..29 * 24 {
        rec(&mut a, t);
        t += 3_600_000;
    }
    for _ in 0..23 * 60 {
        rec(&mut a, t);
        t += 60_000;
    }
    for _ in 0..600 {
        rec(&mut a, t);
        t += 1000;
    }
    let full = a.series_bytes(&k);
    let cells: usize = Resolution::defaults().iter().map(|r| r.buckets()).sum();
    eprintln!("bytes per active rule, every bucket full: {full} ({cells} buckets)");
    assert!(full <= cells * 24 + 2048, "{full}");
    let mut b = Analytics::new(cfg);
    b.record(&msg("m", "x", T0), std::slice::from_ref(&k), T0);
    let one = b.series_bytes(&k);
    eprintln!("bytes per active rule, one match: {one}");
    assert!(one <= 1024, "{one}");
}
