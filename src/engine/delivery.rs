//! What a subscriber receives: matched messages and the control notices of the streaming
//! protocol ([rule language](crate::rule_language#7-streams-and-deliveries)), with their JSON
//! shapes (feature `json`).

use crate::analytics::stage::ReactionCell;
use crate::analytics::Reaction;
use crate::registry::RuleId;
use crate::Message;
use std::fmt;
use std::sync::Arc;

/// One rule that matched a delivered message, as reported in `matching_rules`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct MatchingRule {
    /// The rule's id in the [`Registry`](crate::registry::Registry).
    pub id: RuleId,
    /// The rule's tag, shared with the registry (not copied per delivery).
    pub tag: Option<Arc<str>>,
}

impl MatchingRule {
    /// A matching rule entry.
    pub fn new(id: RuleId, tag: Option<Arc<str>>) -> Self {
        MatchingRule { id, tag }
    }
}

/// The rules of one subscriber that matched a delivered message, ascending by id: a list
/// that holds one rule (the usual case) without allocating, so that delivering a match
/// costs no allocation. It dereferences to a slice.
///
/// ```
/// use streamtrack::engine::{MatchingRule, MatchingRules};
/// use streamtrack::registry::RuleId;
/// let mut rules = MatchingRules::from(MatchingRule::new(RuleId::from_u64(3), None));
/// rules.push(MatchingRule::new(RuleId::from_u64(9), Some("news".into())));
/// assert_eq!(rules.len(), 2);
/// assert_eq!(rules[1].tag.as_deref(), Some("news"));
/// let ids: Vec<u64> = rules.iter().map(|r| r.id.as_u64()).collect();
/// assert_eq!(ids, [3, 9]);
/// ```
#[derive(Clone, Default)]
pub struct MatchingRules(RulesRepr, Option<Arc<ReactionCell>>);

#[derive(Clone)]
enum RulesRepr {
    One([MatchingRule; 1]),
    Many(ManyRules),
    /// The rules of a backfill delivery (see [`MatchingRules::is_backfill`]): a variant of
    /// its own, so that the flag costs the usual delivery no byte (a backfill delivery's
    /// one rule is held in a vector: backfill is rare).
    Backfill(ManyRules),
}

impl Default for RulesRepr {
    fn default() -> Self {
        RulesRepr::Many(ManyRules(Vec::new()))
    }
}

/// Zero or two and more rules. Its vector is dropped out of line, so that the drop of the
/// usual one-rule list (at every sink, once per delivery) holds no loop and saves two
/// registers, not seven (issue 23's fan-out: callgrind counts 78 instructions per delivery
/// in the sink's `send`, 86 with the vector dropped in line, 73 before the reaction cell).
#[derive(Clone, Default)]
struct ManyRules(Vec<MatchingRule>);

impl Drop for ManyRules {
    #[inline]
    fn drop(&mut self) {
        drop_rules(std::mem::take(&mut self.0));
    }
}

/// Drops a list of several rules (the rare case, kept out of the common drop's code).
#[cold]
#[inline(never)]
fn drop_rules(rules: Vec<MatchingRule>) {
    drop(rules);
}

impl MatchingRules {
    /// An empty list.
    pub fn new() -> Self {
        MatchingRules::default()
    }

    /// Appends a rule (allocates from the second rule on).
    pub fn push(&mut self, rule: MatchingRule) {
        self.0 = match std::mem::take(&mut self.0) {
            RulesRepr::Many(v) if v.0.is_empty() => RulesRepr::One([rule]),
            RulesRepr::Many(mut v) => {
                v.0.push(rule);
                RulesRepr::Many(v)
            }
            RulesRepr::One([first]) => RulesRepr::Many(ManyRules(vec![first, rule])),
            RulesRepr::Backfill(mut v) => {
                v.0.push(rule);
                RulesRepr::Backfill(v)
            }
        };
    }

    /// The rules as a slice.
    pub fn as_slice(&self) -> &[MatchingRule] {
        match &self.0 {
            RulesRepr::One(one) => one,
            RulesRepr::Many(v) | RulesRepr::Backfill(v) => &v.0,
        }
    }

