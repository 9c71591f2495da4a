//! Rules shared through a KV bucket: key = rule id, value = the rule's JSON object (`value`,
//! `dialect`, `tag`, `subscriber`; an `id`, if present, must equal the key).

use crate::{InRuntime, Nats, NatsError};
use async_nats::jetstream::kv;
use futures::StreamExt;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;
use streamtrack::registry::RuleId;
use streamtrack::rule::Parser;
use streamtrack::rules_file::{parse_rule_line, parse_rules_file, RuleEntry};
use streamtrack::{Dialect, Registry};

/// The bucket key (the rule id as written) of each registry rule id, shared by the watcher
/// (which writes it) and the sinks (which name matching rules with it). Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct RuleNames(Arc<RwLock<HashMap<RuleId, Arc<str>>>>);

impl RuleNames {
    /// The bucket key of a registry rule id.
    pub fn name(&self, id: RuleId) -> Option<Arc<str>> {
        self.0.read().unwrap_or_else(PoisonError::into_inner).get(&id).cloned()
    }
}

/// The value stored in the bucket for a rule: its JSON object without the id (the key), the
/// dialect always explicit so every instance reads it alike.
pub fn rule_value(entry: &RuleEntry) -> String {
    let mut o = serde_json::Map::new();
    o.insert("value".into(), entry.value.clone().into());
    let dialect = match entry.rule.dialect() {
        Dialect::Track => "track",
        _ => "rule",
    };
    o.insert("dialect".into(), dialect.into());
    if let Some(t) = &entry.tag {
        o.insert("tag".into(), t.clone().into());
    }
    if let Some(s) = &entry.subscriber {
        o.insert("subscriber".into(), s.clone().into());
    }
    serde_json::Value::Object(o).to_string()
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with('.')
        && !key.ends_with('.')
        && !key.contains("..")
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"-/_=.".contains(&b))
}

/// Reads a rules file (`text`, named `file` in errors) and returns each rule as (key, bucket
/// value), or every error as `FILE:LINE:COLUMN: rule "ID": message` (a rule id must also be a
/// valid KV key: letters, digits and `-/_=.`).
pub fn validate_rules(text: &str, file: &str) -> Result<Vec<(String, String)>, Vec<String>> {
    let entries = parse_rules_file(text, Dialect::Rule, &Parser::new())
        .map_err(|errors| errors.iter().map(|e| e.in_file(file).to_string()).collect::<Vec<_>>())?;
    let mut bad = Vec::new();
    let mut out = Vec::new();
    for e in &entries {
        if valid_key(&e.id) {
            out.push((e.id.clone(), rule_value(e)));
        } else {
            bad.push(format!(
                "{file}:{}:1: rule {:?}: the id is not a valid bucket key (use letters, digits and -/_=.)",
                e.line, e.id
            ));
        }
    }
    if bad.is_empty() {
        Ok(out)
    } else {
        Err(bad)
    }
}

/// What the watcher did with one bucket entry (or a watch problem).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RulesEvent {
    /// A put or delete was applied to the registry.
    Applied {
        /// The entry's revision.
        revision: u64,
        /// The rule id.
        key: String,
        /// Whether the rule was removed.
        deleted: bool,
    },
    /// An invalid value was skipped (the key's previous version stays in force); the reason
    /// was published to the error subject.
    Rejected {
        /// The entry's revision.
        revision: u64,
        /// The rule id.
        key: String,
        /// Why, with the column in the value when known.
        reason: String,
    },
    /// The watch failed (lost connection); it is re-established from the next revision.
    WatchError(String),
}

struct Applied {
    id: RuleId,
    subscriber: String,
}

#[derive(Default)]
struct Shared {
    revision: AtomicU64,
    rules: AtomicU64,
    rejected: AtomicU64,
}

struct Applier {
    registry: Registry,
    names: RuleNames,
    parser: Parser,
    keys: HashMap<String, Applied>,
    subscribers: HashSet<String>,
    shared: Arc<Shared>,
    bucket: String,
}

