//! `streamtrack run`: the streaming engine over JSON Lines, every subscriber's deliveries on
//! standard output.
//!
//! Output: one JSON object per line, each with a leading `"subscriber"` field so that one
//! stream carries every subscriber:
//!
//! ```text
//! {"subscriber":"alice","id":"1","text":"…","matching_rules":[{"id":"r1","tag":"t"}]}
//! {"subscriber":"bob","limit":{"track":3}}
//! ```
//!
//! A match echoes the input object (unknown fields included) plus `matching_rules` with the
//! ids of the rules file. Limit notices, stall warnings and disconnects are written as well;
//! the routine disconnect every subscriber gets at the end of the input (code 5) is left out
//! unless `--disconnects` is given.

use crate::format::group;
use crate::format::DialectArg;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use streamtrack::engine::jsonl::{JsonLinesSource, SharedWriter};
use streamtrack::engine::{
    Delivery, DisconnectCode, Engine, EngineEvent, FullPolicy, Sink, SinkError, Source,
    SourceErrorKind, StopReason, SubscriberConfig,
};
use streamtrack::read::BadLines;
use streamtrack::registry::{Registry, RegistryError, RuleId};

#[derive(Clone, Copy, ValueEnum)]
pub enum PolicyArg {
    /// Wait for the output (nothing is dropped).
    Block,
    /// Drop new matches for a subscriber whose queue is full (reported as limit notices).
    DropNewest,
    /// Drop a subscriber's oldest queued matches (reported as limit notices).
    DropOldest,
    /// Disconnect a subscriber whose queue is full (code 4).
    Disconnect,
}

#[derive(Args)]
pub struct RunArgs {
    /// Rules, one JSON object per line:
    /// {"id": …, "value": …, "tag": …, "subscriber": …, "dialect": "track"|"rule"}.
    /// Rules without a subscriber are each their own subscriber, named after the rule id.
    #[arg(long)]
    rules: PathBuf,
    /// Dialect of rules that do not name one.
    #[arg(long, value_enum, default_value = "rule")]
    dialect: DialectArg,
    /// Matcher threads (default: the number of cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Matches each subscriber's queue holds.
    #[arg(long, default_value_t = 10_000)]
    queue: usize,
    /// What happens to a subscriber whose queue is full.
    #[arg(long, value_enum, default_value = "block")]
    policy: PolicyArg,
    /// Most matches per second delivered to each subscriber (the rest: limit notices).
    #[arg(long)]
    rate_limit: Option<u32>,
    /// Also write the disconnect notice each subscriber gets at the end of the input.
    #[arg(long)]
    disconnects: bool,
    /// No progress bar and no summary on standard error.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    bad_lines: crate::format::BadLineArgs,
    /// Messages, one per line: JSON (any line starting with `{`) or plain text (id: the line
    /// number); standard input when omitted or `-`.
    input: Option<PathBuf>,
}

type Out = SharedWriter<BufWriter<io::Stdout>>;

/// One subscriber's stream, written to the shared standard output.
struct StdoutSink {
    subscriber: String,
    ids: Arc<HashMap<RuleId, String>>,
    out: Out,
    disconnects: bool,
    broken_pipe: Arc<AtomicBool>,
    line: Vec<u8>,
}

impl StdoutSink {
    fn object(&self, delivery: &Delivery) -> Option<Map<String, Value>> {
        let mut o = Map::new();
        o.insert("subscriber".into(), Value::String(self.subscriber.clone()));
        match delivery {
            Delivery::Match { message, matching_rules } => {
                let body = match message.to_json_value() {
                    Value::Object(b) => b,
                    _ => Map::new(),
                };
                o.extend(body.into_iter().filter(|(k, _)| k != "matching_rules"));
                let rules = matching_rules
                    .iter()
                    .map(|r| {
                        let mut e = Map::new();
                        let id = self.ids.get(&r.id).cloned().unwrap_or_else(|| r.id.to_string());
                        e.insert("id".into(), Value::String(id));
                        if let Some(tag) = &r.tag {
                            e.insert("tag".into(), Value::String(tag.to_string()));
                        }
                        Value::Object(e)
                    })
                    .collect();
                o.insert("matching_rules".into(), Value::Array(rules));
            }
            Delivery::Disconnect { code, .. }
                if !self.disconnects
                    && (*code == DisconnectCode::NORMAL || *code == DisconnectCode::SHUTDOWN) =>
            {
                return None
            }
            other => {
                if let Value::Object(body) = other.to_json_value() {
                    o.extend(body);
                }
            }
        }
        Some(o)
    }

    fn write(&mut self, result: io::Result<()>) -> Result<(), SinkError> {
        if let Err(e) = &result {
            if e.kind() == io::ErrorKind::BrokenPipe {
                self.broken_pipe.store(true, Ordering::SeqCst);
            }
        }
        Ok(result?)
    }
}

impl Sink for StdoutSink {
    fn send(&mut self, delivery: Delivery) -> Result<(), SinkError> {
        let Some(o) = self.object(&delivery) else { return Ok(()) };
        self.line.clear();
        serde_json::to_writer(&mut self.line, &o).map_err(|e| SinkError::new(e.to_string()))?;
        self.line.push(b'\n');
        let r = self.out.write_all(&self.line);
        self.write(r)
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        let r = self.out.flush();
        self.write(r)
    }
}

fn policy(p: PolicyArg) -> FullPolicy {
    match p {
        PolicyArg::Block => FullPolicy::Block,
        PolicyArg::DropNewest => FullPolicy::DropNewest,
        PolicyArg::DropOldest => FullPolicy::DropOldest,
        PolicyArg::Disconnect => FullPolicy::Disconnect,
    }
}

