//! The sink publishing one subscriber's deliveries through JetStream.

use crate::rules::RuleNames;
use crate::Nats;
use async_nats::jetstream::context::Publish;
use serde_json::{Map, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use streamtrack::engine::{Delivery, DisconnectCode, Sink, SinkError};
use streamtrack::registry::RuleId;

/// What the sinks of one instance published, shared by all of them.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct SinkCounters {
    /// Deliveries the server stored (acknowledged publications).
    pub published: AtomicU64,
    /// Publications the server reported as duplicates (dropped inside its window).
    pub duplicates: AtomicU64,
    /// Failed attempts (each retried).
    pub retries: AtomicU64,
    /// Time spent publishing and waiting for the server's acknowledgements, in nanoseconds
    /// (where a sink's time goes).
    pub publish_nanos: AtomicU64,
}

/// The subject token for a subscriber name: ASCII letters, digits, `-` and `_` as they are,
/// every other byte as `%XX` (so `.`, `*`, `>` and spaces cannot split or widen a subject).
pub fn subject_token(subscriber: &str) -> String {
    let mut s = String::with_capacity(subscriber.len());
    for b in subscriber.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    if s.is_empty() {
        s.push_str("%00");
    }
    s
}

/// A delivery as the `run` command writes it: `subscriber`, the message's fields,
/// `matching_rules` (`id` as named in the rules bucket, `tag`) and `reaction` when computed;
/// notices carry their own fields. `None` for the normal end-of-stream disconnect (not news).
pub fn delivery_json(
    subscriber: &str,
    names: &RuleNames,
    delivery: &Delivery,
) -> Option<Map<String, Value>> {
    if is_normal_end(delivery) {
        return None;
    }
    Some(delivery_object(subscriber, delivery, |id| names.name(id).map(|s| s.to_string())))
}

/// Whether `delivery` is the normal end-of-stream disconnect (normal close or shutdown), which
/// the `run` command and the NATS sinks leave out unless asked.
pub fn is_normal_end(delivery: &Delivery) -> bool {
    matches!(delivery, Delivery::Disconnect { code, .. }
        if *code == DisconnectCode::NORMAL || *code == DisconnectCode::SHUTDOWN)
}

/// The one JSON object of a delivery, shared by the `run` command and the NATS sinks so both
/// write the same thing: `subscriber`, the message's fields, `matching_rules` (each `id` as
/// `name` gives it, the registry id otherwise, and `tag`) and `reaction` when computed; notices
/// (disconnects included) carry their own fields.
pub fn delivery_object(
    subscriber: &str,
    delivery: &Delivery,
    name: impl Fn(RuleId) -> Option<String>,
) -> Map<String, Value> {
    let mut o = Map::new();
    o.insert("subscriber".into(), Value::String(subscriber.to_string()));
    match delivery {
        Delivery::Match { message, matching_rules } => {
            if let Value::Object(body) = message.to_json_value() {
                o.extend(body.into_iter().filter(|(k, _)| k != "matching_rules"));
            }
            let rules = matching_rules
                .iter()
                .map(|r| {
                    let mut e = Map::new();
                    let id = name(r.id).unwrap_or_else(|| r.id.to_string());
                    e.insert("id".into(), Value::String(id));
                    if let Some(tag) = &r.tag {
                        e.insert("tag".into(), Value::String(tag.to_string()));
                    }
                    Value::Object(e)
                })
                .collect();
            o.insert("matching_rules".into(), Value::Array(rules));
            if let Some(r) = delivery.reaction() {
                o.insert("reaction".into(), r.to_json());
            }
            if matching_rules.is_backfill() {
                o.insert("backfill".into(), Value::Bool(true));
            }
        }
        other => {
            if let Value::Object(body) = other.to_json_value() {
                o.extend(body);
            }
        }
    }
    o
}

