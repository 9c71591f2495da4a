//! Which message words are rule words (diagnostics for the workload generator).
use std::collections::{HashMap, HashSet};
use streamtrack::normalize::NormalizedMessage;
use streamtrack::rule::Term;
use streamtrack_workload::{RuleSetConfig, WorkloadConfig};

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let gen = RuleSetConfig::default().rules(n);
    let mut rule_words: HashMap<String, Vec<String>> = HashMap::new();
    for g in &gen {
        let r = g.parse().unwrap();
        r.root().visit_terms(&mut |t, neg| {
            if let Term::Keyword(w) = t {
                for x in w {
                    rule_words.entry(x.clone()).or_default().push(format!(
                        "{}{}",
                        if neg { "NEG " } else { "" },
                        g.value
                    ));
                }
            }
        });
    }
    let mut freq: HashMap<String, usize> = HashMap::new();
    for m in WorkloadConfig::default().count(5_000).messages() {
        let norm = NormalizedMessage::of(&m);
        for w in norm.fields()[0].tokens.word_texts() {
            if rule_words.contains_key(w) {
                *freq.entry(w.to_string()).or_default() += 1;
            }
        }
    }
    let mut v: Vec<_> = freq.into_iter().collect();
    v.sort_by_key(|e| std::cmp::Reverse(e.1));
    for (w, c) in v.iter().take(15) {
        let rules = &rule_words[w];
        let kinds: HashSet<_> = rules.iter().take(3).collect();
        println!("{c:6} {w:12} in {} rules, e.g. {:?}", rules.len(), kinds);
    }
}