pub fn run(args: RunArgs) -> ExitCode {
    let entries = match crate::format::load_rules(&args.rules, args.dialect.into()) {
        Ok(e) => e,
        Err(code) => return code,
    };
    let registry = Registry::new();
    let mut ids: HashMap<RuleId, String> = HashMap::new();
    let mut subscribers: Vec<String> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    for e in &entries {
        let subscriber = e.subscriber.clone().unwrap_or_else(|| e.id.clone());
        match registry.subscribe(&subscriber, e.rule.clone(), e.tag.clone()) {
            Ok(id) => {
                if seen.insert(subscriber.clone()) {
                    subscribers.push(subscriber);
                }
                ids.insert(id, e.id.clone());
            }
            Err(RegistryError::Duplicate { existing }) => eprintln!(
                "warning: {}: rule {} (id {:?}) repeats rule id {:?} of subscriber {subscriber:?}; skipped",
                args.rules.display(),
                e.line,
                e.id,
                ids.get(&existing).map_or("?", String::as_str),
            ),
            Err(err) => {
                eprintln!("error: {}: rule {}: {err}", args.rules.display(), e.line);
                return ExitCode::from(2);
            }
        }
    }
    let input = match crate::format::open_input(args.input.as_deref()) {
        Ok(i) => i,
        Err(code) => return code,
    };
    let bad = BadLines::to_stderr(input.name.clone());
    let source = JsonLinesSource::new(input.reader).report_bad_lines(bad.clone());
    let bytes = input.len.map(|_| source.bytes_read());
    run_engine(args, registry, ids, subscribers, Box::new(source), input.len, bytes, bad)
}

#[allow(clippy::too_many_arguments)]
fn run_engine(
    args: RunArgs,
    registry: Registry,
    ids: HashMap<RuleId, String>,
    subscribers: Vec<String>,
    source: Box<dyn Source>,
    total_bytes: Option<u64>,
    bytes_read: Option<Arc<AtomicU64>>,
    bad: BadLines,
) -> ExitCode {
    let ids = Arc::new(ids);
    let out: Out = SharedWriter::new(BufWriter::with_capacity(1 << 16, io::stdout()));
    let broken_pipe = Arc::new(AtomicBool::new(false));
    let config = SubscriberConfig::new()
        .capacity(args.queue)
        .policy(policy(args.policy))
        .rate_limit(args.rate_limit);
    let progress = match (total_bytes, &bytes_read) {
        (Some(len), Some(_)) if !args.quiet && io::stderr().is_terminal() => {
            let bar = ProgressBar::new(len);
            let style = ProgressStyle::with_template(
                "{bar:30} {bytes}/{total_bytes} {elapsed_precise} eta {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            Some(bar)
        }
        _ => None,
    };
    let printer = {
        let bar = progress.clone();
        let bp = broken_pipe.clone();
        move |event: &EngineEvent| {
            let line = match event {
                // Bad lines are reported by the source itself (`BadLines`, as in `match`).
                EngineEvent::Source(e) if e.kind == SourceErrorKind::Malformed => return,
                EngineEvent::Source(e) => format!("input {e}"),
                EngineEvent::SinkFailed { .. } if bp.load(Ordering::SeqCst) => return,
                EngineEvent::SinkFailed { subscriber, error } => {
                    format!("subscriber {subscriber:?}: output failed: {error}")
                }
                EngineEvent::Disconnected { subscriber, code, reason }
                    if *code == DisconnectCode::STALL =>
                {
                    format!("subscriber {subscriber:?} disconnected (code {}): {reason}", code.0)
                }
                _ => return,
            };
            match &bar {
                Some(b) => b.println(&line),
                None => eprintln!("{line}"),
            }
        }
    };
    let mut builder = Engine::builder(registry).on_event(printer).subscriber_defaults(config);
    if let Some(t) = args.threads {
        builder = builder.matcher_threads(t);
    }
    for s in &subscribers {
        builder = builder.attach(
            s,
            StdoutSink {
                subscriber: s.clone(),
                ids: ids.clone(),
                out: out.clone(),
                disconnects: args.disconnects,
                broken_pipe: broken_pipe.clone(),
                line: Vec::new(),
            },
        );
    }
    let start = Instant::now();
    let engine = match builder.start(source) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    while engine.is_running() {
        std::thread::sleep(Duration::from_millis(20));
        if broken_pipe.load(Ordering::SeqCst) {
            // The reader went away (e.g. `| head`): stop quietly.
            engine.request_shutdown();
        }
        if let (Some(bar), Some(bytes)) = (&progress, &bytes_read) {
            let s = engine.stats();
            bar.set_position(bytes.load(Ordering::Relaxed));
            bar.set_message(format!("{} msgs, {} matched", group(s.received), group(s.matched)));
        }
    }
    let finished = engine.join();
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    let _ = out.with(|w| w.flush());
    let s = &finished.stats;
    let secs = start.elapsed().as_secs_f64();
    if !args.quiet {
        if let Some(summary) = bad.summary(s.received + bad.count()) {
            eprintln!("{summary}");
        }
        let gone = if s.unrouted > 0 {
            format!(", {} for subscribers already disconnected", group(s.unrouted))
        } else {
            String::new()
        };
        eprintln!(
            "streamtrack run: {} messages read in {secs:.2} s ({} msgs/s); {} matched; \
             {} deliveries to {} subscribers, {} dropped{gone}",
            group(s.received),
            group((s.received as f64 / secs.max(1e-9)) as u64),
            group(s.matched),
            group(s.delivered),
            group(subscribers.len() as u64),
            group(s.dropped),
        );
    }
    match finished.reason {
        StopReason::SourceFailed(e) => {
            eprintln!("error: reading input: {e}");
            ExitCode::from(1)
        }
        _ if args.bad_lines.strict && bad.count() > 0 => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    }
}
