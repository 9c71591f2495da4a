//! `streamtrack bench`: benchmark tables measured in one run, against the baselines a user
//! would otherwise reach for (the `aho-corasick` crate, the reference matcher).

use crate::measure::{best_of, rss_bytes};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;
use streamtrack::matcher::{Matcher, Scratch};
use streamtrack::read;
use streamtrack::reference::ReferenceMatcher;
use streamtrack::rule::{Node, Rule, Term};
use streamtrack::Message;
use streamtrack_workload::{self as workload, RuleSetConfig, WorkloadConfig};

#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: BenchWhat,
}

#[derive(Subcommand)]
enum BenchWhat {
    /// Matching throughput, compile time and memory for several rule-set sizes.
    Match(MatchBench),
    /// Live updates: adds+removes per second, visibility delay, matching under churn, memory.
    Churn(crate::churn_bench::ChurnBench),
    /// Hash flooding: 100k terms crafted to collide under a known hash key.
    Flood(crate::flood_bench::FloodBench),
    /// The streaming engine end to end: throughput by matcher threads, latency, fan-out.
    Engine(crate::engine_bench::EngineBench),
    /// Analytics: sentiment throughput and accuracy, burst detection, bytes per active rule.
    Analytics(crate::analytics_bench::AnalyticsBench),
}

#[derive(Args)]
struct MatchBench {
    /// Rule-set sizes, e.g. `1k,10k,100k,1m` (prefixes of one generated or given rule set).
    #[arg(long, default_value = "1k,10k,100k,1m")]
    sizes: String,
    /// Rules to use instead of generated ones (rules JSONL, or one rule per line).
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Messages to use instead of generated ones (JSON Lines, or one plain-text message per line).
    #[arg(long)]
    messages: Option<PathBuf>,
    /// Number of generated messages.
    #[arg(long, default_value_t = 200_000)]
    count: usize,
    /// Timed passes over the messages per measurement (the best is reported).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Skip the aho-corasick baseline above this many rules (its build takes ~15 s at 1M).
    #[arg(long, default_value_t = 1_000_000)]
    aho_corasick_max: usize,
    /// Size of the long repetitive messages of the last table (`1m`: 1,000,000 bytes; `0`
    /// skips it). Each is also timed at 1/16 of this size: time per byte must not grow.
    /// Default `1m` on the generated workload, `0` when `--rules` or `--messages` is given
    /// (a given corpus is a workload of its own: its rows are the last lines, for scripts
    /// such as `side_by_side.sh` that read the last line).
    #[arg(long)]
    long_bytes: Option<String>,
    /// Print one JSON object per size instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: BenchArgs) -> ExitCode {
    match args.what {
        BenchWhat::Match(m) => bench_match(m),
        BenchWhat::Churn(c) => crate::churn_bench::run(c),
        BenchWhat::Flood(f) => crate::flood_bench::run(f),
        BenchWhat::Engine(e) => crate::engine_bench::run(e),
        BenchWhat::Analytics(a) => crate::analytics_bench::run(a),
    }
}

/// The distinct literal terms of the rules, as a user feeding `aho-corasick` would list them:
/// keywords and phrases as written in normal form, entity and operator values.
fn distinct_terms(rules: &[Rule]) -> Vec<String> {
    let mut set = std::collections::HashSet::new();
    for r in rules {
        collect_terms(r.root(), &mut set);
    }
    let mut v: Vec<String> = set.into_iter().collect();
    v.sort();
    v
}

fn collect_terms(node: &Node, out: &mut std::collections::HashSet<String>) {
    node.visit_terms(&mut |t, _| {
        let s = match t {
            Term::Keyword(w) | Term::Url(w) | Term::Proximity { words: w, .. } => w.join(" "),
            Term::Phrase(p) | Term::Token(p) | Term::Contains(p) => p.clone(),
            Term::Hashtag(v) => format!("#{v}"),
            Term::Mention(v) => format!("@{v}"),
            Term::Cashtag(v) => format!("${v}"),
            _ => return,
        };
        if !s.is_empty() {
            out.insert(s);
        }
    });
}

