//! `streamtrack bench engine`: the streaming engine end to end (source -> match -> sinks),
//! measured in one run: throughput with 1 and 2 matcher threads, source-to-sink latency at a
//! fixed offered rate, and the time to fan one message out to 10,000 subscribers.

use crate::format::parse_count;
use clap::Args;
use crossbeam_channel::Sender;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use streamtrack::analytics::AnalyticsConfig;
use streamtrack::engine::{
    CallbackSink, ChannelSource, Delivery, Engine, EngineBuilder, FullPolicy, IterSource, Source,
    SourceError, SourceStatus, SubscriberConfig, DEFAULT_MEMORY_BUDGET,
};
use streamtrack::registry::{NewRule, Registry};
use streamtrack::{read, Message, Rule};
use streamtrack_workload::{process_cpu_secs, RuleSetConfig, WorkloadConfig};

#[derive(Args)]
pub struct EngineBench {
    /// Rules for the throughput and latency runs (e.g. `100k`): the first of the generated
    /// standard mix, or of `--rules-file`.
    #[arg(long, default_value = "100k")]
    rules: String,
    /// Rules to use instead of generated ones (rules JSONL, or one rule per line), e.g. the
    /// shared corpus's, whose sparse hits are what real rule sets see.
    #[arg(long)]
    rules_file: Option<PathBuf>,
    /// Messages to use instead of generated ones (JSON Lines, or one plain-text message per
    /// line); the first `--messages` of them (repeated if the file holds fewer).
    #[arg(long)]
    messages_file: Option<PathBuf>,
    /// Subscribers the rules are spread over.
    #[arg(long, default_value_t = 1_000)]
    subscribers: usize,
    /// Messages per throughput run.
    #[arg(long, default_value_t = 200_000)]
    messages: usize,
    /// Offered rate of the latency run, messages per second.
    #[arg(long, default_value_t = 100_000)]
    rate: u64,
    /// Seconds of the latency run.
    #[arg(long, default_value_t = 3.0)]
    latency_seconds: f64,
    /// Subscribers of the fan-out run.
    #[arg(long, default_value_t = 10_000)]
    fanout: usize,
    /// Dispatcher threads (default: the number of cores).
    #[arg(long)]
    dispatchers: Option<usize>,
    /// Matcher threads of the latency run.
    #[arg(long, default_value_t = 2)]
    latency_threads: usize,
    /// Full-queue policy of every subscriber: block, drop-newest, drop-oldest or disconnect
    /// (default: the library's, block).
    #[arg(long)]
    policy: Option<String>,
    /// Queue capacity of every subscriber (default: the library's, 1,024).
    #[arg(long)]
    capacity: Option<usize>,
    /// The engine's memory budget for queued deliveries, in bytes (`k`, `m`: thousands,
    /// millions), or `none` (default: the library's, 256 MiB).
    #[arg(long)]
    memory_budget: Option<String>,
    /// Print one JSON object instead of a report.
    #[arg(long)]
    json: bool,
    /// Measure only the analytics stage's cost: 2-thread throughput without and with
    /// `EngineBuilder::analytics` (sinks reading each delivery's reaction), alternated, 3
    /// rounds each, best of each and their ratio.
    #[arg(long)]
    analytics: bool,
}

/// The subscriber settings and memory budget a run uses.
#[derive(Clone)]
struct Settings {
    config: SubscriberConfig,
    budget: u64,
    dispatchers: Option<usize>,
    analytics: Option<AnalyticsConfig>,
}