    /// Whether these are the rules of a backfill delivery: a message read before the rule
    /// was subscribed, delivered because it was subscribed with backfill
    /// ([`Engine::subscribe_with_backfill`](crate::engine::Engine::subscribe_with_backfill)).
    pub fn is_backfill(&self) -> bool {
        matches!(self.0, RulesRepr::Backfill(_))
    }

    /// The same rules flagged as those of a backfill delivery.
    pub fn backfill(self) -> Self {
        let MatchingRules(repr, cell) = self;
        let rules = match repr {
            RulesRepr::One([one]) => vec![one],
            RulesRepr::Many(mut v) | RulesRepr::Backfill(mut v) => std::mem::take(&mut v.0),
        };
        MatchingRules(RulesRepr::Backfill(ManyRules(rules)), cell)
    }

    /// The same rules carrying the message's reaction cell (the engine's analytics stage).
    pub(crate) fn with_reaction(mut self, cell: Option<Arc<ReactionCell>>) -> Self {
        self.1 = cell;
        self
    }

    /// The rules as a vector.
    pub fn into_vec(self) -> Vec<MatchingRule> {
        match self.0 {
            RulesRepr::One([one]) => vec![one],
            RulesRepr::Many(mut v) | RulesRepr::Backfill(mut v) => std::mem::take(&mut v.0),
        }
    }
}

impl std::ops::Deref for MatchingRules {
    type Target = [MatchingRule];
    fn deref(&self) -> &[MatchingRule] {
        self.as_slice()
    }
}

impl fmt::Debug for MatchingRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl From<MatchingRule> for MatchingRules {
    fn from(rule: MatchingRule) -> Self {
        MatchingRules(RulesRepr::One([rule]), None)
    }
}

impl From<Vec<MatchingRule>> for MatchingRules {
    fn from(mut v: Vec<MatchingRule>) -> Self {
        match v.len() {
            1 => MatchingRules::from(v.pop().expect("one rule")),
            _ => MatchingRules(RulesRepr::Many(ManyRules(v)), None),
        }
    }
}

impl From<MatchingRules> for Vec<MatchingRule> {
    fn from(rules: MatchingRules) -> Self {
        rules.into_vec()
    }
}

impl FromIterator<MatchingRule> for MatchingRules {
    fn from_iter<I: IntoIterator<Item = MatchingRule>>(iter: I) -> Self {
        let mut rules = MatchingRules::new();
        for r in iter {
            rules.push(r);
        }
        rules
    }
}

impl<'a> IntoIterator for &'a MatchingRules {
    type Item = &'a MatchingRule;
    type IntoIter = std::slice::Iter<'a, MatchingRule>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl IntoIterator for MatchingRules {
    type Item = MatchingRule;
    type IntoIter = std::vec::IntoIter<MatchingRule>;
    /// (Allocates for a single rule: iterate by reference where that matters.)
    fn into_iter(self) -> Self::IntoIter {
        self.into_vec().into_iter()
    }
}

impl PartialEq for MatchingRules {
    /// Equal rules, both backfill or both live.
    fn eq(&self, other: &MatchingRules) -> bool {
        self.as_slice() == other.as_slice() && self.is_backfill() == other.is_backfill()
    }
}

impl Eq for MatchingRules {}

impl std::hash::Hash for MatchingRules {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_slice().hash(state);
    }
}

impl PartialEq<[MatchingRule]> for MatchingRules {
    fn eq(&self, other: &[MatchingRule]) -> bool {
        self.as_slice() == other
    }
}

