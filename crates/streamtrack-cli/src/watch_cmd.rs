//! `streamtrack watch`: the live picture of a tracked conversation in a terminal (issue 16,
//! item 4). The engine runs in-process with its analytics stage; this thread only reads the
//! figures (a brief lock, four times a second), so drawing never holds up matching.
//!
//! Per rule (or per tag with `--tag-view`): the 1 s volume as a sparkline, the reaction
//! balance, burst marks and score, the latest matched message. Keys: `s` sort, `p` pin,
//! arrows or `j`/`k` select, Enter the selected row's recent messages, Esc back, `q` quit.

#[path = "watch/view.rs"]
mod view;

use crate::format::DialectArg;
use clap::Args;
use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use std::collections::{HashMap, HashSet};
use std::io::{self, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use streamtrack::analytics::{Analytics, AnalyticsConfig, BurstEvent, Recent, SeriesKey};
use streamtrack::engine::jsonl::JsonLinesSource;
use streamtrack::engine::{
    Engine, EngineEvent, Source, SourceError, SourceErrorKind, SourceStatus,
};
use streamtrack::explain::{explain, ExplainNode, NodeKind};
use streamtrack::registry::{Registry, RegistryError};
use streamtrack::{Message, Rule};
use streamtrack_web::live::{live_rate, rate_range, EventClock};
use view::{App, Detail, DetailMessage, Header, Key, Mode, RowData, Sort};

/// How often the screen is redrawn without a key (the figures' own pace is 1 s buckets).
const REDRAW: Duration = Duration::from_millis(250);

#[derive(Args)]
pub struct WatchArgs {
    /// Rules, one JSON object per line:
    /// {"id": …, "value": …, "tag": …, "subscriber": …, "dialect": "track"|"rule"}.
    #[arg(long)]
    rules: PathBuf,
    /// Messages, JSON Lines (`-` or absent: standard input; keys are then read from the
    /// terminal itself).
    #[arg(long)]
    input: Option<PathBuf>,
    /// Replay the input at this multiple of its own pace (by the messages' timestamps); by
    /// default messages are matched as fast as they are read.
    #[arg(long)]
    replay_speed: Option<f64>,
    /// One row per rule tag (rules without a tag under "(untagged)") instead of per rule.
    #[arg(long)]
    tag_view: bool,
    /// Dialect of rules that do not name one.
    #[arg(long, value_enum, default_value = "rule")]
    dialect: DialectArg,
}

/// One row: a rule, or the rules sharing a tag.
struct Row {
    name: String,
    rules: Vec<(SeriesKey, Rule)>,
}

/// The input, paced by the messages' timestamps when `--replay-speed` is given.
struct Paced<S> {
    inner: S,
    speed: Option<f64>,
    pending: std::collections::VecDeque<Message>,
    ended: bool,
    /// First timestamp and when it was handed over.
    base: Option<(i64, Instant)>,
    clock: Arc<EventClock>,
}

impl<S: Source> Source for Paced<S> {
    fn next_batch(
        &mut self,
        out: &mut Vec<Message>,
        max: usize,
    ) -> Result<SourceStatus, SourceError> {
        if self.pending.is_empty() && !self.ended {
            let mut buf = Vec::new();
            let r = self.inner.next_batch(&mut buf, max.max(1));
            self.pending.extend(buf);
            match r {
                Ok(SourceStatus::Ended) => self.ended = true,
                Ok(_) => {}
                Err(e) => {
                    self.ended |= e.is_fatal();
                    return Err(e);
                }
            }
        }
        while out.len() < max {
            let Some(m) = self.pending.front() else { break };
            if let (Some(speed), Some(ts)) = (self.speed, m.timestamp) {
                let (t0, i0) = *self.base.get_or_insert((ts, Instant::now()));
                let after = ((ts - t0).max(0) as f64 / speed).min(86_400_000.0);
                let due = i0 + Duration::from_secs_f64(after / 1000.0);
                let now = Instant::now();
                if due > now {
                    if out.is_empty() {
                        std::thread::sleep((due - now).min(Duration::from_millis(50)));
                        continue;
                    }
                    break;
                }
            }
            let Some(m) = self.pending.pop_front() else { break };
            self.clock.saw(m.timestamp);
            out.push(m);
        }
        Ok(if self.ended && self.pending.is_empty() {
            // What was read stays in view: the window no longer follows the wall clock.
            self.clock.end();
            SourceStatus::Ended
        } else {
            SourceStatus::Open
        })
    }
}

pub fn run(args: WatchArgs) -> ExitCode {
    if !io::stdout().is_terminal() {
        eprintln!(
            "error: streamtrack watch draws on a terminal, and standard output is not one \
             (for JSON Lines use `streamtrack run --analytics`)"
        );
        return ExitCode::from(2);
    }
    if let Some(s) = args.replay_speed {
        if !(s.is_finite() && s > 0.0) {
            eprintln!("error: --replay-speed: expected a number > 0, got {s}");
            return ExitCode::from(2);
        }
    }
    let entries = match crate::format::load_rules(&args.rules, args.dialect.into()) {
        Ok(e) => e,
        Err(code) => return code,
    };
    let registry = Registry::new();
    let mut by_name: HashMap<String, Row> = HashMap::new();
    for e in &entries {
        let subscriber = e.subscriber.clone().unwrap_or_else(|| e.id.clone());
        let id = match registry.subscribe(&subscriber, e.rule.clone(), e.tag.clone()) {
            Ok(id) => id,
            Err(RegistryError::Duplicate { .. }) => continue,
            Err(err) => {
                eprintln!("error: {}: rule {}: {err}", args.rules.display(), e.line);
                return ExitCode::from(2);
            }
        };
        let name = if args.tag_view {
            e.tag.clone().unwrap_or_else(|| "(untagged)".into())
        } else {
            e.id.clone()
        };
        let row = by_name.entry(name.clone()).or_insert_with(|| Row { name, rules: vec![] });
        row.rules.push((SeriesKey::rule(&id.as_u64().to_string()), e.rule.clone()));
    }
    let mut rows: Vec<Row> = by_name.into_values().collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));

    let input = match crate::format::open_input(args.input.as_deref()) {
        Ok(i) => i,
        Err(code) => return code,
    };
    let source = JsonLinesSource::new(input.reader);
    let read = source.messages_read();
    let clock = Arc::new(EventClock::new());
    let paced = Paced {
        inner: source,
        speed: args.replay_speed,
        pending: Default::default(),
        ended: false,
        base: None,
        clock: clock.clone(),
    };
    let marks: Arc<Mutex<HashMap<SeriesKey, Vec<i64>>>> = Arc::default();
    let bad = Arc::new(AtomicU64::new(0));
    let on_event = {
        let marks = marks.clone();
        let bad = bad.clone();
        move |e: &EngineEvent| match e {
            EngineEvent::Burst { event, .. }
                if event.event.resolution == 0
                    && event.event.kind == BurstEvent::Start
                    && event.key.kind() == "rule" =>
            {
                let mut m = marks.lock().unwrap_or_else(PoisonError::into_inner);
                let v = m.entry(event.key.clone()).or_default();
                v.push(event.event.bucket_start_ms);
                if v.len() > 1000 {
                    v.drain(..500);
                }
            }
            EngineEvent::Source(s) if s.kind == SourceErrorKind::Malformed => {
                bad.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    };
    let engine = match Engine::builder(registry)
        .analytics(AnalyticsConfig::default())
        .on_event(on_event)
        .start(paced)
    {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let Some(analytics) = engine.analytics() else {
        eprintln!("error: the analytics stage did not start");
        return ExitCode::from(1);
    };
    let stop = match watch_signals() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot watch SIGINT/SIGTERM: {e}");
            return ExitCode::from(1);
        }
    };
    let w = Watch {
        rows,
        what: if args.tag_view { "tags" } else { "rules" },
        analytics,
        marks,
        clock,
        read,
        bad,
    };
    // Raw mode, the alternate screen, and a panic hook that restores both.
    let mut terminal = match ratatui::try_init() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot set up the terminal: {e}");
            return ExitCode::from(1);
        }
    };
    let result = ui(&mut terminal, &w, &engine, &stop);
    ratatui::restore();
    engine.request_shutdown();
    let a = w.analytics.lock().unwrap_or_else(PoisonError::into_inner).stats();
    println!(
        "streamtrack watch: {} messages read, {} matched",
        w.read.load(Ordering::Relaxed),
        a.messages
    );
    // The engine is not joined: a blocked standard input would hold it; exiting ends it.
    let sig = stop.load(Ordering::SeqCst);
    match result {
        Ok(()) if sig != 0 => ExitCode::from(u8::try_from(128 + sig).unwrap_or(1)),
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: terminal: {e}");
            ExitCode::from(1)
        }
    }
}

