//! `streamtrack nats`: run the engine on NATS JetStream (instances sharing a durable consumer
//! and a KV bucket of rules), manage the shared rules, publish messages. See README, "Running
//! on NATS", and DESIGN.md, "The NATS transport".

use clap::{Args, Subcommand};
use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use streamtrack::engine::{Engine, EngineEvent, Source};
use streamtrack::Registry;
use streamtrack_nats::{
    delivery_stream_name, validate_rules, ConsumerSettings, JetStreamSink, JetStreamSource, Nats,
    RuleNames, RulesEvent, RulesWatcher, SinkCounters, SourceCounters, SubjectSource,
};

/// `streamtrack nats …`.
#[derive(Args)]
pub struct NatsArgs {
    #[command(subcommand)]
    command: NatsCommand,
}

#[derive(Subcommand)]
enum NatsCommand {
    /// One instance: JetStream stream in (shared durable consumer), deliveries out to
    /// `<prefix>.<subscriber>`, rules from a KV bucket. Creates what is absent; exits cleanly
    /// on SIGTERM/SIGINT after acknowledging what it delivered.
    Run(RunArgs),
    /// Manage the rules shared through the KV bucket.
    Rules(RulesArgs),
    /// Publish JSON Lines messages (one per line) to a subject, through JetStream when a
    /// stream captures it (each publication acknowledged), else core NATS.
    Publish(PublishArgs),
}

#[derive(Args)]
struct RunArgs {
    /// The NATS server, `nats://host:port`.
    #[arg(long)]
    server: String,
    /// The JetStream stream of messages (created on `--subject` if absent).
    #[arg(long)]
    stream: String,
    /// The subject the stream captures.
    #[arg(long)]
    subject: String,
    /// The durable pull consumer the instances share.
    #[arg(long)]
    consumer: String,
    /// The KV bucket of rules (key: rule id; value: the rule's JSON).
    #[arg(long)]
    rules_bucket: String,
    /// Deliveries go to `<PREFIX>.<subscriber>` (a stream `DELIVER_<PREFIX>` captures them).
    #[arg(long)]
    deliver_prefix: String,
    /// Matcher threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Where malformed messages are published with their reason (default
    /// `streamtrack.dead.<STREAM>`).
    #[arg(long)]
    dead_letter: Option<String>,
    /// Where invalid rules in the bucket are reported (default
    /// `streamtrack.rules.<BUCKET>.errors`).
    #[arg(long)]
    rules_errors: Option<String>,
    /// Seconds the server waits for an acknowledgement before redelivering (set when the
    /// consumer is created).
    #[arg(long, default_value_t = 5.0)]
    ack_wait: f64,
    /// Messages delivered and unacknowledged at once over all instances (set when the
    /// consumer is created).
    #[arg(long, default_value_t = 4096)]
    max_ack_pending: i64,
    /// Pull batch size.
    #[arg(long, default_value_t = 256)]
    batch: usize,
    /// The de-duplication window of the delivery stream, in seconds (set when it is created).
    #[arg(long, default_value_t = 120.0)]
    duplicate_window: f64,
    /// Read `--subject` directly (core NATS, queue group `--consumer`): at-most-once, no
    /// stream, no acknowledgements.
    #[arg(long)]
    plain: bool,
    /// Seconds between two count lines on standard error (0: only at the end).
    #[arg(long, default_value_t = 5.0)]
    log_every: f64,
}

#[derive(Args)]
struct RulesArgs {
    #[command(subcommand)]
    action: RulesAction,
}