impl<const N: usize> PartialEq<[MatchingRule; N]> for MatchingRules {
    fn eq(&self, other: &[MatchingRule; N]) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl PartialEq<Vec<MatchingRule>> for MatchingRules {
    fn eq(&self, other: &Vec<MatchingRule>) -> bool {
        self.as_slice() == other.as_slice()
    }
}

/// Why a subscriber's stream was closed: Twitter's streaming disconnect codes, where they fit.
///
/// | code | name | when the engine sends it |
/// |---|---|---|
/// | 1 | shutdown | [`Engine::shutdown`](crate::engine::Engine::shutdown) |
/// | 3 | control request | [`Engine::detach`](crate::engine::Engine::detach) |
/// | 4 | stall | the subscriber's queue filled up under [`FullPolicy::Disconnect`](crate::engine::FullPolicy::Disconnect), or a blocked hand-off outlived its stall timeout |
/// | 5 | normal | the source reached the end of its stream |
/// | 7 | admin logout | another sink was attached under the same subscriber name |
/// | 10 | stream exception | the source failed; or this subscriber's sink failed or panicked (then it is recorded in the statistics, not sent to the broken sink) |
/// | 13 | drain timeout | the engine stopped with a [drain timeout](crate::engine::EngineBuilder::drain_timeout) and this subscriber's sink had not taken what was queued for it when it ran out (a limit notice before it counts what was dropped) |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DisconnectCode(pub u32);

impl DisconnectCode {
    /// The engine was shut down.
    pub const SHUTDOWN: DisconnectCode = DisconnectCode(1);
    /// The application closed this subscriber's stream.
    pub const CONTROL_REQUEST: DisconnectCode = DisconnectCode(3);
    /// The subscriber read too slowly.
    pub const STALL: DisconnectCode = DisconnectCode(4);
    /// The stream ended normally (the source has no more messages).
    pub const NORMAL: DisconnectCode = DisconnectCode(5);
    /// A newer sink replaced this one for the same subscriber.
    pub const ADMIN_LOGOUT: DisconnectCode = DisconnectCode(7);
    /// An internal failure (the source's or this subscriber's sink's).
    pub const STREAM_EXCEPTION: DisconnectCode = DisconnectCode(10);
    /// The engine stopped and its drain timeout ran out before this subscriber's sink took
    /// what was queued for it (not a Twitter code: the engine's own).
    pub const DRAIN_TIMEOUT: DisconnectCode = DisconnectCode(13);

    /// The protocol's short name for the code, e.g. `"Stall"`.
    pub fn name(self) -> &'static str {
        match self.0 {
            1 => "Shutdown",
            2 => "Duplicate stream",
            3 => "Control request",
            4 => "Stall",
            5 => "Normal",
            6 => "Token revoked",
            7 => "Admin logout",
            9 => "Max message limit",
            10 => "Stream exception",
            11 => "Broker stall",
            12 => "Shed load",
            13 => "Drain timeout",
            _ => "Unknown",
        }
    }
}

impl fmt::Display for DisconnectCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.0, self.name())
    }
}

/// The warning code of a stall warning.
pub const FALLING_BEHIND: &str = "FALLING_BEHIND";

/// One item of a subscriber's stream.
///
/// With feature `json`, a delivery serialises to the line a streaming client expects:
///
/// | delivery | JSON |
/// |---|---|
/// | [`Delivery::Match`] | the message's JSON (the object it was read from, else [`Message::to_json_value`]) plus `"matching_rules":[{"id":"7","tag":"t"}]` (`tag` left out when there is none; ids are strings, as in Twitter API v2), `"backfill":true` for a backfill delivery ([`Delivery::is_backfill`]; left out otherwise), and `"reaction":{"compound","pos","neu","neg","label"}` when the engine runs analytics ([`Delivery::reaction`]) |
/// | [`Delivery::Limit`] | `{"limit":{"track":N}}` |
/// | [`Delivery::Warning`] | `{"warning":{"code":"FALLING_BEHIND","message":"…","percent_full":P}}` |
/// | [`Delivery::Disconnect`] | `{"disconnect":{"code":C,"stream_name":"…","reason":"…"}}` |
///
/// Deserialising reads the same lines back.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Delivery {
    /// A message that matched at least one of the subscriber's rules.
    Match {
        /// The message, shared by every subscriber it is delivered to.
        message: Arc<Message>,
        /// This subscriber's rules that matched, ascending by id.
        matching_rules: MatchingRules,
    },
    /// Matches were not delivered (queue full or rate cap): `track` is the cumulative number of
    /// undelivered matches since the subscriber was attached.
    Limit {
        /// Cumulative number of matched messages not delivered to this subscriber.
        track: u64,
    },
    /// The subscriber's queue is filling up: it reads more slowly than its messages arrive.
    Warning {
        /// Always [`FALLING_BEHIND`].
        code: String,
        /// A sentence for humans.
        message: String,
        /// How full the queue was, in percent.
        percent_full: u8,
    },
    /// The stream is closed; nothing follows.
    Disconnect {
        /// Why (see [`DisconnectCode`]).
        code: DisconnectCode,
        /// The subscriber's name.
        stream_name: String,
        /// A sentence for humans.
        reason: String,
    },
}