/// The number of the first SIGINT or SIGTERM (0 before one; raw mode turns Ctrl-C into a
/// key, but a `kill` still comes as a signal): the loop then restores the terminal and exits
/// with status 128 + the signal's number, as a shell reports a process killed by it.
#[cfg(unix)]
fn watch_signals() -> io::Result<Arc<AtomicI32>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let flag = Arc::new(AtomicI32::new(0));
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    let f = flag.clone();
    std::thread::Builder::new().name("streamtrack-signals".into()).spawn(move || {
        if let Some(sig) = signals.forever().next() {
            f.store(sig, Ordering::SeqCst);
        }
    })?;
    Ok(flag)
}

#[cfg(not(unix))]
fn watch_signals() -> io::Result<Arc<AtomicI32>> {
    Ok(Arc::new(AtomicI32::new(0)))
}

/// What the loop reads from.
struct Watch {
    rows: Vec<Row>,
    what: &'static str,
    analytics: Arc<Mutex<Analytics>>,
    marks: Arc<Mutex<HashMap<SeriesKey, Vec<i64>>>>,
    clock: Arc<EventClock>,
    read: Arc<AtomicU64>,
    bad: Arc<AtomicU64>,
}

fn to_key(k: event::KeyEvent) -> Option<Key> {
    if k.kind == KeyEventKind::Release {
        return None;
    }
    Some(match k.code {
        KeyCode::Char(c) if k.modifiers.contains(KeyModifiers::CONTROL) => Key::Ctrl(c),
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::PageUp => Key::PageUp,
        KeyCode::PageDown => Key::PageDown,
        KeyCode::Enter => Key::Enter,
        KeyCode::Esc => Key::Esc,
        _ => return None,
    })
}