#[derive(Subcommand)]
enum RulesAction {
    /// Validate a rules file (JSON Lines: id, value, dialect, tag, subscriber) and write each
    /// rule to the bucket (nothing is written if any line is wrong).
    Add {
        #[command(flatten)]
        at: BucketArgs,
        /// The rules file (standard input if absent or `-`).
        file: Option<PathBuf>,
    },
    /// Remove rules by id.
    Rm {
        #[command(flatten)]
        at: BucketArgs,
        /// Rule ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// List the rules, one JSON object per line, by id.
    Ls {
        #[command(flatten)]
        at: BucketArgs,
    },
}

#[derive(Args)]
struct BucketArgs {
    /// The NATS server, `nats://host:port`.
    #[arg(long)]
    server: String,
    /// The KV bucket of rules (created if absent).
    #[arg(long)]
    rules_bucket: String,
}

#[derive(Args)]
struct PublishArgs {
    /// The NATS server, `nats://host:port`.
    #[arg(long)]
    server: String,
    /// The subject.
    #[arg(long)]
    subject: String,
    /// JSON Lines messages (standard input if absent or `-`); blank lines are skipped, other
    /// lines are published as they are (the instances dead-letter malformed ones).
    input: Option<PathBuf>,
}

/// Runs `streamtrack nats …`.
pub fn run(args: NatsArgs) -> ExitCode {
    let result = match args.command {
        NatsCommand::Run(a) => run_instance(a),
        NatsCommand::Rules(a) => rules(a),
        NatsCommand::Publish(a) => publish(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

fn connect(url: &str) -> Result<Nats, String> {
    Nats::connect(url).map_err(|e| e.to_string())
}

fn open_input(path: &Option<PathBuf>) -> Result<Box<dyn Read>, String> {
    match path {
        None => Ok(Box::new(io::stdin())),
        Some(p) if p.as_os_str() == "-" => Ok(Box::new(io::stdin())),
        Some(p) => std::fs::File::open(p)
            .map(|f| Box::new(f) as Box<dyn Read>)
            .map_err(|e| format!("cannot read {}: {e}", p.display())),
    }
}

fn rules(args: RulesArgs) -> Result<ExitCode, String> {
    match args.action {
        RulesAction::Add { at, file } => {
            let mut text = String::new();
            open_input(&file)?
                .read_to_string(&mut text)
                .map_err(|e| format!("cannot read the rules: {e}"))?;
            let name = file.as_ref().map_or("-".to_string(), |p| p.display().to_string());
            let rules = match validate_rules(&text, &name) {
                Ok(r) => r,
                Err(errors) => {
                    for e in &errors {
                        eprintln!("{e}");
                    }
                    eprintln!("error: nothing written ({} bad rules)", errors.len());
                    return Ok(ExitCode::from(2));
                }
            };
            let nats = connect(&at.server)?;
            let store = nats.ensure_bucket(&at.rules_bucket).map_err(|e| e.to_string())?;
            let mut last = 0;
            for (key, value) in &rules {
                last = nats
                    .block_on(store.put(key, value.clone().into()))
                    .map_err(|e| format!("cannot write rule {key:?}: {e}"))?;
            }
            eprintln!(
                "added {} rules to bucket {} (revision {last})",
                rules.len(),
                at.rules_bucket
            );
            Ok(ExitCode::SUCCESS)
        }
        RulesAction::Rm { at, ids } => {
            let nats = connect(&at.server)?;
            let store = nats.ensure_bucket(&at.rules_bucket).map_err(|e| e.to_string())?;
            let mut missing = 0;
            for id in &ids {
                match nats.block_on(store.get(id)) {
                    Ok(Some(_)) => {
                        nats.block_on(store.delete(id))
                            .map_err(|e| format!("cannot remove rule {id:?}: {e}"))?;
                    }
                    Ok(None) => {
                        eprintln!("error: no rule {id:?} in bucket {}", at.rules_bucket);
                        missing += 1;
                    }
                    Err(e) => return Err(format!("cannot read rule {id:?}: {e}")),
                }
            }
            eprintln!("removed {} rules from bucket {}", ids.len() - missing, at.rules_bucket);
            Ok(if missing > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
        RulesAction::Ls { at } => {
            let nats = connect(&at.server)?;
            let store = nats.ensure_bucket(&at.rules_bucket).map_err(|e| e.to_string())?;
            let mut keys: Vec<String> = nats
                .block_on(async {
                    use futures::TryStreamExt;
                    store.keys().await?.try_collect::<Vec<String>>().await.map_err(Into::into)
                })
                .map_err(|e: Box<dyn std::error::Error + Send + Sync>| {
                    format!("cannot list bucket {}: {e}", at.rules_bucket)
                })?;
            keys.sort();
            let stdout = io::stdout();
            let mut out = stdout.lock();
            for key in keys {
                let Ok(Some(value)) = nats.block_on(store.get(&key)) else { continue };
                let mut o = serde_json::Map::new();
                o.insert("id".into(), key.clone().into());
                match serde_json::from_slice::<serde_json::Value>(&value) {
                    Ok(serde_json::Value::Object(v)) => {
                        o.extend(v.into_iter().filter(|(k, _)| k != "id"))
                    }
                    _ => {
                        o.insert("invalid".into(), String::from_utf8_lossy(&value).into());
                    }
                }
                if writeln!(out, "{}", serde_json::Value::Object(o)).is_err() {
                    break; // a closed pipe (`| head`): nothing more to say
                }
            }
            let _ = out.flush();
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn publish(args: PublishArgs) -> Result<ExitCode, String> {
    let nats = connect(&args.server)?;
    let input = BufReader::with_capacity(1 << 16, open_input(&args.input)?);
    let js = nats.jetstream().clone();
    let client = nats.client().clone();
    let started = Instant::now();
    let subject = args.subject.clone();
    let (sent, core) = nats.block_on(async move {
        let mut pending = VecDeque::new();
        let mut sent = 0u64;
        let mut core = false;
        for line in input.lines() {
            let line = line.map_err(|e| format!("cannot read the input: {e}"))?;
            if line.trim().is_empty() {
                continue;
            }
            if core {
                client.publish(subject.clone(), line.into()).await.map_err(|e| e.to_string())?;
            } else {
                let ack = js
                    .publish(subject.clone(), line.clone().into())
                    .await
                    .map_err(|e| format!("cannot publish: {e}"))?;
                if sent == 0 {
                    // The first publication tells whether a stream captures the subject.
                    match ack.await {
                        Ok(_) => {}
                        Err(e)
                            if e.kind()
                                == async_nats::jetstream::context::PublishErrorKind::StreamNotFound =>
                        {
                            eprintln!(
                                "note: no stream captures {subject}: publishing with core NATS \
                                 (at-most-once)"
                            );
                            core = true;
                            client
                                .publish(subject.clone(), line.into())
                                .await
                                .map_err(|e| e.to_string())?;
                        }
                        Err(e) => return Err(format!("publication 1 failed: {e}")),
                    }
                } else {
                    pending.push_back(ack);
                    if pending.len() >= 512 {
                        if let Some(a) = pending.pop_front() {
                            a.await.map_err(|e| format!("a publication failed: {e}"))?;
                        }
                    }
                }
            }
            sent += 1;
        }
        for a in pending {
            a.await.map_err(|e| format!("a publication failed: {e}"))?;
        }
        client.flush().await.map_err(|e| e.to_string())?;
        Ok::<_, String>((sent, core))
    })?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "published {sent} messages to {} ({}) in {secs:.2} s, {:.0} messages/s",
        args.subject,
        if core { "core NATS" } else { "JetStream, each acknowledged" },
        sent as f64 / secs.max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
}

fn secs(s: f64, what: &str) -> Result<Duration, String> {
    Duration::try_from_secs_f64(s).map_err(|_| format!("--{what}: not a duration in seconds: {s}"))
}

fn run_instance(a: RunArgs) -> Result<ExitCode, String> {
    let ack_wait = secs(a.ack_wait, "ack-wait")?;
    let window = secs(a.duplicate_window, "duplicate-window")?;
    let log_every = secs(a.log_every, "log-every")?;
    let dead_letter =
        a.dead_letter.clone().unwrap_or_else(|| format!("streamtrack.dead.{}", a.stream));
    let rules_errors = a
        .rules_errors
        .clone()
        .unwrap_or_else(|| format!("streamtrack.rules.{}.errors", a.rules_bucket));
    let abort = Arc::new(AtomicBool::new(false));
    let signal = watch_signals(abort.clone()).map_err(|e| format!("cannot watch signals: {e}"))?;
    let nats = connect(&a.server)?;
    let e = |e: streamtrack_nats::NatsError| e.to_string();
    nats.ensure_delivery_stream(&a.deliver_prefix, window).map_err(e)?;
    let store = nats.ensure_bucket(&a.rules_bucket).map_err(e)?;
    let registry = Registry::new();
    let names = RuleNames::default();
    let watcher = RulesWatcher::catch_up(
        &nats,
        store,
        registry.clone(),
        names.clone(),
        &rules_errors,
        Duration::from_secs(30),
    )
    .map_err(e)?;
    for ev in watcher.events() {
        log_rule_event(ev);
    }
    let (source, source_counters): (Box<dyn Source>, Arc<SourceCounters>) = if a.plain {
        let s = SubjectSource::subscribe(&nats, &a.subject, Some(&a.consumer), &dead_letter)
            .map_err(e)?;
        let c = s.counters();
        (Box::new(s), c)
    } else {
        nats.ensure_stream(&a.stream, &a.subject).map_err(e)?;
        let settings =
            ConsumerSettings::default().ack_wait(ack_wait).max_ack_pending(a.max_ack_pending);
        let consumer = nats.ensure_consumer(&a.stream, &a.consumer, &settings).map_err(e)?;
        let s = JetStreamSource::start(&nats, consumer, &dead_letter, a.batch);
        let c = s.counters();
        (Box::new(s), c)
    };
    eprintln!(
        "nats run: {} {} ({}), consumer {}, rules bucket {} at revision {} ({} subscribers), \
         deliveries to {}.<subscriber> (stream {}), dead letters to {dead_letter}, rule errors to {rules_errors}",
        if a.plain { "subject" } else { "stream" },
        a.stream,
        a.subject,
        a.consumer,
        a.rules_bucket,
        watcher.revision(),
        watcher.subscribers().len(),
        a.deliver_prefix,
        delivery_stream_name(&a.deliver_prefix),
    );
    let sink_counters = Arc::new(SinkCounters::default());
    let make_sink = {
        let (nats, prefix, names, counters, abort) = (
            nats.clone(),
            a.deliver_prefix.clone(),
            names.clone(),
            sink_counters.clone(),
            abort.clone(),
        );
        move |sub: &str| {
            JetStreamSink::new(&nats, &prefix, sub, names.clone(), counters.clone(), abort.clone())
        }
    };
    let logged = AtomicU32::new(0);
    let mut builder =
        Engine::builder(registry).matcher_threads(a.threads.max(1)).on_event(move |ev| match ev {
            // The first 10 source problems are shown, then only counted (`counts:` lines).
            EngineEvent::Source(e) if logged.fetch_add(1, Ordering::Relaxed) < 10 => {
                eprintln!("source: {e}")
            }
            EngineEvent::SinkFailed { subscriber, error } => {
                eprintln!("error: the deliveries to {subscriber:?} failed: {error}")
            }
            _ => {}
        });
    for sub in watcher.subscribers() {
        builder = builder.attach(&sub, make_sink(&sub));
    }
    let engine = builder.start(source).map_err(|e| format!("cannot start the engine: {e}"))?;
    let slot: Arc<Mutex<Option<Engine>>> = Arc::new(Mutex::new(Some(engine)));
    let follower = {
        let slot = slot.clone();
        watcher.follow(
            // After shutdown began there is no engine: the rule is not applied here.
            move |sub| match slot.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
                Some(engine) => match engine.attach(sub, make_sink(sub)) {
                    Ok(()) => true,
                    Err(e) => {
                        eprintln!("error: cannot attach subscriber {sub:?}: {e}");
                        false
                    }
                },
                None => false,
            },
            log_rule_event,
        )
    };
    let counts = |engine: Option<&Engine>| {
        let st = engine.map(|e| e.stats());
        let o = Ordering::Relaxed;
        format!(
            "counts: received {}, malformed {}, redelivered {}, matched {}, delivered {}, acked {}, \
             published {}, duplicates dropped by the server {}, publish retries {}, pull errors {}; \
             rules revision {} ({} rules, {} rejected)",
            source_counters.received.load(o),
            source_counters.malformed.load(o),
            source_counters.redelivered.load(o),
            st.as_ref().map_or(0, |s| s.matched),
            st.as_ref().map_or(0, |s| s.delivered),
            source_counters.acked.load(o),
            sink_counters.published.load(o),
            sink_counters.duplicates.load(o),
            sink_counters.retries.load(o),
            source_counters.errors.load(o),
            follower.revision(),
            follower.rules(),
            follower.rejected(),
        )
    };
    let mut last_log = Instant::now();
    let mut last_line = String::new();
    let stopped_by_itself = loop {
        std::thread::sleep(Duration::from_millis(100));
        if signal.load(Ordering::SeqCst) != 0 {
            break false;
        }
        let guard = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if !guard.as_ref().is_some_and(Engine::is_running) {
            break true;
        }
        if !log_every.is_zero() && last_log.elapsed() >= log_every {
            let line = counts(guard.as_ref());
            if line != last_line {
                eprintln!("{line}");
                last_line = line;
            }
            last_log = Instant::now();
        }
    };
    let engine = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
    let Some(engine) = engine else { return Err("the engine vanished".into()) };
    let sig = signal.load(Ordering::SeqCst);
    if sig != 0 {
        eprintln!("nats run: signal {sig}: stopping; delivering and acknowledging what was read");
    }
    let finished = engine.shutdown();
    let _ = nats.flush(Duration::from_secs(5));
    let o = Ordering::Relaxed;
    eprintln!(
        "nats run: done ({:?}): received {}, malformed {}, redelivered {}, matched {}, delivered {}, \
         acked {}, published {}, duplicates dropped by the server {}; rules revision {}",
        finished.reason,
        source_counters.received.load(o),
        source_counters.malformed.load(o),
        source_counters.redelivered.load(o),
        finished.stats.matched,
        finished.stats.delivered,
        source_counters.acked.load(o),
        sink_counters.published.load(o),
        sink_counters.duplicates.load(o),
        follower.revision(),
    );
    Ok(if stopped_by_itself { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn log_rule_event(ev: &RulesEvent) {
    match ev {
        RulesEvent::Applied { revision, key, deleted } => {
            let what = if *deleted { "removed" } else { "applied" };
            eprintln!("rules: revision {revision}: {what} {key:?}");
        }
        RulesEvent::Rejected { revision, key, reason } => {
            eprintln!("rules: revision {revision}: rejected {key:?} (the previous version stays): {reason}");
        }
        RulesEvent::WatchError(e) => eprintln!("rules: watch error (retrying): {e}"),
        _ => {}
    }
}

/// The signals received: the first one's number, plus 1<<16 for each later one (a second
/// signal makes publications that are being retried give up).
#[cfg(unix)]
fn watch_signals(abort: Arc<AtomicBool>) -> io::Result<Arc<AtomicU32>> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let seen = Arc::new(AtomicU32::new(0));
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    let s = seen.clone();
    std::thread::Builder::new().name("nats-signals".into()).spawn(move || {
        for sig in signals.forever() {
            if s.compare_exchange(0, sig as u32, Ordering::SeqCst, Ordering::SeqCst).is_err() {
                s.fetch_add(1 << 16, Ordering::SeqCst);
                abort.store(true, Ordering::Relaxed);
                eprintln!("nats run: second signal: giving up on retried publications");
            }
        }
    })?;
    Ok(seen)
}

#[cfg(not(unix))]
fn watch_signals(_abort: Arc<AtomicBool>) -> io::Result<Arc<AtomicU32>> {
    Ok(Arc::new(AtomicU32::new(0)))
}