impl Delivery {
    /// A stall warning with the standard code and sentence.
    pub fn falling_behind(percent_full: u8, then: &str) -> Delivery {
        Delivery::Warning {
            code: FALLING_BEHIND.to_string(),
            message: format!(
                "Your connection is falling behind and messages are being queued for delivery \
                 to you. Your queue is now over {percent_full}% full. {then}"
            ),
            percent_full,
        }
    }

    /// The matched message, for a [`Delivery::Match`].
    pub fn message(&self) -> Option<&Arc<Message>> {
        match self {
            Delivery::Match { message, .. } => Some(message),
            _ => None,
        }
    }

    /// The reaction (sentiment) of the matched message, when the engine runs analytics with
    /// reactions on ([`EngineBuilder::analytics`](crate::engine::EngineBuilder::analytics)):
    /// computed once per message, by the analytics stage or by the first delivery of the
    /// message asked for it, never on a matcher thread; `None` otherwise.
    pub fn reaction(&self) -> Option<Reaction> {
        match self {
            Delivery::Match { message, matching_rules } => {
                matching_rules.1.as_ref().map(|c| c.get(message))
            }
            _ => None,
        }
    }

    /// Whether this is a matched message (not a control notice).
    pub fn is_match(&self) -> bool {
        matches!(self, Delivery::Match { .. })
    }

    /// Whether this is a backfill delivery: a message read before its rule was subscribed,
    /// sent because the rule was subscribed with backfill
    /// ([`Engine::subscribe_with_backfill`](crate::engine::Engine::subscribe_with_backfill));
    /// `"backfill":true` in JSON. A subscriber gets a new rule's backfill before any live
    /// match of it.
    pub fn is_backfill(&self) -> bool {
        matches!(self, Delivery::Match { matching_rules, .. } if matching_rules.is_backfill())
    }
}

#[cfg(feature = "json")]
mod json {
    use super::*;
    use serde::de::Error as _;
    use serde::ser::{SerializeMap, SerializeStruct};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use serde_json::{Map, Value};