#[derive(Default)]
struct Row {
    rules: usize,
    distinct_terms: usize,
    msgs_per_sec: f64,
    mb_per_sec: f64,
    non_ascii_msgs_per_sec: f64,
    ascii_msgs_per_sec: f64,
    compile_secs: f64,
    parse_secs: f64,
    bytes_per_rule: f64,
    rss_bytes_per_rule: f64,
    matches_per_msg: f64,
    aho_corasick_msgs_per_sec: Option<f64>,
    aho_corasick_build_secs: Option<f64>,
    reference_msgs_per_sec: Option<f64>,
}

fn bench_match(args: MatchBench) -> ExitCode {
    let mut sizes: Vec<usize> = Vec::new();
    for s in args.sizes.split(',') {
        match crate::format::parse_count(s) {
            Some(n) if n > 0 => sizes.push(n),
            _ => {
                eprintln!("error: bad size {s:?} in --sizes (use e.g. 1k,10k,100k,1m)");
                return ExitCode::from(2);
            }
        }
    }
    let max = sizes.iter().copied().max().unwrap_or(0);
    let messages: Vec<Message> = match &args.messages {
        Some(p) => match read::read_messages(p) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("error: {}: {e}", p.display());
                return ExitCode::from(2);
            }
        },
        None => WorkloadConfig::default().count(args.count).messages(),
    };
    if messages.is_empty() {
        eprintln!("error: no messages");
        return ExitCode::from(2);
    }
    let t = Instant::now();
    let (_rule_texts, rules): (Vec<String>, Vec<Rule>) = match &args.rules {
        Some(p) => match read::read_rules(p) {
            Ok(entries) => entries.into_iter().map(|e| (e.value, e.rule)).unzip(),
            Err(e) => {
                eprintln!("error: {}: {e}", p.display());
                return ExitCode::from(2);
            }
        },
        None => RuleSetConfig::default()
            .rules(max)
            .into_iter()
            .map(|g| {
                let r = g.parse().expect("generated rules parse");
                (g.value, r)
            })
            .unzip(),
    };
    let parse_all = t.elapsed().as_secs_f64();
    let summary = workload::summary(&messages);
    let bytes: usize = messages.iter().map(|m| m.text.len()).sum();
    let non_ascii: Vec<Message> = messages.iter().filter(|m| !m.text.is_ascii()).cloned().collect();
    let ascii: Vec<Message> = messages.iter().filter(|m| m.text.is_ascii()).cloned().collect();
    if !args.json {
        println!(
            "streamtrack bench match: {} messages ({:.0} bytes mean, {:.1}% non-ASCII), {} rules available (parsed in {:.2} s), best of {} rounds, one thread",
            summary.messages,
            summary.mean_bytes,
            summary.non_ascii * 100.0,
            rules.len(),
            parse_all,
            args.rounds
        );
        println!();
        println!(
            "| rules | msgs/s | MB/s | non-ASCII msgs/s | compile s | bytes/rule (heap) | bytes/rule (RSS) | aho-corasick msgs/s | vs aho-corasick | reference msgs/s | matches/msg |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    }
    for &n in &sizes {
        let n = n.min(rules.len());
        let set = &rules[..n];
        let mut row = Row {
            rules: n,
            parse_secs: parse_all * n as f64 / rules.len() as f64,
            ..Row::default()
        };
        let rss0 = rss_bytes();
        let t = Instant::now();
        let matcher = Matcher::builder().hash_seed(0x1234, 0x5678).build(set);
        row.compile_secs = t.elapsed().as_secs_f64();
        let rss1 = rss_bytes();
        row.bytes_per_rule = matcher.heap_bytes() as f64 / n as f64;
        row.rss_bytes_per_rule = rss1.saturating_sub(rss0) as f64 / n as f64;
        let mut scratch = Scratch::new();
        let mut matched = 0usize;
        let d = best_of(args.rounds, || {
            matched = 0;
            matcher.find_each(&messages, &mut scratch, |_, found| matched += found.len());
        });
        row.matches_per_msg = matched as f64 / messages.len() as f64;
        row.msgs_per_sec = messages.len() as f64 / d.as_secs_f64();
        row.mb_per_sec = bytes as f64 / d.as_secs_f64() / 1e6;
        if !non_ascii.is_empty() {
            let d = best_of(args.rounds, || {
                matcher.find_each(&non_ascii, &mut scratch, |_, found| {
                    std::hint::black_box(found.len());
                });
            });
            row.non_ascii_msgs_per_sec = non_ascii.len() as f64 / d.as_secs_f64();
        }
        if !ascii.is_empty() {
            let d = best_of(args.rounds, || {
                matcher.find_each(&ascii, &mut scratch, |_, found| {
                    std::hint::black_box(found.len());
                });
            });
            row.ascii_msgs_per_sec = ascii.len() as f64 / d.as_secs_f64();
        }
        drop(matcher);
        let terms = distinct_terms(set);
        row.distinct_terms = terms.len();
        if n <= args.aho_corasick_max {
            let t = Instant::now();
            let ac = aho_corasick::AhoCorasick::builder()
                .ascii_case_insensitive(true)
                .match_kind(aho_corasick::MatchKind::Standard)
                .build(&terms)
                .expect("aho-corasick builds");
            row.aho_corasick_build_secs = Some(t.elapsed().as_secs_f64());
            let d = best_of(args.rounds.min(2), || {
                for m in &messages {
                    std::hint::black_box(ac.find_overlapping_iter(m.text.as_bytes()).count());
                }
            });
            row.aho_corasick_msgs_per_sec = Some(messages.len() as f64 / d.as_secs_f64());
        }
        if n <= 10_000 {
            let reference = ReferenceMatcher::new(set.to_vec());
            let sample = &messages[..messages.len().min(if n <= 1_000 { 20_000 } else { 2_000 })];
            let d = best_of(1, || {
                for m in sample {
                    std::hint::black_box(reference.matching(m).len());
                }
            });
            row.reference_msgs_per_sec = Some(sample.len() as f64 / d.as_secs_f64());
        }
        print_row(&row, args.json);
    }
    if !args.json {
        println!();
        println!("msgs/s: all messages through Matcher::find (tokenise, look up, verify, full rule semantics).");
        println!("aho-corasick: the aho-corasick crate (ASCII-caseless, overlapping) scanning the same messages for the same distinct terms, no rule logic.");
    }
    let given = args.rules.is_some() || args.messages.is_some();
    let long_default = if given { "0" } else { "1m" };
    let long_bytes = match args.long_bytes.as_deref().unwrap_or(long_default).trim() {
        "0" => 0,
        s => match crate::format::parse_count(s) {
            Some(n) => n,
            None => {
                eprintln!("error: bad size {s:?} in --long-bytes (use e.g. 1m, or 0 to skip)");
                return ExitCode::from(2);
            }
        },
    };
    if long_bytes > 0 {
        let set = &rules[..sizes.iter().copied().min().unwrap_or(0).min(rules.len())];
        bench_long_messages(set, long_bytes, args.rounds, args.json);
    }
    ExitCode::SUCCESS
}

/// Rules of every shape keyed on the words of the long messages (AND, negation, phrase,
/// proximity, OR, hashtag, `contains:`, `url:`, a no-space word), so that every repetition
/// of a word wakes them and verification runs over the whole message.
const LONG_MESSAGE_RULES: &[&str] = &[
    "spam",
    "spam -ham",
    "spam eggs",
    "\"spam eggs\"",
    "\"spam eggs\"~3",
    "(spam -ham) OR (eggs -bacon)",
    "#spam -ham",
    "contains:pam -ham",
    "url:example spam",
    "lorem -spam",
    "ipsum dolor",
    "\"dolor sit\" -spam",
    "\"lorem elit\"~3",
    "contains:olor -spam",
    "中文 -ham",
];

const LOREM: &str = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod \
    tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud \
    exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. ";

/// Matching time for long messages that repeat one word or one paragraph (issue 21: a
/// repeated word once made matching quadratic in the message length): `bytes`-byte messages
/// against `set` plus [`LONG_MESSAGE_RULES`], and the same at 1/16 of the size, per byte.
fn bench_long_messages(set: &[Rule], bytes: usize, rounds: usize, json: bool) {
    let mut rules = set.to_vec();
    rules.extend(LONG_MESSAGE_RULES.iter().map(|r| Rule::parse(r).expect("shape rules parse")));
    let matcher = Matcher::builder().hash_seed(0x1234, 0x5678).build(&rules);
    let mut scratch = Scratch::new();
    if !json {
        println!();
        println!(
            "Long repetitive messages: {} rules ({} generated + {} of every shape on the messages' words), best of {} rounds",
            rules.len(),
            set.len(),
            LONG_MESSAGE_RULES.len(),
            rounds
        );
        println!();
        println!("| message | bytes | ms/msg | MB/s | matches | time per byte vs 1/16 size |");
        println!("|---|---:|---:|---:|---:|---:|");
    }
    for (name, unit) in [("\"spam \" repeated", "spam "), ("lorem ipsum repeated", LOREM)] {
        let text = |n: usize| unit.repeat(n.div_ceil(unit.len()));
        let large = Message::new("long", text(bytes));
        let small = Message::new("short", text(bytes / 16));
        let mut matches = 0;
        let mut time = |m: &Message| {
            best_of(rounds, || matches = matcher.find(m, &mut scratch).len()).as_secs_f64()
        };
        let t_small = time(&small) / small.text.len() as f64;
        let t = time(&large);
        let per_byte = (t / large.text.len() as f64) / t_small;
        let mb_per_sec = large.text.len() as f64 / t / 1e6;
        if json {
            let o = serde_json::json!({
                "long_message": name,
                "bytes": large.text.len(),
                "rules": rules.len(),
                "ms_per_msg": (t * 1e5).round() / 100.0,
                "mb_per_sec": (mb_per_sec * 100.0).round() / 100.0,
                "matches": matches,
                "time_per_byte_vs_sixteenth": (per_byte * 100.0).round() / 100.0,
            });
            println!("{o}");
        } else {
            println!(
                "| {name} | {} | {:.1} | {mb_per_sec:.0} | {matches} | {per_byte:.2}x |",
                large.text.len(),
                t * 1e3
            );
        }
    }
}

fn fmt_opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map_or_else(|| "-".to_string(), f)
}

