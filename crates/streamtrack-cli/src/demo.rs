//! `streamtrack demo`: the streaming engine on a built-in firehose, with live figures.
//!
//! A synthetic firehose (the workload generator's tweet-like messages, replayed from a pool
//! with fresh ids) runs against a few thousand generated subscriptions plus a handful of
//! readable showcase rules. Rules are added and removed through the registry while the
//! engine runs, and every second a line shows messages/s, matches/s and what each showcase
//! rule matched in that second. Output is plain text, one line per event, so it reads the
//! same in a terminal, a pipe or a CI log.

use crate::format::group;
use clap::Args;
use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use streamtrack::engine::{CallbackSink, Delivery, Engine, SinkError};
use streamtrack::registry::{NewRule, Registry, RuleId};
use streamtrack::{Message, Rule};
use streamtrack_workload::{RuleSetConfig, WorkloadConfig};

#[derive(Args)]
pub struct DemoArgs {
    /// How long to run, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Generated subscriptions (rules of the standard workload mix).
    #[arg(long, default_value_t = 5_000)]
    subscriptions: usize,
    /// Subscribers the generated subscriptions are spread over.
    #[arg(long, default_value_t = 500)]
    subscribers: usize,
    /// Matcher threads (default: the number of cores).
    #[arg(long)]
    threads: Option<usize>,
}

/// Rules on words the generator emits often, so that each one visibly matches.
const SHOWCASE: [&str; 5] =
    ["tea", "\"prea frea\"", "#slea OR #hea", "from:bleat zea", "sou stou -frea"];
/// Added while the demo runs.
const ADDED: [&str; 2] = ["\"frea spea\"", "@noom8 OR from:noom8"];
const SHOWCASE_SUBSCRIBER: &str = "showcase";

/// Counts of the showcase subscriber's matches, per rule.
type Counts = Arc<Mutex<HashMap<RuleId, u64>>>;

/// A showcase rule on screen: its column number, text and id while registered.
struct Shown {
    text: &'static str,
    id: Option<RuleId>,
}