fn ui(
    terminal: &mut ratatui::DefaultTerminal,
    w: &Watch,
    engine: &Engine,
    stop: &AtomicI32,
) -> io::Result<()> {
    let mut app = App::new();
    let mut last_draw: Option<Instant> = None;
    let mut dirty = true;
    loop {
        if stop.load(Ordering::SeqCst) != 0 {
            return Ok(());
        }
        if dirty || last_draw.is_none_or(|t| t.elapsed() >= REDRAW) {
            let size = terminal.size()?;
            let header = Header {
                rows: w.rows.len(),
                what: w.what,
                read: w.read.load(Ordering::Relaxed),
                matched: 0,
                bad: w.bad.load(Ordering::Relaxed),
                ended: !engine.is_running(),
                sort: Some(app.sort),
                now_ms: w.clock.now(),
            };
            match app.mode {
                Mode::List => {
                    let (header, shown, sel) = w.list(&mut app, header, size.width, size.height);
                    terminal.draw(|f| view::draw_list(f, &header, &shown, sel))?;
                }
                Mode::Detail { row, scroll } => {
                    let (header, detail) = w.detail(row, header, scroll + size.height as usize);
                    // Scrolling stops at the last message.
                    let scroll = scroll.min(detail.kept.saturating_sub(1));
                    app.mode = Mode::Detail { row, scroll };
                    terminal.draw(|f| view::draw_detail(f, &header, &detail, scroll))?;
                }
            }
            last_draw = Some(Instant::now());
            dirty = false;
        }
        if event::poll(Duration::from_millis(50))? {
            match event::read()? {
                Event::Key(k) => {
                    if let Some(key) = to_key(k) {
                        if app.key(key) == view::Action::Quit {
                            return Ok(());
                        }
                        dirty = true;
                    }
                }
                Event::Resize(..) => dirty = true,
                _ => {}
            }
        }
    }
}