fn settings(args: &EngineBench) -> Result<Settings, String> {
    let mut config = SubscriberConfig::new();
    if let Some(p) = &args.policy {
        config = config.policy(match p.as_str() {
            "block" => FullPolicy::Block,
            "drop-newest" => FullPolicy::DropNewest,
            "drop-oldest" => FullPolicy::DropOldest,
            "disconnect" => FullPolicy::Disconnect,
            other => return Err(format!("bad --policy {other:?}")),
        });
    }
    if let Some(n) = args.capacity {
        config = config.capacity(n);
    }
    let budget = match args.memory_budget.as_deref() {
        None => DEFAULT_MEMORY_BUDGET,
        Some("none") => u64::MAX,
        Some(b) => parse_count(b).ok_or_else(|| format!("bad --memory-budget {b:?}"))? as u64,
    };
    Ok(Settings { config, budget, dispatchers: args.dispatchers, analytics: None })
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// The first `n` rules (of the standard workload, or `given`), spread over `subscribers`
/// subscribers; and how many there are.
fn load_registry(n: usize, subscribers: usize, given: Option<Vec<Rule>>) -> (Registry, usize) {
    let registry = Registry::builder().hash_seed(0x1234, 0x5678).build();
    let rules: Vec<Rule> = match given {
        Some(mut rules) => {
            rules.truncate(n);
            rules
        }
        None => RuleSetConfig::default().rules(n).iter().filter_map(|g| g.parse().ok()).collect(),
    };
    let count = rules.len();
    registry.subscribe_all(rules.into_iter().enumerate().map(|(i, rule)| NewRule {
        subscriber: format!("s{}", i % subscribers.max(1)),
        rule,
        tag: None,
    }));
    registry.compact();
    (registry, count)
}

/// The messages of a run: the first `count` of `path` (repeated to `count` if it holds
/// fewer), or `count` generated ones.
fn load_messages(path: Option<&PathBuf>, count: usize) -> Result<Vec<Message>, String> {
    let Some(p) = path else {
        return Ok(WorkloadConfig::default().count(count).messages());
    };
    let read = read::read_messages(p).map_err(|e| format!("{}: {e}", p.display()))?;
    if read.is_empty() {
        return Err(format!("{}: no messages", p.display()));
    }
    Ok(read.iter().cycle().take(count).cloned().collect())
}

/// Takes deliveries (the engine counts them). Each sink keeps its own count, so that the
/// benchmark measures the engine, not contention on a counter of its own.
fn counting_sink(
) -> CallbackSink<impl FnMut(Delivery) -> Result<(), streamtrack::engine::SinkError> + Send> {
    let mut taken = 0u64;
    CallbackSink::new(move |d: Delivery| {
        taken += u64::from(d.is_match());
        std::hint::black_box(taken);
        std::hint::black_box(d.reaction());
        Ok(())
    })
}

/// An engine builder with the bench's settings.
fn engine(registry: Registry, settings: &Settings) -> EngineBuilder {
    let b = Engine::builder(registry)
        .subscriber_defaults(settings.config.clone())
        .memory_budget(settings.budget);
    let b = match &settings.analytics {
        Some(c) => b.analytics(c.clone()),
        None => b,
    };
    match settings.dispatchers {
        Some(n) => b.dispatcher_threads(n),
        None => b,
    }
}

/// What one end-to-end run measured.
struct Run {
    /// Messages per second from start to the last delivery.
    rate: f64,
    delivered: u64,
    dropped: u64,
    /// Messages the registry's small-set prefilter answered without matching.
    prefiltered: u64,
    /// CPU seconds of the run (all threads; not the copy of the input).
    cpu: Option<f64>,
}

/// One end-to-end run over `messages`.
fn throughput(
    registry: &Registry,
    messages: &[Message],
    threads: usize,
    subs: usize,
    settings: &Settings,
) -> Run {
    let mut builder = engine(registry.clone(), settings).matcher_threads(threads);
    for i in 0..subs {
        builder = builder.attach(&format!("s{i}"), counting_sink());
    }
    let input = messages.to_vec();
    let cpu0 = process_cpu_secs();
    let start = Instant::now();
    let finished = builder.start(IterSource::new(input)).expect("engine starts").join();
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu0.zip(process_cpu_secs()).map(|(a, b)| b - a);
    Run {
        rate: messages.len() as f64 / secs,
        delivered: finished.stats.delivered,
        dropped: finished.stats.dropped,
        prefiltered: finished.stats.prefiltered,
        cpu,
    }
}

/// Offers messages at a fixed rate; stamps each with the instant it is handed over.
struct Paced {
    messages: Vec<Message>,
    next: usize,
    rate: f64,
    start: Option<Instant>,
    base: Instant,
    stamps: Arc<Vec<AtomicU64>>,
}

impl Source for Paced {
    fn next_batch(
        &mut self,
        out: &mut Vec<Message>,
        max: usize,
    ) -> Result<SourceStatus, SourceError> {
        if self.next >= self.messages.len() {
            return Ok(SourceStatus::Ended);
        }
        let start = *self.start.get_or_insert_with(Instant::now);
        loop {
            let due = (start.elapsed().as_secs_f64() * self.rate) as usize + 1;
            if due > self.next {
                let end = due.min(self.next + max).min(self.messages.len());
                let now = self.base.elapsed().as_nanos() as u64;
                for i in self.next..end {
                    self.stamps[i].store(now, Ordering::Relaxed);
                    out.push(self.messages[i].clone());
                }
                self.next = end;
                return Ok(SourceStatus::Open);
            }
            let wait = (self.next as f64 + 1.0) / self.rate - start.elapsed().as_secs_f64();
            if wait > 0.0 {
                std::thread::sleep(Duration::from_secs_f64(wait));
            }
        }
    }

    fn wants_acks(&self) -> bool {
        false
    }
}

struct Latency {
    p50_us: f64,
    p99_us: f64,
    p999_us: f64,
    max_us: f64,
    samples: usize,
    achieved: f64,
}

fn latency(
    registry: &Registry,
    messages: &[Message],
    args: &EngineBench,
    subs: usize,
    settings: &Settings,
) -> Latency {
    let (rate, secs) = (args.rate, args.latency_seconds);
    let n = ((rate as f64 * secs) as usize).max(1);
    let mut input: Vec<Message> = Vec::with_capacity(n);
    for i in 0..n {
        let mut m = messages[i % messages.len()].clone();
        m.id = i.to_string();
        input.push(m);
    }
    let stamps: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let base = Instant::now();
    let capacity = n * 4;
    let samples: Arc<Vec<AtomicU64>> = Arc::new((0..capacity).map(|_| AtomicU64::new(0)).collect());
    let cursor = Arc::new(AtomicUsize::new(0));
    let mut builder = engine(registry.clone(), settings).matcher_threads(args.latency_threads);
    for i in 0..subs {
        let (stamps, samples, cursor) = (stamps.clone(), samples.clone(), cursor.clone());
        builder = builder.attach(
            &format!("s{i}"),
            CallbackSink::new(move |d: Delivery| {
                if let Some(m) = d.message() {
                    let now = base.elapsed().as_nanos() as u64;
                    if let Ok(i) = m.id.parse::<usize>() {
                        let sent = stamps[i].load(Ordering::Relaxed);
                        let k = cursor.fetch_add(1, Ordering::Relaxed);
                        if k < samples.len() {
                            samples[k].store(now.saturating_sub(sent), Ordering::Relaxed);
                        }
                    }
                }
                Ok(())
            }),
        );
    }
    let source = Paced { messages: input, next: 0, rate: rate as f64, start: None, base, stamps };
    let start = Instant::now();
    builder.start(source).expect("engine starts").join();
    let achieved = n as f64 / start.elapsed().as_secs_f64();
    let k = cursor.load(Ordering::Relaxed).min(capacity);
    let mut v: Vec<u64> = samples[..k].iter().map(|a| a.load(Ordering::Relaxed)).collect();
    v.sort_unstable();
    let us = |ns: u64| ns as f64 / 1_000.0;
    Latency {
        p50_us: us(percentile(&v, 0.50)),
        p99_us: us(percentile(&v, 0.99)),
        p999_us: us(percentile(&v, 0.999)),
        max_us: us(v.last().copied().unwrap_or(0)),
        samples: k,
        achieved,
    }
}

/// Stamps the instant each message is handed to the engine.
struct Stamped {
    inner: ChannelSource,
    at: Sender<Instant>,
}

impl Source for Stamped {
    fn next_batch(
        &mut self,
        out: &mut Vec<Message>,
        max: usize,
    ) -> Result<SourceStatus, SourceError> {
        let status = self.inner.next_batch(out, max)?;
        if !out.is_empty() {
            let _ = self.at.send(Instant::now());
        }
        Ok(status)
    }

    fn wants_acks(&self) -> bool {
        false
    }
}

/// Microseconds from handing one message over to its last of `subs` sinks taking it
/// (median and best of `rounds`).
fn fanout(subs: usize, rounds: usize, settings: &Settings) -> (f64, f64) {
    let registry = Registry::builder().hash_seed(0x1234, 0x5678).build();
    let rule = Rule::parse("fanout").expect("rule parses");
    registry.subscribe_all((0..subs).map(|i| NewRule {
        subscriber: format!("f{i}"),
        rule: rule.clone(),
        tag: None,
    }));
    registry.compact();
    let (tx, rx) = crossbeam_channel::bounded(1);
    let (at_tx, at_rx) = crossbeam_channel::unbounded();
    let (done_tx, done_rx) = crossbeam_channel::unbounded::<Instant>();
    // Receipts are counted in shards (one cache line each) so that the sinks do not all
    // contend on one counter; the sink completing the last shard reports the time. A shard
    // is 64 consecutive subscribers (modulo 64 shards): the subscribers a dispatcher serves
    // together, so that two dispatchers rarely share a counter.
    const SHARDS: usize = 64;
    let shard_of = |i: usize| (i / 64) % SHARDS;
    let mut shard_sizes = [0usize; SHARDS];
    (0..subs).for_each(|i| shard_sizes[shard_of(i)] += 1);
    let shards_used = shard_sizes.iter().filter(|&&n| n > 0).count();
    let shard_counts: Arc<Vec<AtomicUsize>> =
        Arc::new((0..SHARDS * 16).map(|_| AtomicUsize::new(0)).collect());
    let full_shards = Arc::new(AtomicUsize::new(0));
    let mut builder = engine(registry, settings);
    for i in 0..subs {
        let (counts, full, done) = (shard_counts.clone(), full_shards.clone(), done_tx.clone());
        let shard = shard_of(i);
        let shard_size = shard_sizes[shard];
        builder = builder.attach(
            &format!("f{i}"),
            CallbackSink::new(move |d: Delivery| {
                if d.is_match()
                    && counts[shard * 16].fetch_add(1, Ordering::AcqRel) + 1 == shard_size
                    && full.fetch_add(1, Ordering::AcqRel) + 1 == shards_used
                {
                    let _ = done.send(Instant::now());
                }
                Ok(())
            }),
        );
    }
    let engine =
        builder.start(Stamped { inner: ChannelSource::new(rx), at: at_tx }).expect("engine starts");
    let mut times = Vec::new();
    for round in 0..rounds + 2 {
        for c in shard_counts.iter() {
            c.store(0, Ordering::SeqCst);
        }
        full_shards.store(0, Ordering::SeqCst);
        let _ = tx.send(Message::new(round.to_string(), "a fanout message"));
        let (Ok(t0), Ok(t1)) = (at_rx.recv(), done_rx.recv()) else { break };
        if round >= 2 {
            times.push(t1.saturating_duration_since(t0).as_secs_f64() * 1e6);
        }
        // Let the dispatchers go idle between rounds, as between real messages.
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(tx);
    engine.join();
    times.sort_by(f64::total_cmp);
    let median = times.get(times.len() / 2).copied().unwrap_or(0.0);
    (median, times.first().copied().unwrap_or(0.0))
}

pub fn run(args: EngineBench) -> ExitCode {
    let Some(n_rules) = parse_count(&args.rules) else {
        eprintln!("error: bad --rules {:?} (use e.g. 100k)", args.rules);
        return ExitCode::from(2);
    };
    let settings = match settings(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let given = match &args.rules_file {
        Some(p) => match read::read_rules(p) {
            Ok(entries) => Some(entries.into_iter().map(|e| e.rule).collect()),
            Err(e) => {
                eprintln!("error: {}: {e}", p.display());
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let t = Instant::now();
    let (registry, n_rules) = load_registry(n_rules, args.subscribers.max(1), given);
    let subs = args.subscribers.clamp(1, n_rules.max(1));
    let setup = t.elapsed().as_secs_f64();
    let messages = match load_messages(args.messages_file.as_ref(), args.messages.max(1)) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if !args.json {
        println!(
            "streamtrack bench engine: {n_rules} rules over {subs} subscribers (loaded in {setup:.2} s), \
             {} messages, {cores} cores",
            messages.len()
        );
    }
    let workload = Workload {
        rules: n_rules,
        subscribers: subs,
        rules_file: args.rules_file.as_ref().map(|p| p.display().to_string()),
        messages_file: args.messages_file.as_ref().map(|p| p.display().to_string()),
    };
    if args.analytics {
        return analytics_cost(&registry, &messages, &settings, &workload, args.json);
    }
    // Two interleaved rounds per thread count; the best of each is reported.
    let mut one = Vec::new();
    let mut two = Vec::new();
    let (mut deliveries, mut dropped, mut prefiltered) = (0, 0, 0);
    for _ in 0..2 {
        let run = throughput(&registry, &messages, 1, subs, &settings);
        one.push(run.rate);
        (deliveries, dropped, prefiltered) = (run.delivered, run.dropped, run.prefiltered);
        two.push(throughput(&registry, &messages, 2, subs, &settings).rate);
    }
    let best = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let (one, two) = (best(&one), best(&two));
    let lat = latency(&registry, &messages, &args, subs, &settings);
    drop(registry);
    let (fan_median, fan_best) = fanout(args.fanout, 20, &settings);
    let policy = format!("{:?}", settings.config.policy);
    let budget = (settings.budget != u64::MAX).then_some(settings.budget);
    if args.json {
        let o = serde_json::json!({
            "rules": n_rules,
            "subscribers": subs,
            "rules_file": workload.rules_file,
            "messages_file": workload.messages_file,
            "messages": messages.len(),
            "cores": cores,
            "policy": policy,
            "capacity": settings.config.capacity,
            "memory_budget": budget,
            "deliveries_per_run": deliveries,
            "dropped_per_run": dropped,
            "prefiltered_per_run": prefiltered,
            "msgs_per_sec_1_thread": one.round(),
            "msgs_per_sec_2_threads": two.round(),
            "speedup_2_threads": (two / one * 100.0).round() / 100.0,
            "latency_offered_msgs_per_sec": args.rate,
            "latency_achieved_msgs_per_sec": lat.achieved.round(),
            "latency_samples": lat.samples,
            "latency_us_p50": (lat.p50_us * 10.0).round() / 10.0,
            "latency_us_p99": (lat.p99_us * 10.0).round() / 10.0,
            "latency_us_p999": (lat.p999_us * 10.0).round() / 10.0,
            "latency_us_max": lat.max_us.round(),
            "fanout_subscribers": args.fanout,
            "fanout_10k_us": fan_median.round(),
            "fanout_10k_us_best": fan_best.round(),
        });
        println!("{o}");
        return ExitCode::SUCCESS;
    }
    println!();
    println!("| measure | value |");
    println!("|---|---:|");
    println!("| end to end, 1 matcher thread | {:.0} msgs/s |", one);
    println!("| end to end, 2 matcher threads | {:.0} msgs/s |", two);
    println!("| speed-up, 2 threads / 1 | {:.2}x |", two / one);
    println!("| match deliveries per run (dropped) | {deliveries} ({dropped}) |");
    println!(
        "| messages the small-set prefilter answered, per run | {prefiltered} of {} |",
        messages.len()
    );
    println!(
        "| latency source -> sink at {} msgs/s offered ({:.0} achieved, {} deliveries) | p50 {:.1} µs, p99 {:.1} µs, p99.9 {:.1} µs, max {:.0} µs |",
        args.rate, lat.achieved, lat.samples, lat.p50_us, lat.p99_us, lat.p999_us, lat.max_us
    );
    println!(
        "| one message to {} subscribers, in to last sink | median {:.0} µs, best {:.0} µs |",
        args.fanout, fan_median, fan_best
    );
    println!();
    println!(
        "Throughput: from start to the last delivery, best of 2 interleaved runs each; \
         subscribers: {policy}, queues of {}, memory budget {}.",
        settings.config.capacity,
        budget.map_or("none".to_string(), |b| format!("{b} bytes"))
    );
    println!(
        "Latency: from the source handing a message over to a sink receiving it, every match \
         delivery, 2 matcher threads."
    );
    println!(
        "Fan-out: one message matching one rule of each subscriber, from hand-over to the last \
         sink; 20 rounds after 2 warm-up rounds."
    );
    ExitCode::SUCCESS
}

/// What a run matched: rules, subscribers, and the files they came from (if given).
struct Workload {
    rules: usize,
    subscribers: usize,
    rules_file: Option<String>,
    messages_file: Option<String>,
}

/// `--analytics`: throughput without and with the analytics stage, alternated, 3 rounds
/// each: 2 matcher threads (the target), the stage without reactions, and 1 matcher thread
/// (a core left to the stage).
fn analytics_cost(
    registry: &Registry,
    messages: &[Message],
    settings: &Settings,
    workload: &Workload,
    json: bool,
) -> ExitCode {
    let subs = workload.subscribers;
    let with = Settings { analytics: Some(AnalyticsConfig::default()), ..settings.clone() };
    let mut no_sentiment = AnalyticsConfig::default();
    no_sentiment.sentiment = false;
    let counts_only = Settings { analytics: Some(no_sentiment), ..settings.clone() };
    let runs: [(&str, usize, &Settings); 5] = [
        ("2 matcher threads, without analytics", 2, settings),
        ("2 matcher threads, with analytics", 2, &with),
        ("2 matcher threads, with analytics, no reactions", 2, &counts_only),
        ("1 matcher thread, without analytics", 1, settings),
        ("1 matcher thread, with analytics", 1, &with),
    ];
    let mut got = vec![Vec::new(); runs.len()];
    // CPU seconds of each run (all threads): on a shared machine, wall-clock throughput
    // swings with the other processes' load; the CPU a run costs much less.
    let mut cpu = vec![f64::MAX; runs.len()];
    for _ in 0..3 {
        for (k, (_, threads, s)) in runs.iter().enumerate() {
            let run = throughput(registry, messages, *threads, subs, s);
            got[k].push(run.rate);
            if let Some(c) = run.cpu {
                cpu[k] = cpu[k].min(c);
            }
        }
    }
    let cpu_ratio = |with: usize, without: usize| cpu[without] / cpu[with];
    let best = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
    let ratio2 = best(&got[1]) / best(&got[0]);
    let ratio2c = best(&got[2]) / best(&got[0]);
    let ratio1 = best(&got[4]) / best(&got[3]);
    if json {
        let o = serde_json::json!({
            "rules": workload.rules,
            "subscribers": subs,
            "rules_file": workload.rules_file,
            "messages_file": workload.messages_file,
            "messages": messages.len(),
            "runs": runs.iter().zip(&got).map(|((name, _, _), v)| serde_json::json!({
                "run": name, "msgs_per_sec": v.iter().map(|x| x.round()).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "ratio_2_threads": (ratio2 * 1000.0).round() / 1000.0,
            "ratio_2_threads_no_reactions": (ratio2c * 1000.0).round() / 1000.0,
            "ratio_1_thread": (ratio1 * 1000.0).round() / 1000.0,
            "cpu_secs": cpu.iter().map(|c| (c * 100.0).round() / 100.0).collect::<Vec<_>>(),
            "cpu_ratio_2_threads": (cpu_ratio(1, 0) * 1000.0).round() / 1000.0,
            "cpu_ratio_2_threads_no_reactions": (cpu_ratio(2, 0) * 1000.0).round() / 1000.0,
        });
        println!("{o}");
        return ExitCode::SUCCESS;
    }
    println!();
    println!("| run | round 1 | round 2 | round 3 | best | least CPU |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (((name, _, _), v), c) in runs.iter().zip(&got).zip(&cpu) {
        println!(
            "| {name} | {:.0} | {:.0} | {:.0} | {:.0} msgs/s | {c:.2} s |",
            v[0],
            v[1],
            v[2],
            best(v)
        );
    }
    println!();
    println!(
        "with / without analytics: 2 threads {:.1}% (no reactions {:.1}%), 1 thread {:.1}%",
        ratio2 * 100.0,
        ratio2c * 100.0,
        ratio1 * 100.0
    );
    println!(
        "CPU time without / with analytics (throughput on fully busy cores): 2 threads {:.1}% \
         (no reactions {:.1}%), 1 thread {:.1}%",
        cpu_ratio(1, 0) * 100.0,
        cpu_ratio(2, 0) * 100.0,
        cpu_ratio(4, 3) * 100.0
    );
    ExitCode::SUCCESS
}