impl Applier {
    fn parse(&self, key: &str, value: &[u8]) -> Result<RuleEntry, String> {
        let text = std::str::from_utf8(value).map_err(|e| format!("not UTF-8: {e}"))?;
        let obj: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("column {}: {e}", e.column()))?;
        let serde_json::Value::Object(obj) = obj else {
            return Err("column 1: a rule value must be a JSON object".into());
        };
        let (line, shift) = match obj.get("id") {
            Some(serde_json::Value::String(id)) if id == key => (text.to_string(), 0),
            Some(other) => {
                return Err(format!("the id {other} does not match the key {key:?}"));
            }
            None => {
                // The key is the id: put it first, and give columns in the value as stored.
                let at = text.find('{').unwrap_or(0) + 1;
                let id_json = format!("\"id\":{},", serde_json::Value::from(key));
                let empty = text[at..].trim_start().starts_with('}');
                let id_json =
                    if empty { id_json.trim_end_matches(',').to_string() } else { id_json };
                let mut l = String::with_capacity(text.len() + id_json.len());
                l.push_str(&text[..at]);
                l.push_str(&id_json);
                l.push_str(&text[at..]);
                (l, id_json.chars().count())
            }
        };
        parse_rule_line(&line, 1, Dialect::Rule, &self.parser).map_err(|e| match e.column {
            Some(c) => {
                let c = if c > shift { c - shift } else { c };
                format!("column {c}: {}", e.message)
            }
            None => e.message,
        })
    }

    /// Applies one entry; calls `announce` for a subscriber seen for the first time, before
    /// its first rule is live (so its sink is attached before any match for it).
    fn apply(&mut self, entry: &kv::Entry, announce: &dyn Fn(&str) -> bool) -> RulesEvent {
        let revision = entry.revision;
        let key = entry.key.clone();
        let event = match entry.operation {
            kv::Operation::Delete | kv::Operation::Purge => {
                if let Some(old) = self.keys.remove(&key) {
                    let _ = self.registry.unsubscribe(old.id);
                }
                RulesEvent::Applied { revision, key, deleted: true }
            }
            kv::Operation::Put => match self.put(&key, &entry.value, announce) {
                Ok(()) => RulesEvent::Applied { revision, key, deleted: false },
                Err(reason) => {
                    self.shared.rejected.fetch_add(1, Ordering::Relaxed);
                    RulesEvent::Rejected { revision, key, reason }
                }
            },
        };
        self.shared.rules.store(self.keys.len() as u64, Ordering::Relaxed);
        event
    }

    /// Counts `revision` as done, once its event has been reported: a caller that sees
    /// [`RulesFollower::revision`] reach a revision has seen its event too.
    fn settle(&self, revision: u64) {
        self.shared.revision.store(revision, Ordering::Release);
    }

    fn put(
        &mut self,
        key: &str,
        value: &[u8],
        announce: &dyn Fn(&str) -> bool,
    ) -> Result<(), String> {
        let entry = self.parse(key, value)?;
        let subscriber = entry.subscriber.clone().unwrap_or_else(|| key.to_string());
        if !self.subscribers.contains(&subscriber) {
            // Its sink first, so that no match for it is made before it can be delivered.
            if !announce(&subscriber) {
                return Err(format!("not applied: no sink for the new subscriber {subscriber:?}"));
            }
            self.subscribers.insert(subscriber.clone());
        }
        let mut names = self.names.0.write().unwrap_or_else(PoisonError::into_inner);
        match self.keys.get(key) {
            Some(old) if old.subscriber == subscriber => self
                .registry
                .replace(old.id, entry.rule, entry.tag)
                .map_err(|e| format!("not applied: {e}")),
            Some(_) | None => {
                let id = self
                    .registry
                    .subscribe(&subscriber, entry.rule, entry.tag)
                    .map_err(|e| format!("not applied: {e}"))?;
                names.insert(id, Arc::from(key));
                if let Some(old) = self.keys.insert(key.to_string(), Applied { id, subscriber }) {
                    let _ = self.registry.unsubscribe(old.id);
                }
                Ok(())
            }
        }
    }
}

/// Applies a KV bucket of rules to a registry: [`catch_up`](Self::catch_up) reads the
/// bucket's current rules (the caller then attaches a sink for each of
/// [`subscribers`](Self::subscribers)), [`follow`](Self::follow) applies every later put and
/// delete, in revision order.
pub struct RulesWatcher {
    nats: Nats,
    store: kv::Store,
    watch: InRuntime<kv::Watch>,
    applier: Applier,
    error_subject: String,
    events: Vec<RulesEvent>,
}