impl Watch {
    /// The rows to show, in order, and the selected one's place among them; updates the
    /// app's full order (for moving the selection).
    fn list(
        &self,
        app: &mut App,
        mut header: Header,
        width: u16,
        height: u16,
    ) -> (Header, Vec<RowData>, Option<usize>) {
        let spark = view::spark_width(width);
        let now = header.now_ms;
        let last_bucket = now.div_euclid(1000) * 1000;
        let first_bucket = last_bucket - (spark as i64 - 1) * 1000;
        let marks = self.marks.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let a = self.analytics.lock().unwrap_or_else(PoisonError::into_inner);
        header.matched = a.stats().messages;
        // The rate at the view's clock: the current second counted for the part elapsed, and
        // the two before it (res 0 is the 1 s series).
        let (rate_from, rate_to) = rate_range(now);
        let rate_of = |k: &SeriesKey| {
            a.series(k, 0, rate_from, rate_to)
                .map_or(0.0, |ps| live_rate(ps.iter().map(|p| (p.start_ms, p.count)), now))
        };
        let scores: HashMap<SeriesKey, f64> =
            a.top_by_burst(0, usize::MAX, Some("rule")).into_iter().collect();
        let metric = |r: &Row| -> f64 {
            match app.sort {
                Sort::Rate => r.rules.iter().map(|(k, _)| rate_of(k)).sum(),
                Sort::Burst => {
                    r.rules.iter().filter_map(|(k, _)| scores.get(k)).fold(0.0, |x, &y| x.max(y))
                }
                Sort::Name => 0.0,
            }
        };
        let pinned: HashSet<usize> = app.pinned.iter().copied().collect();
        let mut rest: Vec<(usize, f64)> = (0..self.rows.len())
            .filter(|i| !pinned.contains(i))
            .map(|i| (i, metric(&self.rows[i])))
            .collect();
        // Stable: equal figures stay in name order (the rows are sorted by name).
        rest.sort_by(|x, y| y.1.total_cmp(&x.1));
        let mut order = app.pinned.clone();
        order.extend(rest.into_iter().map(|(i, _)| i));
        let fit = view::rows_fitting(height).max(1);
        let at = app.selected.and_then(|s| order.iter().position(|&r| r == s));
        let offset = at.map_or(0, |i| (i + 1).saturating_sub(fit));
        let shown: Vec<RowData> = order
            .iter()
            .skip(offset)
            .take(fit)
            .map(|&i| {
                let row = &self.rows[i];
                let mut d = RowData {
                    name: row.name.clone(),
                    pinned: pinned.contains(&i),
                    counts: vec![0; spark],
                    marks: vec![false; spark],
                    ..RowData::default()
                };
                let mut latest: Option<Recent> = None;
                for (key, _) in &row.rules {
                    d.rate += rate_of(key);
                    if a.in_burst(key, 0) {
                        let s = scores.get(key).copied().unwrap_or(0.0);
                        d.burst = Some(d.burst.map_or(s, |b: f64| b.max(s)));
                    }
                    for p in a.series(key, 0, first_bucket, last_bucket).unwrap_or_default() {
                        let Ok(b) = usize::try_from((p.start_ms - first_bucket) / 1000) else {
                            continue;
                        };
                        if let Some(c) = d.counts.get_mut(b) {
                            *c += u64::from(p.count);
                            d.total += u64::from(p.count);
                            d.pos += u64::from(p.pos);
                            d.neg += u64::from(p.neg);
                        }
                    }
                    for &t in marks.get(key).into_iter().flatten() {
                        if let Ok(b) = usize::try_from((t - first_bucket).div_euclid(1000)) {
                            if let Some(m) = d.marks.get_mut(b) {
                                *m = true;
                            }
                        }
                    }
                    if let Some(r) = a.latest(key) {
                        if latest.as_ref().is_none_or(|l| r.time_ms >= l.time_ms) {
                            latest = Some(r);
                        }
                    }
                }
                d.latest = latest.map(|r| r.message.text.clone());
                d
            })
            .collect();
        drop(a);
        let sel = at.map(|i| i - offset);
        app.order = order;
        (header, shown, sel)
    }