    impl Serialize for MatchingRule {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut st = s.serialize_struct("MatchingRule", 1 + usize::from(self.tag.is_some()))?;
            st.serialize_field("id", &self.id.as_u64().to_string())?;
            if let Some(tag) = &self.tag {
                st.serialize_field("tag", &**tag)?;
            }
            st.end()
        }
    }

    fn rule_from_value<E: serde::de::Error>(v: &Value) -> Result<MatchingRule, E> {
        let Value::Object(o) = v else {
            return Err(E::custom("a matching rule must be an object"));
        };
        let id = match o.get("id") {
            Some(Value::String(s)) => s.parse::<u64>().ok(),
            Some(Value::Number(n)) => n.as_u64(),
            _ => None,
        }
        .ok_or_else(|| E::custom("a matching rule needs an \"id\" (a non-negative integer)"))?;
        let tag = match o.get("tag") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(Arc::from(s.as_str())),
            Some(_) => return Err(E::custom("a matching rule's \"tag\" must be a string")),
        };
        Ok(MatchingRule { id: RuleId::from_u64(id), tag })
    }

    impl Serialize for MatchingRules {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            self.as_slice().serialize(s)
        }
    }

    impl<'de> Deserialize<'de> for MatchingRules {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            Ok(Vec::<MatchingRule>::deserialize(d)?.into())
        }
    }

    impl<'de> Deserialize<'de> for MatchingRule {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            rule_from_value(&Value::deserialize(d)?)
        }
    }

    impl Serialize for DisconnectCode {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_u32(self.0)
        }
    }

    impl<'de> Deserialize<'de> for DisconnectCode {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            u32::deserialize(d).map(DisconnectCode)
        }
    }

    /// `{"key": {…}}` with the inner object's fields.
    struct Wrapped<'a>(&'static str, &'a Delivery);

    impl Serialize for Wrapped<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            match self.1 {
                Delivery::Limit { track } => {
                    let mut st = s.serialize_struct("limit", 1)?;
                    st.serialize_field("track", track)?;
                    st.end()
                }
                Delivery::Warning { code, message, percent_full } => {
                    let mut st = s.serialize_struct("warning", 3)?;
                    st.serialize_field("code", code)?;
                    st.serialize_field("message", message)?;
                    st.serialize_field("percent_full", percent_full)?;
                    st.end()
                }
                Delivery::Disconnect { code, stream_name, reason } => {
                    let mut st = s.serialize_struct("disconnect", 3)?;
                    st.serialize_field("code", code)?;
                    st.serialize_field("stream_name", stream_name)?;
                    st.serialize_field("reason", reason)?;
                    st.end()
                }
                Delivery::Match { .. } => Err(serde::ser::Error::custom(self.0)),
            }
        }
    }

    impl Serialize for Delivery {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let key = match self {
                Delivery::Match { message, matching_rules } => {
                    let built;
                    let object: &Map<String, Value> = match &message.source {
                        Some(source) => source,
                        None => {
                            built = match message.to_json_value() {
                                Value::Object(o) => o,
                                _ => Map::new(),
                            };
                            &built
                        }
                    };
                    let mut map = s.serialize_map(None)?;
                    let backfill = matching_rules.is_backfill();
                    for (k, v) in object {
                        if k != "matching_rules"
                            && !(k == "reaction" && matching_rules.1.is_some())
                            && !(k == "backfill" && backfill)
                        {
                            map.serialize_entry(k, v)?;
                        }
                    }
                    map.serialize_entry("matching_rules", matching_rules)?;
                    if backfill {
                        map.serialize_entry("backfill", &true)?;
                    }
                    if let Some(cell) = &matching_rules.1 {
                        map.serialize_entry("reaction", &cell.get(message).to_json())?;
                    }
                    return map.end();
                }
                Delivery::Limit { .. } => "limit",
                Delivery::Warning { .. } => "warning",
                Delivery::Disconnect { .. } => "disconnect",
            };
            let mut map = s.serialize_map(Some(1))?;
            map.serialize_entry(key, &Wrapped(key, self))?;
            map.end()
        }
    }

    fn control<E: serde::de::Error>(key: &str, body: &Map<String, Value>) -> Result<Delivery, E> {
        let string = |k: &str| match body.get(k) {
            Some(Value::String(s)) => Ok(s.clone()),
            _ => Err(E::custom(format!("\"{key}\" needs a string \"{k}\""))),
        };
        let number = |k: &str| {
            body.get(k)
                .and_then(Value::as_u64)
                .ok_or_else(|| E::custom(format!("\"{key}\" needs a number \"{k}\"")))
        };
        Ok(match key {
            "limit" => Delivery::Limit { track: number("track")? },
            "warning" => Delivery::Warning {
                code: string("code")?,
                message: string("message").unwrap_or_default(),
                percent_full: u8::try_from(number("percent_full")?)
                    .map_err(|_| E::custom("\"percent_full\" must be at most 255"))?,
            },
            _ => Delivery::Disconnect {
                code: DisconnectCode(
                    u32::try_from(number("code")?).map_err(|_| E::custom("code out of range"))?,
                ),
                stream_name: string("stream_name").unwrap_or_default(),
                reason: string("reason").unwrap_or_default(),
            },
        })
    }

    impl<'de> Deserialize<'de> for Delivery {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            let Value::Object(mut object) = Value::deserialize(d)? else {
                return Err(D::Error::custom("a delivery must be a JSON object"));
            };
            if object.len() == 1 {
                if let Some((key, Value::Object(body))) = object.iter().next() {
                    if matches!(key.as_str(), "limit" | "warning" | "disconnect") {
                        return control(key, body);
                    }
                }
            }
            let rules: MatchingRules = match object.shift_remove("matching_rules") {
                Some(Value::Array(items)) => {
                    items.iter().map(rule_from_value).collect::<Result<Vec<_>, _>>()?.into()
                }
                None | Some(Value::Null) => MatchingRules::new(),
                Some(_) => return Err(D::Error::custom("\"matching_rules\" must be an array")),
            };
            // The flag the engine writes (a message's own `backfill` field that is not
            // `true` stays in the message).
            let rules = if object.get("backfill") == Some(&Value::Bool(true)) {
                object.shift_remove("backfill");
                rules.backfill()
            } else {
                rules
            };
            let message = Message::from_json_value(
                Value::Object(object),
                crate::message::MessageFormat::Auto,
            )
            .map_err(D::Error::custom)?;
            Ok(Delivery::Match { message: Arc::new(message), matching_rules: rules })
        }
    }

    impl Delivery {
        /// The delivery as a JSON value (the shapes are listed on [`Delivery`]).
        pub fn to_json_value(&self) -> Value {
            serde_json::to_value(self).unwrap_or(Value::Null)
        }

        /// The delivery as one line of JSON, without the line feed.
        pub fn to_json_line(&self) -> String {
            serde_json::to_string(self).unwrap_or_default()
        }
    }
}

