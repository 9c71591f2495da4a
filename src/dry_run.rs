//! Dry runs: how many of a set of messages new rules would have matched, before subscribing
//! them, and a bounded ring of recent messages to run them over.
//!
//! A dry run compiles the rules into one [`Matcher`] (the same compiled matcher the registry
//! uses, not the reference) and feeds it every message once, so its cost is one matching
//! pass whatever the number of rules.
//!
//! ```
//! use streamtrack::dry_run::{DryRun, RecentMessages};
//! use streamtrack::{Message, Rule};
//! let mut ring = RecentMessages::new(1000, None);
//! ring.push(Message::new("1", "I love rust"));
//! ring.push(Message::new("2", "rusty nails"));
//! let rules = [Rule::parse("rust").unwrap(), Rule::parse("nails OR rust").unwrap()];
//! let report = ring.dry_run(&rules, 5);
//! assert_eq!(report.messages, 2);
//! assert_eq!(report.rules[0].matches, 1);
//! assert_eq!(report.rules[1].sample, ["1", "2"]);
//! ```

use crate::matcher::{Matcher, Scratch};
use crate::rule::Rule;
use crate::Message;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What one rule would have matched.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "json", derive(serde::Serialize))]
#[non_exhaustive]
pub struct RuleReport {
    /// Messages matched.
    pub matches: u64,
    /// `matches` over the messages seen (0 when none were).
    pub share: f64,
    /// Ids of the first matched messages, in order (at most the sample size).
    pub sample: Vec<String>,
}

/// The result of a dry run.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "json", derive(serde::Serialize))]
#[non_exhaustive]
pub struct DryRunReport {
    /// Messages run.
    pub messages: u64,
    /// One report per rule, in the order given.
    pub rules: Vec<RuleReport>,
}

/// A dry run fed message by message (for inputs read as a stream).
#[derive(Debug)]
pub struct DryRun {
    matcher: Matcher,
    scratch: Scratch,
    messages: u64,
    counts: Vec<u64>,
    samples: Vec<Vec<String>>,
    sample_max: usize,
}

impl DryRun {
    /// Compiles `rules`; each report keeps the ids of up to `sample` matched messages.
    pub fn new(rules: &[Rule], sample: usize) -> DryRun {
        DryRun {
            matcher: Matcher::new(rules),
            scratch: Scratch::new(),
            messages: 0,
            counts: vec![0; rules.len()],
            samples: vec![Vec::new(); rules.len()],
            sample_max: sample,
        }
    }

    /// Runs one message.
    pub fn feed(&mut self, msg: &Message) {
        self.messages += 1;
        for &r in self.matcher.find(msg, &mut self.scratch) {
            let r = r as usize;
            self.counts[r] += 1;
            if self.samples[r].len() < self.sample_max {
                self.samples[r].push(msg.id.clone());
            }
        }
    }

    /// The report so far.
    pub fn report(&self) -> DryRunReport {
        let n = self.messages;
        DryRunReport {
            messages: n,
            rules: self
                .counts
                .iter()
                .zip(&self.samples)
                .map(|(&matches, sample)| RuleReport {
                    matches,
                    share: if n == 0 { 0.0 } else { matches as f64 / n as f64 },
                    sample: sample.clone(),
                })
                .collect(),
        }
    }
}

/// Runs `rules` over `messages` and reports, for each rule, the messages it would match.
pub fn dry_run<'a>(
    rules: &[Rule],
    messages: impl IntoIterator<Item = &'a Message>,
    sample: usize,
) -> DryRunReport {
    let mut run = DryRun::new(rules, sample);
    messages.into_iter().for_each(|m| run.feed(m));
    run.report()
}

/// The most recent messages, bounded by count and optionally by age: what a dry run (or a
/// backfill) runs over.
///
/// Memory: the ring holds an `Arc` per message (the message itself is shared with whoever
/// else holds it); [`RecentMessages::approx_bytes`] counts the messages' text and id bytes
/// plus a fixed overhead per message, about 300 bytes for a 100-byte post.
#[derive(Debug)]
pub struct RecentMessages {
    ring: VecDeque<(Instant, Arc<Message>)>,
    capacity: usize,
    max_age: Option<Duration>,
    bytes: usize,
}

/// Bytes counted per message besides its text and id (the `Message` value, the `Arc`, the
/// ring slot).
const PER_MESSAGE: usize = std::mem::size_of::<Message>() + 48;

fn message_bytes(m: &Message) -> usize {
    PER_MESSAGE + m.text.len() + m.id.len()
}

impl RecentMessages {
    /// A ring of at most `capacity` messages, each kept at most `max_age` if given.
    pub fn new(capacity: usize, max_age: Option<Duration>) -> RecentMessages {
        RecentMessages { ring: VecDeque::new(), capacity, max_age, bytes: 0 }
    }

    /// Adds a message (dropping the oldest beyond the bounds).
    pub fn push(&mut self, msg: impl Into<Arc<Message>>) {
        self.push_at(Instant::now(), msg.into());
    }

    /// Adds a message received at `at`.
    pub fn push_at(&mut self, at: Instant, msg: Arc<Message>) {
        if self.capacity == 0 {
            return;
        }
        self.bytes += message_bytes(&msg);
        self.ring.push_back((at, msg));
        while self.ring.len() > self.capacity {
            self.pop();
        }
        self.expire(at);
    }

    /// Drops the messages older than the age bound, measured at `now`.
    pub fn expire(&mut self, now: Instant) {
        if let Some(age) = self.max_age {
            while self.ring.front().is_some_and(|(t, _)| now.saturating_duration_since(*t) > age) {
                self.pop();
            }
        }
    }

    fn pop(&mut self) {
        if let Some((_, m)) = self.ring.pop_front() {
            self.bytes -= message_bytes(&m);
        }
    }

    /// The messages, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Message>> + '_ {
        self.ring.iter().map(|(_, m)| m)
    }

    /// The messages with the time each was received, oldest first.
    pub fn iter_timed(&self) -> impl Iterator<Item = (Instant, &Arc<Message>)> + '_ {
        self.ring.iter().map(|(t, m)| (*t, m))
    }

    /// The number of messages held.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// Whether the ring is empty.
    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }

    /// Approximate heap bytes held (see the type's documentation).
    pub fn approx_bytes(&self) -> usize {
        self.bytes + self.ring.capacity() * std::mem::size_of::<(Instant, Arc<Message>)>()
    }

    /// Runs `rules` over the ring's messages (see [`dry_run`]).
    pub fn dry_run(&self, rules: &[Rule], sample: usize) -> DryRunReport {
        dry_run(rules, self.iter().map(|m| &**m), sample)
    }
}