    /// The recent messages of row `row`, newest first (at most `n`), with the byte ranges its
    /// rules matched.
    fn detail(&self, row: usize, mut header: Header, n: usize) -> (Header, Detail) {
        let Some(r) = self.rows.get(row) else { return (header, Detail::default()) };
        let mut msgs: Vec<(i64, Arc<Message>, Option<f64>)> = Vec::new();
        {
            let a = self.analytics.lock().unwrap_or_else(PoisonError::into_inner);
            header.matched = a.stats().messages;
            // A message kept by several rules of the row is shown once.
            let mut seen = HashSet::new();
            for (key, _) in &r.rules {
                for m in a.recent(key, i64::MIN, i64::MAX) {
                    if seen.insert((m.time_ms, m.message.id.clone(), m.message.text.clone())) {
                        msgs.push((m.time_ms, m.message.clone(), m.reaction.map(|x| x.compound)));
                    }
                }
            }
        }
        // Newest first; the explanations (for the highlights) are made outside the lock.
        msgs.sort_by_key(|m| std::cmp::Reverse(m.0));
        let kept = msgs.len();
        msgs.truncate(n);
        let messages = msgs
            .into_iter()
            .map(|(time_ms, m, compound)| {
                let mut spans = Vec::new();
                for (_, rule) in &r.rules {
                    let e = explain(rule, &m);
                    if e.matched {
                        text_hits(&e.tree, &mut spans);
                    }
                }
                DetailMessage { time_ms, compound, text: m.text.clone(), spans: merge(spans) }
            })
            .collect();
        (header, Detail { name: r.name.clone(), kept, messages })
    }
}

/// The byte ranges of the message text where the terms that made a match were found.
fn text_hits(n: &ExplainNode, out: &mut Vec<std::ops::Range<usize>>) {
    if !n.matched || n.kind == NodeKind::Not {
        return;
    }
    for h in n.hits.iter().filter(|h| h.field == "text") {
        out.extend(h.spans.iter().cloned());
    }
    for c in &n.children {
        text_hits(c, out);
    }
}

/// Sorted, non-overlapping ranges covering the same bytes.
fn merge(mut v: Vec<std::ops::Range<usize>>) -> Vec<std::ops::Range<usize>> {
    v.sort_by_key(|r| (r.start, r.end));
    let mut out: Vec<std::ops::Range<usize>> = Vec::new();
    for r in v {
        match out.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => out.push(r),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_joins_overlapping_ranges() {
        assert_eq!(merge(vec![5..8, 0..2, 1..3, 8..9]), vec![0..3, 5..9]);
    }

    #[test]
    fn highlights_come_from_the_matching_terms_only() {
        let rule = Rule::parse("launch -delay").unwrap();
        let m = Message::new("1", "Launch day, launch time");
        let e = explain(&rule, &m);
        let mut spans = Vec::new();
        text_hits(&e.tree, &mut spans);
        let words: Vec<&str> = merge(spans).into_iter().map(|r| &m.text[r]).collect();
        assert_eq!(words, ["Launch", "launch"]);
    }
}