#[cfg(all(test, feature = "json"))]
mod tests {
    use super::*;

    fn round_trip(d: &Delivery) -> Delivery {
        serde_json::from_str(&d.to_json_line()).unwrap()
    }

    #[test]
    fn control_notices_have_the_protocol_shapes() {
        let limit = Delivery::Limit { track: 42 };
        assert_eq!(limit.to_json_line(), r#"{"limit":{"track":42}}"#);
        let warning = Delivery::falling_behind(60, "Hurry.");
        let line = warning.to_json_line();
        assert!(line.starts_with(r#"{"warning":{"code":"FALLING_BEHIND","message":"#), "{line}");
        assert!(line.ends_with(r#","percent_full":60}}"#), "{line}");
        let bye = Delivery::Disconnect {
            code: DisconnectCode::STALL,
            stream_name: "alice".into(),
            reason: "too slow".into(),
        };
        assert_eq!(
            bye.to_json_line(),
            r#"{"disconnect":{"code":4,"stream_name":"alice","reason":"too slow"}}"#
        );
        for d in [limit, warning, bye] {
            assert_eq!(round_trip(&d), d);
        }
    }

    #[test]
    fn matching_rules_hold_one_rule_inline_and_compare_by_content() {
        let rule = |i| MatchingRule::new(RuleId::from_u64(i), None);
        let mut grown = MatchingRules::new();
        assert!(grown.is_empty());
        grown.push(rule(1));
        assert!(matches!(grown.0, RulesRepr::One(_)), "one rule, no allocation");
        assert_eq!(grown, [rule(1)]);
        grown.push(rule(2));
        grown.push(rule(3));
        assert_eq!(grown, vec![rule(1), rule(2), rule(3)]);
        for n in 0..4 {
            let v: Vec<MatchingRule> = (0..n).map(rule).collect();
            let from_vec = MatchingRules::from(v.clone());
            let collected: MatchingRules = v.iter().cloned().collect();
            assert_eq!(from_vec, collected);
            assert_eq!(from_vec.len(), n as usize);
            assert_eq!(from_vec.clone().into_vec(), v);
            assert_eq!(collected.into_iter().collect::<Vec<_>>(), v);
            assert_eq!(format!("{from_vec:?}"), format!("{v:?}"));
        }
        // Equal lists hash alike, however they were built.
        let state = std::hash::RandomState::new();
        let hash = |r: &MatchingRules| std::hash::BuildHasher::hash_one(&state, r);
        let one = MatchingRules::from(rule(7));
        let mut pushed = MatchingRules::new();
        pushed.push(rule(7));
        assert_eq!(one, pushed);
        assert_eq!(hash(&one), hash(&pushed));
    }

    #[test]
    fn a_match_is_the_message_plus_matching_rules() {
        let source = r#"{"id_str":"7","text":"hi","matching_rules":"stale","x":[1]}"#;
        let d = Delivery::Match {
            message: Arc::new(Message::from_json(source).unwrap()),
            matching_rules: vec![
                MatchingRule::new(RuleId::from_u64(3), Some("t".into())),
                MatchingRule::new(RuleId::from_u64(9), None),
            ]
            .into(),
        };
        assert_eq!(
            d.to_json_line(),
            r#"{"id_str":"7","text":"hi","x":[1],"matching_rules":[{"id":"3","tag":"t"},{"id":"9"}]}"#
        );
        let back = round_trip(&d);
        let Delivery::Match { message, matching_rules } = &back else { panic!("{back:?}") };
        assert_eq!(message.id, "7");
        assert_eq!(
            matching_rules,
            &[
                MatchingRule::new(RuleId::from_u64(3), Some("t".into())),
                MatchingRule::new(RuleId::from_u64(9), None)
            ]
        );
        // Without a source object, the simple shape is written.
        let plain = Delivery::Match {
            message: Arc::new(Message::new("1", "yo")),
            matching_rules: MatchingRule::new(RuleId::from_u64(1), None).into(),
        };
        assert_eq!(plain.to_json_line(), r#"{"id":"1","text":"yo","matching_rules":[{"id":"1"}]}"#);
    }

    #[test]
    fn a_backfill_delivery_is_flagged_in_rust_and_in_json() {
        let rule = MatchingRule::new(RuleId::from_u64(4), Some("t".into()));
        let live = Delivery::Match {
            message: Arc::new(Message::new("1", "yo")),
            matching_rules: rule.clone().into(),
        };
        assert!(!live.is_backfill());
        assert!(!live.to_json_line().contains("backfill"));
        let backfill = Delivery::Match {
            message: Arc::new(Message::new("1", "yo")),
            matching_rules: MatchingRules::from(rule.clone()).backfill(),
        };
        assert!(backfill.is_backfill());
        assert_ne!(backfill, live, "the flag is part of the delivery");
        assert_eq!(
            backfill.to_json_line(),
            r#"{"id":"1","text":"yo","matching_rules":[{"id":"4","tag":"t"}],"backfill":true}"#
        );
        let back = round_trip(&backfill);
        assert!(back.is_backfill());
        assert_eq!(back.to_json_line(), backfill.to_json_line());
        assert!(!round_trip(&live).is_backfill());
        // Flagged rules keep their list; a message's own `backfill` field other than `true`
        // stays in the message.
        let mut rules = MatchingRules::from(rule.clone()).backfill();
        rules.push(MatchingRule::new(RuleId::from_u64(5), None));
        assert!(rules.is_backfill());
        assert_eq!(rules.len(), 2);
        let own: Delivery =
            serde_json::from_str(r#"{"id":"2","text":"x","backfill":"no","matching_rules":[]}"#)
                .unwrap();
        assert!(!own.is_backfill());
        assert!(own.to_json_line().contains(r#""backfill":"no""#));
        // The flag costs the usual delivery no byte (40 without the backfill variant too).
        assert_eq!(std::mem::size_of::<MatchingRules>(), 40);
    }
}

#[cfg(test)]
mod rules_tests {
    use super::*;

    /// The list's own drop gives back every rule's tag: one rule, several, and the list
    /// emptied by `into_vec`.
    #[test]
    fn dropping_rules_releases_their_tags() {
        let tag: Arc<str> = Arc::from("news");
        let rule = |id| MatchingRule::new(RuleId::from_u64(id), Some(tag.clone()));
        let one = MatchingRules::from(rule(1));
        let mut many = MatchingRules::from(rule(2));
        many.push(rule(3));
        many.push(rule(4));
        assert_eq!(Arc::strong_count(&tag), 5);
        assert_eq!(many.iter().map(|r| r.id.as_u64()).collect::<Vec<_>>(), [2, 3, 4]);
        drop(one);
        assert_eq!(Arc::strong_count(&tag), 4);
        let cloned = many.clone();
        assert_eq!(Arc::strong_count(&tag), 7);
        drop(many);
        assert_eq!(Arc::strong_count(&tag), 4);
        let v = cloned.into_vec();
        assert_eq!(v.len(), 3);
        assert_eq!(Arc::strong_count(&tag), 4);
        drop(v);
        assert_eq!(Arc::strong_count(&tag), 1);
        assert!(MatchingRules::new().is_empty());
        assert_eq!(MatchingRules::from(Vec::new()).len(), 0);
    }
}