fn print_row(r: &Row, json: bool) {
    if json {
        let mut o = serde_json::json!({
            "rules": r.rules,
            "distinct_terms": r.distinct_terms,
            "msgs_per_sec": r.msgs_per_sec.round(),
            "mb_per_sec": (r.mb_per_sec * 100.0).round() / 100.0,
            "non_ascii_msgs_per_sec": r.non_ascii_msgs_per_sec.round(),
            "ascii_msgs_per_sec": r.ascii_msgs_per_sec.round(),
            "compile_secs": r.compile_secs,
            "parse_secs": r.parse_secs,
            "bytes_per_rule": r.bytes_per_rule.round(),
            "rss_bytes_per_rule": r.rss_bytes_per_rule.round(),
            "matches_per_msg": r.matches_per_msg,
            "aho_corasick_msgs_per_sec": r.aho_corasick_msgs_per_sec.map(f64::round),
            "aho_corasick_build_secs": r.aho_corasick_build_secs,
        });
        if let Some(v) = r.reference_msgs_per_sec {
            o["reference_msgs_per_sec"] = v.round().into();
        }
        println!("{o}");
        return;
    }
    let m = |v: f64| format!("{:.2} M", v / 1e6);
    println!(
        "| {} | {} | {:.0} | {} | {:.3} | {:.0} | {:.0} | {} | {} | {} | {:.2} |",
        r.rules,
        m(r.msgs_per_sec),
        r.mb_per_sec,
        m(r.non_ascii_msgs_per_sec),
        r.compile_secs,
        r.bytes_per_rule,
        r.rss_bytes_per_rule,
        fmt_opt(r.aho_corasick_msgs_per_sec, m),
        fmt_opt(r.aho_corasick_msgs_per_sec, |a| format!("{:.1}x", r.msgs_per_sec / a)),
        fmt_opt(r.reference_msgs_per_sec, |v| format!("{:.0}", v)),
        r.matches_per_msg,
    );
}