pub fn run(args: DemoArgs) -> ExitCode {
    let seconds = args.seconds.max(1);
    let registry = Registry::new();
    // The background subscriptions: the standard rule mix over many subscribers.
    let mut generated = RuleSetConfig::default().rules(args.subscriptions + 10 * 100 * 20);
    let churn_pool = generated.split_off(args.subscriptions.min(generated.len()));
    let subscribers = args.subscribers.max(1);
    let ids = registry.subscribe_all(generated.iter().enumerate().filter_map(|(i, g)| {
        Some(NewRule {
            subscriber: format!("user-{}", i % subscribers),
            rule: g.parse().ok()?,
            tag: None,
        })
    }));
    let mut background: Vec<RuleId> = ids.into_iter().filter_map(Result::ok).collect();
    let mut shown: Vec<Shown> = Vec::new();
    for text in SHOWCASE {
        shown.push(show(&registry, text));
    }

    // A firehose replayed from a pool of generated messages, with fresh ids.
    let pool: Arc<Vec<Message>> =
        Arc::new(WorkloadConfig::default().seed(7).count(50_000).messages());
    let firehose = {
        let pool = pool.clone();
        (0u64..).map(move |i| {
            let mut m = pool[(i % pool.len() as u64) as usize].clone();
            m.id = i.to_string();
            m
        })
    };

    let counts: Counts = Arc::new(Mutex::new(HashMap::new()));
    let mut builder = Engine::builder(registry.clone());
    if let Some(t) = args.threads {
        builder = builder.matcher_threads(t);
    }
    for i in 0..subscribers {
        builder = builder.attach(&format!("user-{i}"), CallbackSink::new(|_d| Ok(())));
    }
    let c = counts.clone();
    builder = builder.attach(
        SHOWCASE_SUBSCRIBER,
        CallbackSink::new(move |d: Delivery| -> Result<(), SinkError> {
            if let Delivery::Match { matching_rules, .. } = &d {
                let mut c = c.lock().unwrap_or_else(PoisonError::into_inner);
                for r in matching_rules {
                    *c.entry(r.id).or_default() += 1;
                }
            }
            Ok(())
        }),
    );
    let threads =
        args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    println!(
        "streamtrack demo: a synthetic firehose for {seconds} s against {} subscriptions \
         of {} subscribers,",
        group(background.len() as u64),
        group(subscribers as u64)
    );
    println!(
        "plus the showcase rules below; {threads} matcher threads. Rules are added and \
         removed while it runs."
    );
    println!();
    for (i, s) in shown.iter().enumerate() {
        println!("  [{}] {}", i + 1, s.text);
    }
    println!();
    print_header(shown.len() + ADDED.len());

    let engine = match builder.start(streamtrack::engine::IterSource::new(firehose)) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let start = Instant::now();
    let (mut last_msgs, mut last_matches) = (0u64, 0u64);
    let mut last_counts: HashMap<RuleId, u64> = HashMap::new();
    let mut churned = 0usize;
    let add_at: Vec<u64> = [0.3, 0.5].iter().map(|f| (seconds as f64 * f).ceil() as u64).collect();
    let remove_at = (seconds as f64 * 0.7).ceil() as u64;
    for second in 1..=seconds {
        let due = start + Duration::from_secs(second);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let stats = engine.stats();
        let msgs = stats.processed - last_msgs;
        let matches = stats.delivered - last_matches;
        (last_msgs, last_matches) = (stats.processed, stats.delivered);
        let now_counts = counts.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let cells: Vec<String> = shown
            .iter()
            .map(|s| match s.id {
                Some(id) => {
                    let now = now_counts.get(&id).copied().unwrap_or(0);
                    group(now - last_counts.get(&id).copied().unwrap_or(0))
                }
                None => "-".to_string(),
            })
            .collect();
        last_counts = now_counts;
        println!(
            "{:>5}s {:>11} {:>11} {:>8} |{}",
            second,
            group(msgs),
            group(matches),
            group(registry.len() as u64),
            cells.iter().map(|c| format!("{c:>8}")).collect::<String>()
        );
        // Live updates: the showcase changes, and the background subscriptions churn.
        if let Some(k) = add_at.iter().position(|&s| s == second) {
            if second < seconds {
                shown.push(show(&registry, ADDED[k]));
                println!("        + added [{}] {}", shown.len(), ADDED[k]);
            }
        }
        if second == remove_at && second < seconds {
            if let Some(id) = shown[0].id.take() {
                let _ = registry.unsubscribe(id);
                println!("        - removed [1] {}", shown[0].text);
            }
        }
        for _ in 0..100 {
            if background.is_empty() || churned >= churn_pool.len() {
                break;
            }
            let old = background.swap_remove((churned * 7919) % background.len());
            let _ = registry.unsubscribe(old);
            let g = &churn_pool[churned];
            churned += 1;
            if let Ok(rule) = g.parse() {
                let sub = format!("user-{}", churned % subscribers);
                if let Ok(id) = registry.subscribe(&sub, rule, None) {
                    background.push(id);
                }
            }
        }
    }
    let finished = engine.shutdown();
    let s = &finished.stats;
    let secs = start.elapsed().as_secs_f64();
    println!();
    println!(
        "done: {} messages in {secs:.1} s = {} msgs/s; {} of them matched at least one rule;",
        group(s.processed),
        group((s.processed as f64 / secs) as u64),
        group(s.matched),
    );
    println!(
        "      {} deliveries to {} subscribers, {} dropped; {} rules replaced while running.",
        group(s.delivered),
        group(subscribers as u64 + 1),
        group(s.dropped),
        group(churned as u64),
    );
    ExitCode::SUCCESS
}

/// Subscribes a built-in rule for the showcase subscriber.
fn show(registry: &Registry, text: &'static str) -> Shown {
    let id = match Rule::parse(text) {
        Ok(rule) => registry.subscribe(SHOWCASE_SUBSCRIBER, rule, None).ok(),
        Err(e) => {
            eprintln!("warning: built-in rule {text:?}: {e}");
            None
        }
    };
    Shown { text, id }
}

fn print_header(columns: usize) {
    let cols: String = (1..=columns).map(|i| format!("{:>8}", format!("[{i}]"))).collect();
    println!("{:>6} {:>11} {:>11} {:>8} |{cols}", "time", "msgs/s", "matches/s", "rules");
}