impl RulesWatcher {
    /// Watches `store` from its first revision and applies its current rules to `registry`
    /// (waits at most `timeout` for them); invalid values are skipped and reported to
    /// `error_subject`.
    pub fn catch_up(
        nats: &Nats,
        store: kv::Store,
        registry: Registry,
        names: RuleNames,
        error_subject: &str,
        timeout: Duration,
    ) -> Result<RulesWatcher, NatsError> {
        let bucket = store.name.clone();
        let (watch, pending) = nats
            .block_on(async {
                // Fresh stream information (the store's own status may be cached).
                let stream = nats
                    .jetstream()
                    .get_stream(format!("KV_{}", store.name))
                    .await
                    .map_err(|e| e.to_string())?;
                let pending = stream.cached_info().state.messages;
                let w = store.watch_with_history(">").await.map_err(|e| e.to_string())?;
                Ok::<_, String>((w, pending))
            })
            .map_err(|e| NatsError::new(format!("cannot watch the bucket {bucket}: {e}")))?;
        let mut w = RulesWatcher {
            nats: nats.clone(),
            store,
            watch: InRuntime::new(watch, nats.handle()),
            applier: Applier {
                registry,
                names,
                parser: Parser::new(),
                keys: HashMap::new(),
                subscribers: HashSet::new(),
                shared: Arc::new(Shared::default()),
                bucket,
            },
            error_subject: error_subject.to_string(),
            events: Vec::new(),
        };
        if pending > 0 {
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                let next = {
                    let watch = w.watch.get();
                    nats.block_on(async { tokio::time::timeout_at(deadline, watch.next()).await })
                };
                match next {
                    Err(_) => {
                        return Err(NatsError::new(format!(
                            "the bucket {} was not read within {timeout:?}",
                            w.applier.bucket
                        )))
                    }
                    Ok(None) => return Err(NatsError::new("the bucket watch ended")),
                    Ok(Some(Err(e))) => w.events.push(RulesEvent::WatchError(e.to_string())),
                    Ok(Some(Ok(entry))) => {
                        let ev = w.applier.apply(&entry, &|_| true);
                        w.report(&ev);
                        w.events.push(ev);
                        w.applier.settle(entry.revision);
                        if entry.delta == 0 {
                            break;
                        }
                    }
                }
            }
        }
        Ok(w)
    }

    fn report(&self, ev: &RulesEvent) {
        report(&self.nats, &self.error_subject, &self.applier.bucket, ev);
    }

    /// The subscribers of the rules applied so far.
    pub fn subscribers(&self) -> Vec<String> {
        let mut v: Vec<_> = self.applier.subscribers.iter().cloned().collect();
        v.sort();
        v
    }

    /// What catching up did (applied and rejected entries), in revision order.
    pub fn events(&self) -> &[RulesEvent] {
        &self.events
    }

    /// The last revision applied (or rejected); 0 for an empty bucket.
    pub fn revision(&self) -> u64 {
        self.applier.shared.revision.load(Ordering::Acquire)
    }

    /// Applies every later change, on the connection's runtime: `on_new_subscriber` is called
    /// for a subscriber seen for the first time (not those of [`subscribers`](Self::subscribers)),
    /// before its first rule applies, and returns whether a sink is attached for it (if not,
    /// the rule is rejected: a match nobody can receive would be acknowledged, i.e. lost);
    /// `on_event` for each entry. A lost watch is re-established
    /// from the next revision, with back-off.
    pub fn follow(
        self,
        on_new_subscriber: impl Fn(&str) -> bool + Send + Sync + 'static,
        on_event: impl Fn(&RulesEvent) + Send + Sync + 'static,
    ) -> RulesFollower {
        let shared = self.applier.shared.clone();
        let RulesWatcher { nats, store, watch, mut applier, error_subject, .. } = self;
        let mut watch = watch.into_inner();
        // The task holds the client, not `Nats`: the runtime must not own its own last handle.
        let client = nats.client().clone();
        let task = nats.handle().spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                match watch.next().await {
                    Some(Ok(entry)) => {
                        backoff = Duration::from_millis(100);
                        let ev = applier.apply(&entry, &on_new_subscriber);
                        report_async(&client, &error_subject, &applier.bucket, &ev).await;
                        on_event(&ev);
                        applier.settle(entry.revision);
                    }
                    Some(Err(e)) => on_event(&RulesEvent::WatchError(e.to_string())),
                    None => {
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        let from = applier.shared.revision.load(Ordering::Acquire) + 1;
                        match store.watch_all_from_revision(from).await {
                            Ok(w) => watch = w,
                            Err(e) => on_event(&RulesEvent::WatchError(e.to_string())),
                        }
                    }
                }
            }
        });
        RulesFollower { shared, task }
    }
}

fn error_report(bucket: &str, ev: &RulesEvent) -> Option<String> {
    match ev {
        RulesEvent::Rejected { revision, key, reason } => Some(
            serde_json::json!({"bucket": bucket, "key": key, "revision": revision, "error": reason})
                .to_string(),
        ),
        _ => None,
    }
}

fn report(nats: &Nats, subject: &str, bucket: &str, ev: &RulesEvent) {
    if error_report(bucket, ev).is_some() {
        nats.block_on(report_async(nats.client(), subject, bucket, ev));
    }
}

async fn report_async(client: &async_nats::Client, subject: &str, bucket: &str, ev: &RulesEvent) {
    if let Some(body) = error_report(bucket, ev) {
        let _ = client.publish(subject.to_string(), body.into()).await;
    }
}

/// The running side of a [`RulesWatcher`]: its figures; dropping it stops following.
pub struct RulesFollower {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl RulesFollower {
    /// The last revision applied (or rejected), counted after its event went to `on_event`
    /// (and a refusal to the error subject): a caller that sees a revision here has had its
    /// event.
    pub fn revision(&self) -> u64 {
        self.shared.revision.load(Ordering::Acquire)
    }

    /// How many rules are in force.
    pub fn rules(&self) -> u64 {
        self.shared.rules.load(Ordering::Relaxed)
    }

    /// How many entries were rejected.
    pub fn rejected(&self) -> u64 {
        self.shared.rejected.load(Ordering::Relaxed)
    }
}

impl Drop for RulesFollower {
    fn drop(&mut self) {
        self.task.abort();
    }
}