/// A [`Sink`] publishing one subscriber's deliveries to `<prefix>.<subscriber>` through
/// JetStream (the subject must belong to a stream: [`Nats::ensure_delivery_stream`]).
///
/// Each match carries the de-duplication id `<message id>:<subscriber>` (header
/// `Nats-Msg-Id`): a message redelivered after a failover and matched again is dropped by the
/// server if the first copy was stored inside the stream's duplicate window. `send` returns
/// only once the server acknowledged the publication (so the engine's acknowledgement of the
/// source message means *stored*); a failed publication (server down) is retried with
/// back-off (50 ms doubling to 2 s) until it succeeds or [`abort`](Self::abort_flag) is set,
/// which fails the sink (the engine then acknowledges nothing beyond: redelivered elsewhere).
pub struct JetStreamSink {
    nats: Nats,
    subscriber: String,
    subject: String,
    names: RuleNames,
    counters: Arc<SinkCounters>,
    abort: Arc<AtomicBool>,
}

impl JetStreamSink {
    /// A sink for `subscriber` under `prefix`; `names` gives the rule ids' names.
    pub fn new(
        nats: &Nats,
        prefix: &str,
        subscriber: &str,
        names: RuleNames,
        counters: Arc<SinkCounters>,
        abort: Arc<AtomicBool>,
    ) -> Self {
        JetStreamSink {
            nats: nats.clone(),
            subscriber: subscriber.to_string(),
            subject: format!("{prefix}.{}", subject_token(subscriber)),
            names,
            counters,
            abort,
        }
    }

    /// The flag that makes a retrying `send` give up (set it to stop during an outage).
    pub fn abort_flag(&self) -> Arc<AtomicBool> {
        self.abort.clone()
    }

    /// The subject this sink publishes to.
    pub fn subject(&self) -> &str {
        &self.subject
    }
}

impl Sink for JetStreamSink {
    fn send(&mut self, delivery: Delivery) -> Result<(), SinkError> {
        let Some(o) = delivery_json(&self.subscriber, &self.names, &delivery) else {
            return Ok(());
        };
        let payload = serde_json::to_vec(&o).map_err(|e| SinkError::new(e.to_string()))?;
        let msg_id = match &delivery {
            Delivery::Match { message, .. } => Some(format!("{}:{}", message.id, self.subscriber)),
            _ => None,
        };
        let mut backoff = Duration::from_millis(50);
        loop {
            let mut publish = Publish::build().payload(payload.clone().into());
            if let Some(id) = &msg_id {
                publish = publish.message_id(id);
            }
            let js = self.nats.jetstream().clone();
            let subject = self.subject.clone();
            let started = std::time::Instant::now();
            let result = self.nats.block_on(async move {
                let ack = js.send_publish(subject, publish).await.map_err(|e| e.to_string())?;
                ack.await.map_err(|e| e.to_string())
            });
            let nanos = started.elapsed().as_nanos().min(u64::MAX as u128) as u64;
            self.counters.publish_nanos.fetch_add(nanos, Ordering::Relaxed);
            match result {
                Ok(ack) => {
                    let c = if ack.duplicate {
                        &self.counters.duplicates
                    } else {
                        &self.counters.published
                    };
                    c.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                Err(e) => {
                    self.counters.retries.fetch_add(1, Ordering::Relaxed);
                    if self.abort.load(Ordering::Relaxed) {
                        return Err(SinkError::new(format!("publishing to {}: {e}", self.subject)));
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use streamtrack::engine::{MatchingRule, MatchingRules};
    use streamtrack::Message;

    /// A backfill delivery (a message read before its rule was subscribed) says so in its
    /// object, as the engine's own JSON Lines writer does; a live one does not.
    #[test]
    fn a_backfill_delivery_carries_its_flag() {
        let message = std::sync::Arc::new(Message::new("9", "old news"));
        let rule = MatchingRule::new(RuleId::from_u64(3), None);
        for backfill in [false, true] {
            let rules = MatchingRules::from(rule.clone());
            let rules = if backfill { rules.backfill() } else { rules };
            let d = Delivery::Match { message: message.clone(), matching_rules: rules };
            let o = delivery_object("alice", &d, |_| None);
            assert_eq!(o.get("backfill"), backfill.then_some(&Value::Bool(true)), "{o:?}");
        }
    }
}
