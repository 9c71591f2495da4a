//! Criterion benchmarks of the hot paths: tokenising, the compiled matcher at several rule-set
//! sizes (against the `aho-corasick` crate on the same terms), and the live registry.
//!
//! `cargo bench --bench matcher`; the `streamtrack bench` command prints the comparison tables.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use streamtrack::matcher::{Matcher, Scratch};
use streamtrack::normalize::{Tokens, UrlMode};
use streamtrack::registry::{self, NewRule, Registry};
use streamtrack::rule::{Rule, Term};
use streamtrack::Message;
use streamtrack_workload::{RuleSetConfig, WorkloadConfig};

fn messages() -> Vec<Message> {
    WorkloadConfig::default().count(2_000).messages()
}

fn rules(n: usize) -> Vec<Rule> {
    RuleSetConfig::default().rules(n).iter().map(|g| g.parse().unwrap()).collect()
}

fn tokenize(c: &mut Criterion) {
    let msgs = messages();
    let bytes: usize = msgs.iter().map(|m| m.text.len()).sum();
    let mut g = c.benchmark_group("tokenize");
    g.throughput(Throughput::Bytes(bytes as u64));
    let mut tokens = Tokens::new();
    g.bench_function("fast", |b| {
        b.iter(|| {
            for m in &msgs {
                tokens.tokenize(&m.text, UrlMode::Canonicalize);
            }
        })
    });
    g.bench_function("reference", |b| {
        b.iter(|| {
            for m in &msgs {
                tokens.tokenize_reference(&m.text, UrlMode::Canonicalize);
            }
        })
    });
    g.finish();
}

fn matching(c: &mut Criterion) {
    let msgs = messages();
    // The non-ASCII messages alone (target: at least half the all-message rate), as many as
    // the whole set so that the per-message figures compare.
    let non_ascii: Vec<Message> = WorkloadConfig::default()
        .count(20_000)
        .messages()
        .into_iter()
        .filter(|m| !m.text.is_ascii())
        .take(msgs.len())
        .collect();
    let mut g = c.benchmark_group("match");
    g.sample_size(20);
    for n in [1_000usize, 10_000, 100_000] {
        let rs = rules(n);
        let matcher = Matcher::builder().hash_seed(1, 2).build(&rs);
        let mut scratch = Scratch::new();
        for (name, set) in [("streamtrack", &msgs), ("streamtrack-non-ascii", &non_ascii)] {
            g.throughput(Throughput::Elements(set.len() as u64));
            g.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
                b.iter(|| {
                    let mut found = 0;
                    for m in set {
                        found += matcher.find(m, &mut scratch).len();
                    }
                    found
                })
            });
        }
        g.throughput(Throughput::Elements(msgs.len() as u64));
        let mut terms: Vec<String> = Vec::new();
        for r in &rs {
            r.root().visit_terms(&mut |t, _| match t {
                Term::Keyword(w) => terms.push(w.join(" ")),
                Term::Phrase(p) => terms.push(p.clone()),
                _ => {}
            });
        }
        terms.sort();
        terms.dedup();
        let ac = aho_corasick::AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(&terms)
            .unwrap();
        g.bench_with_input(BenchmarkId::new("aho-corasick", n), &n, |b, _| {
            b.iter(|| {
                msgs.iter()
                    .map(|m| ac.find_overlapping_iter(m.text.as_bytes()).count())
                    .sum::<usize>()
            })
        });
    }
    g.finish();
}

fn registry(c: &mut Criterion) {
    let msgs = messages();
    let registry = Registry::builder().hash_seed(1, 2).build();
    registry.subscribe_all(rules(100_000).into_iter().enumerate().map(|(i, rule)| NewRule {
        subscriber: format!("s{}", i % 1000),
        rule,
        tag: None,
    }));
    registry.compact();
    let extra = rules(1_000);
    let mut g = c.benchmark_group("registry");
    let mut i = 0;
    g.bench_function("subscribe+unsubscribe at 100k", |b| {
        b.iter(|| {
            i += 1;
            let id = registry.subscribe("bench", extra[i % extra.len()].clone(), None).unwrap();
            registry.unsubscribe(id).unwrap();
        })
    });
    let mut scratch = registry::Scratch::new();
    g.throughput(Throughput::Elements(msgs.len() as u64));
    g.sample_size(20);
    g.bench_function("snapshot+find at 100k", |b| {
        b.iter(|| {
            msgs.iter().map(|m| registry.snapshot().find(m, &mut scratch).len()).sum::<usize>()
        })
    });
    g.finish();
}

criterion_group!(benches, tokenize, matching, registry);
criterion_main!(benches);
