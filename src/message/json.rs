//! Reading messages from JSON (feature `json`; [rule language](crate::rule_language), sections
//! 1 and 3).
//!
//! Three shapes are understood:
//!
//! * the simple shape `{"id": …, "text": …, …}`, whose keys are named after the [`Message`]
//!   fields;
//! * Twitter API v1.1 tweet JSON (`id_str`, `text` / `full_text` / `extended_tweet.full_text`,
//!   `user`, `entities`, `extended_entities`, `retweeted_status`, `quoted_status`, …);
//! * Twitter API v2 tweet JSON, `{"data": tweet, "includes": {…}}` or a bare tweet object.
//!
//! [`MessageFormat::Auto`] picks the shape from the keys present. Every reader keeps the original
//! top-level object in [`Message::source`], so that output can echo the input unchanged.
//!
//! Entity lists follow the rule language: a key that is missing or `null` gives `None` (the
//! entities are then extracted from the text), `[]` gives `Some(vec![])`. In Twitter JSON a
//! present `entities` object is authoritative: a list missing inside it means "none", not
//! "absent".

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Number, Value};

use super::{GeoBox, Message, UrlEntity};

type Object = Map<String, Value>;

/// The JSON shape a message is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum MessageFormat {
    /// Detect the shape from the keys present (`null` values do not count): a `data` object
    /// without a top-level `text`, or `author_id`, `edit_history_tweet_ids` or
    /// `referenced_tweets`, means v2; `id_str`, `full_text`, `extended_tweet` or `entities`
    /// means v1.1, and so does a `user` object or a `retweeted_status` unless a key only the
    /// simple shape uses (`hashtags`, `mentions`, `urls`, `is_quote`, `user_id`, …, even with a
    /// `null` or `[]` value) is present; anything else is the simple shape.
    #[default]
    Auto,
    /// The simple shape `{"id": …, "text": …, …}` with keys named after the [`Message`] fields.
    Simple,
    /// Twitter API v1.1 tweet JSON.
    TwitterV1,
    /// Twitter API v2 tweet JSON: `{"data": tweet, "includes": {…}}` or a bare tweet object.
    TwitterV2,
}

/// Why a JSON message could not be read.
#[derive(Debug)]
#[non_exhaustive]
pub enum JsonError {
    /// The input is not valid JSON. This includes escapes of lone surrogates such as
    /// `"\ud800"`, which cannot be turned into a Rust string.
    Syntax(serde_json::Error),
    /// The input bytes are not valid UTF-8.
    InvalidUtf8(std::str::Utf8Error),
    /// The JSON value is valid but not an object.
    NotAnObject,
    /// No message text was found in any of the places the format keeps it.
    MissingText,
    /// An object holds the same key twice (`{"text":"ham","text":"spam"}`): which one counts
    /// would be a guess, so the message is refused.
    DuplicateKey {
        /// The repeated key.
        key: String,
        /// The 1-based line of the input where the second occurrence was read.
        line: usize,
        /// The 1-based column just after the second occurrence of the key.
        column: usize,
    },
    /// A field has the wrong type or an out-of-range value.
    InvalidField {
        /// The path of the field, e.g. `coordinates` or `data.entities.hashtags[2]`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonError::Syntax(e) => write!(f, "invalid JSON: {e}"),
            JsonError::InvalidUtf8(e) => write!(f, "message is not valid UTF-8: {e}"),
            JsonError::NotAnObject => f.write_str("a message must be a JSON object"),
            JsonError::MissingText => f.write_str(
                "message has no text (looked for `text`, `full_text`, \
                 `extended_tweet.full_text` and `note_tweet.text`)",
            ),
            JsonError::InvalidField { field, reason } => {
                write!(f, "invalid field `{field}`: {reason}")
            }
            JsonError::DuplicateKey { key, line, column } => {
                write!(f, "duplicate key `{key}` at line {line}, column {column}")
            }
        }
    }
}

impl std::error::Error for JsonError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            JsonError::Syntax(e) => Some(e),
            JsonError::InvalidUtf8(e) => Some(e),
            _ => None,
        }
    }
}

impl From<serde_json::Error> for JsonError {
    fn from(e: serde_json::Error) -> Self {
        JsonError::Syntax(e)
    }
}

impl Message {
    /// Reads a message from one line of JSON, detecting its shape ([`MessageFormat::Auto`]).
    ///
    /// A leading byte order mark is ignored. For example
    /// `{"id": 7, "text": "hello #world", "hashtags": null}` gives a message with id `"7"` and
    /// `hashtags: None` (absent: extracted from the text later).
    ///
    /// ```
    /// use streamtrack::Message;
    ///
    /// let m = Message::from_json(r#"{"id": 7, "text": "hello #world", "lang": "en"}"#)?;
    /// assert_eq!((m.id.as_str(), m.text.as_str(), m.lang.as_deref()), ("7", "hello #world", Some("en")));
    /// assert_eq!(m.hashtags, None);
    /// // A bad line is an error that says where.
    /// let err = Message::from_json(r#"{"id": 7, "text": }"#).unwrap_err();
    /// assert!(err.to_string().contains("column"), "{err}");
    /// # Ok::<(), streamtrack::message::JsonError>(())
    /// ```
    pub fn from_json(line: &str) -> Result<Message, JsonError> {
        Self::from_json_with(line, MessageFormat::Auto)
    }

    /// Reads a message from one line of JSON in the given shape.
    ///
    /// A leading byte order mark is ignored.
    ///
    /// An object holding a key twice, at any depth, is [`JsonError::DuplicateKey`]. An integer
    /// `id` too large for 64 bits (`{"id": 123456789012345678901234567890, …}`) is kept as its
    /// decimal digits (the echoed [`Message::source`] holds serde_json's `f64` of it).
    pub fn from_json_with(line: &str, format: MessageFormat) -> Result<Message, JsonError> {
        Self::from_json_unmarked(line.strip_prefix('\u{feff}').unwrap_or(line), format)
    }

    /// [`Message::from_json_with`] once the byte order mark (one at most) is dropped.
    fn from_json_unmarked(line: &str, format: MessageFormat) -> Result<Message, JsonError> {
        let value = parse_strict(line)?;
        let Value::Object(map) = value else {
            return Err(JsonError::NotAnObject);
        };
        // Only an integer id beyond 64 bits needs the digits as written.
        let raw_id = match map.get("id") {
            Some(Value::Number(n)) if !(n.is_u64() || n.is_i64()) => {
                raw_top_level_value(line, "id").filter(|raw| is_decimal_integer(raw))
            }
            _ => None,
        };
        read_object(map, format, raw_id)
    }

    /// Reads a message from JSON bytes, detecting its shape ([`MessageFormat::Auto`]).
    ///
    /// Bytes that are not UTF-8 give [`JsonError::InvalidUtf8`]; a leading UTF-8 byte order
    /// mark is ignored.
    pub fn from_json_bytes(bytes: &[u8]) -> Result<Message, JsonError> {
        // One mark, as `from_json` drops (dropping one here and another in `from_json_with`
        // accepted two); UTF-8 errors count bytes after it.
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let line = std::str::from_utf8(bytes).map_err(JsonError::InvalidUtf8)?;
        Self::from_json_unmarked(line, MessageFormat::Auto)
    }

    /// Reads a message from a parsed JSON value in the given shape.
    ///
    /// The value must be an object; it is kept, unchanged, in [`Message::source`]. A parsed
    /// value can no longer show duplicate keys (serde_json kept the last one) nor the digits
    /// of an integer beyond 64 bits (an `id` like that is an error here): read text with
    /// [`Message::from_json`] to have both checked.
    pub fn from_json_value(value: Value, format: MessageFormat) -> Result<Message, JsonError> {
        let Value::Object(map) = value else {
            return Err(JsonError::NotAnObject);
        };
        read_object(map, format, None)
    }

    /// A field of the JSON object the message was read from, by key: the fields the crate
    /// does not interpret (a post's `sentiment`, `created_at`, …) are reached this way.
    /// `None` when the key is absent or the message was not read from JSON.
    ///
    /// ```
    /// use streamtrack::Message;
    /// let m = Message::from_json(r#"{"id":"1","text":"great","sentiment":2.5}"#).unwrap();
    /// assert_eq!(m.json_field("sentiment").and_then(|v| v.as_f64()), Some(2.5));
    /// assert!(m.json_field("created_at").is_none());
    /// ```
    pub fn json_field(&self, key: &str) -> Option<&Value> {
        self.source.as_deref().and_then(|map| map.get(key))
    }

    /// The message as JSON.
    ///
    /// When the message was read from JSON ([`Message::source`] is set) this is a copy of the
    /// object it was read from, unknown fields and key order included. Otherwise it is the simple
    /// shape with `id`, `text` and only the fields that are set (flags only when `true`, URL
    /// entities as `{"expanded_url": …, "display_url": …}`, the place as
    /// `{"west": …, "south": …, "east": …, "north": …}`, non-finite numbers left out). Reading it
    /// back with [`Message::from_json`] gives the same message when its fields are valid
    /// (coordinates in range, entity names non-empty and without a leading sigil).
    pub fn to_json_value(&self) -> Value {
        if let Some(source) = &self.source {
            return Value::Object(Object::clone(source));
        }
        let mut o = Object::new();
        o.insert("id".into(), Value::String(self.id.clone()));
        o.insert("text".into(), Value::String(self.text.clone()));
        put_str(&mut o, "user", &self.user);
        put_str(&mut o, "user_id", &self.user_id);
        put_str(&mut o, "lang", &self.lang);
        put_urls(&mut o, "urls", &self.urls);
        put_urls(&mut o, "media", &self.media);
        put_strs(&mut o, "hashtags", &self.hashtags);
        put_strs(&mut o, "mentions", &self.mentions);
        put_strs(&mut o, "cashtags", &self.cashtags);
        if let Some((lon, lat)) = self.coordinates {
            if let (Some(lon), Some(lat)) = (Number::from_f64(lon), Number::from_f64(lat)) {
                o.insert("coordinates".into(), Value::Array(vec![lon.into(), lat.into()]));
            }
        }
        if let Some(b) = self.place {
            let numbers = [b.west, b.south, b.east, b.north].map(Number::from_f64);
            if let [Some(w), Some(s), Some(e), Some(n)] = numbers {
                let mut p = Object::new();
                p.insert("west".into(), w.into());
                p.insert("south".into(), s.into());
                p.insert("east".into(), e.into());
                p.insert("north".into(), n.into());
                o.insert("place".into(), Value::Object(p));
            }
        }
        for (key, set) in [
            ("is_retweet", self.is_retweet),
            ("is_reply", self.is_reply),
            ("is_quote", self.is_quote),
        ] {
            if set {
                o.insert(key.into(), Value::Bool(true));
            }
        }
        put_str(&mut o, "quoted_text", &self.quoted_text);
        put_str(&mut o, "retweeted_text", &self.retweeted_text);
        put_str(&mut o, "in_reply_to_screen_name", &self.in_reply_to_user);
        put_str(&mut o, "in_reply_to_user_id", &self.in_reply_to_user_id);
        Value::Object(o)
    }
}

fn put_str(o: &mut Object, key: &str, value: &Option<String>) {
    if let Some(v) = value {
        o.insert(key.into(), Value::String(v.clone()));
    }
}

fn put_strs(o: &mut Object, key: &str, value: &Option<Vec<String>>) {
    if let Some(v) = value {
        let items = v.iter().map(|s| Value::String(s.clone())).collect();
        o.insert(key.into(), Value::Array(items));
    }
}

fn put_urls(o: &mut Object, key: &str, value: &Option<Vec<UrlEntity>>) {
    if let Some(v) = value {
        let items = v
            .iter()
            .map(|u| {
                let mut e = Object::new();
                let text = |s: &Option<String>| s.clone().map_or(Value::Null, Value::String);
                e.insert("expanded_url".into(), text(&u.expanded_url));
                e.insert("display_url".into(), text(&u.display_url));
                Value::Object(e)
            })
            .collect();
        o.insert(key.into(), Value::Array(items));
    }
}

/// Reads a message from a JSON object in `format`; `raw_id` is the text of a top-level integer
/// `id` too large for 64 bits.
fn read_object(
    map: Object,
    format: MessageFormat,
    raw_id: Option<&str>,
) -> Result<Message, JsonError> {
    let format = match format {
        MessageFormat::Auto => detect(&map),
        other => other,
    };
    let mut message = match format {
        MessageFormat::TwitterV1 => read_v1(&map, raw_id)?,
        MessageFormat::TwitterV2 => read_v2(&map)?,
        MessageFormat::Simple | MessageFormat::Auto => read_simple(&map, raw_id)?,
    };
    message.timestamp = super::time::timestamp_of(&map, format)?;
    message.source = Some(Arc::new(map));
    Ok(message)
}

// ---------------------------------------------------------------------------------------------
// Strict parsing: serde_json's `Value`, but a key repeated in an object is an error.

/// Parses `line` as JSON, refusing duplicate keys at any depth.
fn parse_strict(line: &str) -> Result<Value, JsonError> {
    use serde::de::DeserializeSeed;
    let duplicate = std::cell::RefCell::new(None);
    let mut de = serde_json::Deserializer::from_str(line);
    let parsed = Strict(&duplicate).deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    match parsed {
        Ok(v) => Ok(v),
        Err(e) => match duplicate.into_inner() {
            Some(key) => Err(JsonError::DuplicateKey { key, line: e.line(), column: e.column() }),
            None => Err(JsonError::Syntax(e)),
        },
    }
}

/// A seed building a [`Value`]; records the first duplicate key it meets.
#[derive(Clone, Copy)]
struct Strict<'a>(&'a std::cell::RefCell<Option<String>>);

impl<'de> serde::de::DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(v) = seq.next_element_seed(self)? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Object::new();
        while let Some(key) = map.next_key::<String>()? {
            match object.entry(key) {
                serde_json::map::Entry::Vacant(slot) => {
                    slot.insert(map.next_value_seed(self)?);
                }
                serde_json::map::Entry::Occupied(slot) => {
                    let key = slot.key().clone();
                    let message = format!("duplicate key `{key}`");
                    *self.0.borrow_mut() = Some(key);
                    return Err(serde::de::Error::custom(message));
                }
            }
        }
        Ok(Value::Object(object))
    }
}

/// The text of the value of the top-level key `key` in `line`, a JSON object that parsed.
/// Keys written with escapes are not recognised (then `None`).
fn raw_top_level_value<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let b = line.as_bytes();
    let (mut i, mut depth, mut at_key) = (0, 0usize, false);
    while i < b.len() {
        match b[i] {
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                let name = line.get(start..i)?;
                i += 1;
                if depth == 1 && at_key {
                    at_key = false;
                    if name == key {
                        let rest = line.get(i..)?.trim_start().strip_prefix(':')?.trim_start();
                        let end =
                            rest.find([',', '}', ' ', '\t', '\n', '\r']).unwrap_or(rest.len());
                        return Some(&rest[..end]);
                    }
                }
                continue;
            }
            b'{' | b'[' => {
                depth += 1;
                at_key = depth == 1;
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b',' if depth == 1 => at_key = true,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Whether `s` is an integer written in decimal: `-?[0-9]+`.
fn is_decimal_integer(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

// ---------------------------------------------------------------------------------------------
// Field paths for error messages (built only when an error is reported).

#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl<'a> Path<'a> {
    fn key<'b>(&'b self, key: &'b str) -> Path<'b> {
        Path::Key(self, key)
    }

    fn index(&self, i: usize) -> Path<'_> {
        Path::Index(self, i)
    }

    fn invalid(&self, reason: impl Into<String>) -> JsonError {
        JsonError::InvalidField { field: self.to_string(), reason: reason.into() }
    }

    fn expected(&self, what: &str, found: &Value) -> JsonError {
        self.invalid(format!("expected {what}, found {}", kind(found)))
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Key(Path::Root, k) => f.write_str(k),
            Path::Key(p, k) => write!(f, "{p}.{k}"),
            Path::Index(p, i) => write!(f, "{p}[{i}]"),
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

// ---------------------------------------------------------------------------------------------
// Typed getters. A missing key and `null` are the same: absent.

fn get<'v>(obj: &'v Object, key: &str) -> Option<&'v Value> {
    obj.get(key).filter(|v| !v.is_null())
}

fn present(obj: &Object, key: &str) -> bool {
    get(obj, key).is_some()
}

fn get_str(obj: &Object, at: Path<'_>, key: &str) -> Result<Option<String>, JsonError> {
    match get(obj, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(at.key(key).expected("a string", other)),
    }
}

/// An id: a string, or an integer written in decimal.
fn id_value(value: &Value, at: Path<'_>) -> Result<String, JsonError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) if n.is_u64() || n.is_i64() => Ok(n.to_string()),
        Value::Number(n) if n.as_f64().is_some_and(|f| f.fract() == 0.0 && f.abs() >= 1e18) => {
            Err(at.invalid("an integer too large for 64 bits: write it as a string"))
        }
        Value::Number(_) => Err(at.invalid("expected a string or an integer, found a fraction")),
        other => Err(at.expected("a string or an integer", other)),
    }
}

fn get_id(obj: &Object, at: Path<'_>, key: &str) -> Result<Option<String>, JsonError> {
    get(obj, key).map(|v| id_value(v, at.key(key))).transpose()
}

/// The message id: the first of `keys` that is present. A `null` id is an error (an id that
/// is there but says nothing is a broken producer, not an anonymous message); `raw_id` is the
/// text of a top-level `id` integer beyond 64 bits, kept as its decimal digits.
fn message_id(
    obj: &Object,
    at: Path<'_>,
    keys: &[&str],
    raw_id: Option<&str>,
) -> Result<Option<String>, JsonError> {
    for &key in keys {
        match obj.get(key) {
            None => {}
            Some(Value::Null) => {
                return Err(at.key(key).expected("a string or an integer", &Value::Null))
            }
            Some(Value::Number(_)) if key == "id" && raw_id.is_some() => {
                return Ok(raw_id.map(str::to_owned))
            }
            Some(v) => return id_value(v, at.key(key)).map(Some),
        }
    }
    Ok(None)
}

/// The first of `keys` that is present, read as an id.
fn first_id(obj: &Object, at: Path<'_>, keys: &[&str]) -> Result<Option<String>, JsonError> {
    for key in keys {
        if let Some(id) = get_id(obj, at, key)? {
            return Ok(Some(id));
        }
    }
    Ok(None)
}

fn get_bool(obj: &Object, at: Path<'_>, key: &str) -> Result<bool, JsonError> {
    match get(obj, key) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(at.key(key).expected("a boolean", other)),
    }
}

fn get_obj<'v>(obj: &'v Object, at: Path<'_>, key: &str) -> Result<Option<&'v Object>, JsonError> {
    match get(obj, key) {
        None => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(other) => Err(at.key(key).expected("an object", other)),
    }
}

// ---------------------------------------------------------------------------------------------
// Entities.

const HASHTAG_KEYS: &[&str] = &["text", "tag"];
const MENTION_KEYS: &[&str] = &["screen_name", "username"];

/// A list of entity names: `null` → `None`; otherwise an array of strings or of objects with one
/// of `keys`. One leading `sigil` is stripped; empty names are dropped.
fn name_list(
    value: Option<&Value>,
    at: Path<'_>,
    keys: &[&str],
    sigil: char,
) -> Result<Option<Vec<String>>, JsonError> {
    let items = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) => items,
        Some(other) => return Err(at.expected("an array", other)),
    };
    let mut names = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let name = match item {
            Value::String(s) => s.as_str(),
            Value::Object(o) => match keys.iter().find_map(|k| get(o, k)) {
                Some(Value::String(s)) => s.as_str(),
                Some(other) => return Err(at.index(i).expected("a string name", other)),
                None => {
                    let keys = keys.iter().map(|k| format!("`{k}`")).collect::<Vec<_>>();
                    return Err(at
                        .index(i)
                        .invalid(format!("object has no {}", keys.join(" or "))));
                }
            },
            other => return Err(at.index(i).expected("a string or an object", other)),
        };
        let name = name.strip_prefix(sigil).unwrap_or(name);
        if !name.is_empty() {
            names.push(name.to_owned());
        }
    }
    Ok(Some(names))
}

/// A name list inside an authoritative Twitter `entities` object: missing means none.
fn entity_names(
    entities: Option<(&Object, Path<'_>)>,
    key: &str,
    keys: &[&str],
    sigil: char,
) -> Result<Option<Vec<String>>, JsonError> {
    match entities {
        None => Ok(None),
        Some((e, at)) => {
            Ok(name_list(get(e, key), at.key(key), keys, sigil)?.or_else(|| Some(Vec::new())))
        }
    }
}

/// One URL entity: a string, or an object with `expanded_url`, `display_url` and/or `url`
/// (`url` stands in for a missing `expanded_url`, and for `display_url` when both are missing).
fn url_entity(item: &Value, at: Path<'_>) -> Result<UrlEntity, JsonError> {
    match item {
        Value::String(s) => Ok(UrlEntity::new(s.as_str())),
        Value::Object(o) => {
            if !["expanded_url", "display_url", "url"].iter().any(|k| o.contains_key(*k)) {
                return Err(at.invalid("object has no `expanded_url`, `display_url` or `url`"));
            }
            let expanded = get_str(o, at, "expanded_url")?;
            let display = get_str(o, at, "display_url")?;
            let url = get_str(o, at, "url")?;
            Ok(match (expanded, display) {
                (None, None) => UrlEntity { expanded_url: url.clone(), display_url: url },
                (expanded, display) => {
                    UrlEntity { expanded_url: expanded.or(url), display_url: display }
                }
            })
        }
        other => Err(at.expected("a string or an object", other)),
    }
}

/// A list of URL entities: `null` → `None`, otherwise an array of [`url_entity`] items.
fn url_list(value: Option<&Value>, at: Path<'_>) -> Result<Option<Vec<UrlEntity>>, JsonError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => {
            let mut urls = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                urls.push(url_entity(item, at.index(i))?);
            }
            Ok(Some(urls))
        }
        Some(other) => Err(at.expected("an array", other)),
    }
}

/// The author: a screen name string (leading `@` stripped), or an object with
/// `screen_name`/`username` and `id_str`/`id`. Returns (screen name, id).
fn read_user(
    value: Option<&Value>,
    at: Path<'_>,
) -> Result<(Option<String>, Option<String>), JsonError> {
    match value {
        None | Some(Value::Null) => Ok((None, None)),
        Some(Value::String(s)) => {
            let name = s.strip_prefix('@').unwrap_or(s);
            Ok(((!name.is_empty()).then(|| name.to_owned()), None))
        }
        Some(Value::Object(o)) => {
            let mut name = None;
            for key in ["screen_name", "username"] {
                if let Some(n) = get_str(o, at, key)? {
                    name = Some(n);
                    break;
                }
            }
            let id = first_id(o, at, &["id_str", "id"])?;
            Ok((name, id))
        }
        Some(other) => Err(at.expected("a string or an object", other)),
    }
}

// ---------------------------------------------------------------------------------------------
// Geography.

fn number(value: &Value, at: Path<'_>) -> Result<f64, JsonError> {
    match value.as_f64() {
        Some(x) if x.is_finite() => Ok(x),
        Some(_) => Err(at.invalid("expected a finite number")),
        None => Err(at.expected("a number", value)),
    }
}

fn check_lon(lon: f64, at: Path<'_>) -> Result<f64, JsonError> {
    if (-180.0..=180.0).contains(&lon) {
        Ok(lon)
    } else {
        Err(at.invalid(format!("longitude {lon} is outside -180..=180")))
    }
}

fn check_lat(lat: f64, at: Path<'_>) -> Result<f64, JsonError> {
    if (-90.0..=90.0).contains(&lat) {
        Ok(lat)
    } else {
        Err(at.invalid(format!("latitude {lat} is outside -90..=90")))
    }
}

/// `[lon, lat]`: exactly two finite numbers within range.
fn lon_lat(value: &Value, at: Path<'_>) -> Result<(f64, f64), JsonError> {
    match value {
        Value::Array(items) => match items.as_slice() {
            [lon, lat] => {
                let lon = number(lon, at.index(0))?;
                let lat = number(lat, at.index(1))?;
                Ok((check_lon(lon, at)?, check_lat(lat, at)?))
            }
            _ => Err(at.invalid(format!(
                "expected two numbers [longitude, latitude], found {} items",
                items.len()
            ))),
        },
        other => Err(at.expected("an array [longitude, latitude]", other)),
    }
}

/// A point: `[lon, lat]`, a GeoJSON `{"type": "Point", "coordinates": [lon, lat]}` (whose
/// `coordinates` may be `null`: no point) or `{"lon": …, "lat": …}`.
fn read_point(value: Option<&Value>, at: Path<'_>) -> Result<Option<(f64, f64)>, JsonError> {
    let o = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(v @ Value::Array(_)) => return lon_lat(v, at).map(Some),
        Some(Value::Object(o)) => o,
        Some(other) => return Err(at.expected("[longitude, latitude] or an object", other)),
    };
    if o.contains_key("coordinates") {
        match get(o, "type") {
            None => {}
            Some(Value::String(t)) if t == "Point" => {}
            Some(other) => {
                return Err(at.key("type").invalid(format!("expected \"Point\", found {other}")))
            }
        }
        return get(o, "coordinates").map(|c| lon_lat(c, at.key("coordinates"))).transpose();
    }
    let lon = ["lon", "lng", "longitude"].iter().find_map(|k| get(o, k).map(|v| (*k, v)));
    let lat = ["lat", "latitude"].iter().find_map(|k| get(o, k).map(|v| (*k, v)));
    match (lon, lat) {
        (Some((lon_key, lon)), Some((lat_key, lat))) => {
            let lon = check_lon(number(lon, at.key(lon_key))?, at.key(lon_key))?;
            let lat = check_lat(number(lat, at.key(lat_key))?, at.key(lat_key))?;
            Ok(Some((lon, lat)))
        }
        _ => Err(at.invalid(
            "expected [longitude, latitude], a GeoJSON Point or an object with `lon` and `lat`",
        )),
    }
}

/// A box from west, south, east, north, checked for range and order.
fn geo_box(w: f64, s: f64, e: f64, n: f64, at: Path<'_>) -> Result<GeoBox, JsonError> {
    check_lon(w, at)?;
    check_lon(e, at)?;
    check_lat(s, at)?;
    check_lat(n, at)?;
    if w > e {
        return Err(at.invalid(format!("west {w} is east of east {e}")));
    }
    if s > n {
        return Err(at.invalid(format!("south {s} is north of north {n}")));
    }
    Ok(GeoBox { west: w, south: s, east: e, north: n })
}

/// `[w, s, e, n]`.
fn wsen(value: &Value, at: Path<'_>) -> Result<GeoBox, JsonError> {
    match value {
        Value::Array(items) if items.len() == 4 => {
            let mut v = [0.0; 4];
            for (i, (slot, item)) in v.iter_mut().zip(items).enumerate() {
                *slot = number(item, at.index(i))?;
            }
            geo_box(v[0], v[1], v[2], v[3], at)
        }
        Value::Array(items) => Err(at.invalid(format!(
            "expected four numbers [west, south, east, north], found {} items",
            items.len()
        ))),
        other => Err(at.expected("an array [west, south, east, north]", other)),
    }
}

/// The bounding box of a GeoJSON polygon's `coordinates`: `[[[lon, lat], …]]` (rings of points)
/// or a single ring `[[lon, lat], …]`.
fn polygon_box(coords: &Value, at: Path<'_>) -> Result<GeoBox, JsonError> {
    let Value::Array(outer) = coords else {
        return Err(at.expected("an array of rings of [longitude, latitude] points", coords));
    };
    let (mut w, mut s, mut e, mut n) =
        (f64::INFINITY, f64::INFINITY, -f64::INFINITY, -f64::INFINITY);
    let mut add = |point: &Value, at: Path<'_>| -> Result<(), JsonError> {
        let (lon, lat) = lon_lat(point, at)?;
        w = w.min(lon);
        e = e.max(lon);
        s = s.min(lat);
        n = n.max(lat);
        Ok(())
    };
    for (i, ring) in outer.iter().enumerate() {
        let ring_at = at.index(i);
        match ring {
            // A ring: an array of points.
            Value::Array(points) if points.iter().all(Value::is_array) => {
                for (j, point) in points.iter().enumerate() {
                    add(point, ring_at.index(j))?;
                }
            }
            // A point: `coordinates` was a single ring.
            point => add(point, ring_at)?,
        }
    }
    if w > e || s > n {
        return Err(at.invalid("bounding box has no points"));
    }
    geo_box(w, s, e, n, at)
}

/// A place box: `[w, s, e, n]`, an object with `west`/`south`/`east`/`north`, a v1.1 place
/// (`bounding_box`: a GeoJSON polygon), an object with `bbox` (`[w, s, e, n]`), a v2 place
/// (`geo.bbox`) or a bare GeoJSON polygon. A place object without any geometry gives `None`.
fn read_place(value: Option<&Value>, at: Path<'_>) -> Result<Option<GeoBox>, JsonError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v @ Value::Array(_)) => wsen(v, at).map(Some),
        Some(Value::Object(o)) => place_object(o, at),
        Some(other) => Err(at.expected("[west, south, east, north] or an object", other)),
    }
}

/// The box of a place object (see [`read_place`]).
fn place_object(o: &Object, at: Path<'_>) -> Result<Option<GeoBox>, JsonError> {
    const SIDES: [&str; 4] = ["west", "south", "east", "north"];
    if SIDES.iter().any(|k| o.contains_key(*k)) {
        let mut v = [0.0; 4];
        for (slot, key) in v.iter_mut().zip(SIDES) {
            *slot = match get(o, key) {
                Some(x) => number(x, at.key(key))?,
                None => return Err(at.invalid(format!("`{key}` is missing"))),
            };
        }
        return geo_box(v[0], v[1], v[2], v[3], at).map(Some);
    }
    if o.contains_key("bounding_box") {
        let bb_at = at.key("bounding_box");
        return match get_obj(o, at, "bounding_box")? {
            None => Ok(None),
            Some(bb) => {
                get(bb, "coordinates").map(|c| polygon_box(c, bb_at.key("coordinates"))).transpose()
            }
        };
    }
    if let Some(bbox) = get(o, "bbox") {
        return wsen(bbox, at.key("bbox")).map(Some);
    }
    if let Some(coords) = get(o, "coordinates") {
        return polygon_box(coords, at.key("coordinates")).map(Some);
    }
    if let Some(geo) = get_obj(o, at, "geo")? {
        if let Some(bbox) = get(geo, "bbox") {
            let geo_at = at.key("geo");
            return wsen(bbox, geo_at.key("bbox")).map(Some);
        }
    }
    Ok(None)
}

// ---------------------------------------------------------------------------------------------
// Format detection.

/// Keys only the simple shape uses; a `user` object next to one of them does not make v1.1.
const SIMPLE_ONLY_KEYS: &[&str] = &[
    "user_id",
    "urls",
    "media",
    "hashtags",
    "mentions",
    "cashtags",
    "is_retweet",
    "is_reply",
    "is_quote",
    "quoted_text",
    "retweeted_text",
];

fn detect(map: &Object) -> MessageFormat {
    // A `data` object next to a top-level `text` is a payload of the simple shape, not a v2
    // envelope (an envelope never has a top-level `text`).
    if (matches!(map.get("data"), Some(Value::Object(_))) && !map.contains_key("text"))
        || ["author_id", "edit_history_tweet_ids", "referenced_tweets"]
            .iter()
            .any(|k| present(map, k))
    {
        return MessageFormat::TwitterV2;
    }
    if ["id_str", "full_text", "extended_tweet", "entities"].iter().any(|k| present(map, k)) {
        return MessageFormat::TwitterV1;
    }
    // A `user` object or a `retweeted_status` is v1.1 only when no simple-shape key is there:
    // the simple shape marks a retweet with `retweeted_status` too, and its entity keys must
    // not be dropped.
    if (matches!(map.get("user"), Some(Value::Object(_))) || present(map, "retweeted_status"))
        && !SIMPLE_ONLY_KEYS.iter().any(|k| map.contains_key(*k))
    {
        return MessageFormat::TwitterV1;
    }
    MessageFormat::Simple
}

// ---------------------------------------------------------------------------------------------
// The simple shape.

fn read_simple(map: &Object, raw_id: Option<&str>) -> Result<Message, JsonError> {
    let at = Path::Root;
    let text = get_str(map, at, "text")?.ok_or(JsonError::MissingText)?;
    let id = message_id(map, at, &["id"], raw_id)?.unwrap_or_default();
    let (user, user_id_of_user) = read_user(map.get("user"), at.key("user"))?;
    let user_id = get_id(map, at, "user_id")?.or(user_id_of_user);

    // Twitter-style markers are honoured too (rule language: `is:retweet` = `is_retweet` or
    // `retweeted_status`, and so on).
    let retweeted = get_obj(map, at, "retweeted_status")?;
    let quoted = get_obj(map, at, "quoted_status")?;
    let retweeted_text = match get_str(map, at, "retweeted_text")? {
        Some(t) => Some(t),
        None => retweeted.map(|r| v1_text(r, at.key("retweeted_status"))).transpose()?.flatten(),
    };
    let quoted_text = match get_str(map, at, "quoted_text")? {
        Some(t) => Some(t),
        None => quoted.map(|q| v1_text(q, at.key("quoted_status"))).transpose()?.flatten(),
    };
    let in_reply_to_user = match get_str(map, at, "in_reply_to_screen_name")? {
        Some(name) => Some(name),
        None => get_str(map, at, "in_reply_to_user")?,
    };

    Ok(Message {
        id,
        text,
        user,
        user_id,
        lang: get_str(map, at, "lang")?,
        urls: url_list(map.get("urls"), at.key("urls"))?,
        media: url_list(map.get("media"), at.key("media"))?,
        hashtags: name_list(map.get("hashtags"), at.key("hashtags"), HASHTAG_KEYS, '#')?,
        mentions: name_list(map.get("mentions"), at.key("mentions"), MENTION_KEYS, '@')?,
        cashtags: name_list(map.get("cashtags"), at.key("cashtags"), HASHTAG_KEYS, '$')?,
        coordinates: read_point(map.get("coordinates"), at.key("coordinates"))?,
        place: read_place(map.get("place"), at.key("place"))?,
        is_retweet: get_bool(map, at, "is_retweet")? || retweeted.is_some(),
        is_reply: get_bool(map, at, "is_reply")?
            || present(map, "in_reply_to_status_id")
            || present(map, "in_reply_to_status_id_str"),
        is_quote: get_bool(map, at, "is_quote")?
            || get_bool(map, at, "is_quote_status")?
            || quoted.is_some(),
        quoted_text,
        retweeted_text,
        in_reply_to_user,
        in_reply_to_user_id: first_id(
            map,
            at,
            &["in_reply_to_user_id", "in_reply_to_user_id_str"],
        )?,
        ..Message::default()
    })
}

// ---------------------------------------------------------------------------------------------
// Twitter v1.1.

/// The full text of a v1.1 tweet: `extended_tweet.full_text`, else `full_text`, else `text`.
fn v1_text(tweet: &Object, at: Path<'_>) -> Result<Option<String>, JsonError> {
    if let Some(ext) = get_obj(tweet, at, "extended_tweet")? {
        if let Some(text) = get_str(ext, at.key("extended_tweet"), "full_text")? {
            return Ok(Some(text));
        }
    }
    if let Some(text) = get_str(tweet, at, "full_text")? {
        return Ok(Some(text));
    }
    get_str(tweet, at, "text")
}

fn read_v1(map: &Object, raw_id: Option<&str>) -> Result<Message, JsonError> {
    let at = Path::Root;
    let text = v1_text(map, at)?.ok_or(JsonError::MissingText)?;
    let id = message_id(map, at, &["id_str", "id"], raw_id)?.unwrap_or_default();
    let (user, user_id) = read_user(map.get("user"), at.key("user"))?;

    // Entities of the full text when the tweet is extended.
    let ext_at = at.key("extended_tweet");
    let ext = get_obj(map, at, "extended_tweet")?;
    let (ext_entities, ext_extended) = match ext {
        Some(x) => (get_obj(x, ext_at, "entities")?, get_obj(x, ext_at, "extended_entities")?),
        None => (None, None),
    };
    let ents_at_ext = ext_at.key("entities");
    let ents_at_top = at.key("entities");
    let entities = match ext_entities {
        Some(e) => Some((e, ents_at_ext)),
        None => get_obj(map, at, "entities")?.map(|e| (e, ents_at_top)),
    };
    let xents_at_ext = ext_at.key("extended_entities");
    let xents_at_top = at.key("extended_entities");
    let extended = match ext_extended {
        Some(e) => Some((e, xents_at_ext)),
        None => get_obj(map, at, "extended_entities")?.map(|e| (e, xents_at_top)),
    };

    let urls = match entities {
        Some((e, e_at)) => Some(url_list(get(e, "urls"), e_at.key("urls"))?.unwrap_or_default()),
        None => None,
    };
    let media_in = |found: Option<(&Object, Path<'_>)>| match found {
        Some((e, e_at)) => url_list(get(e, "media"), e_at.key("media")),
        None => Ok(None),
    };
    let media = match media_in(extended)? {
        Some(m) => Some(m),
        None => media_in(entities)?
            .or_else(|| (entities.is_some() || extended.is_some()).then(Vec::new)),
    };

    let retweeted = get_obj(map, at, "retweeted_status")?;
    let quoted = get_obj(map, at, "quoted_status")?;
    let retweeted_text =
        retweeted.map(|r| v1_text(r, at.key("retweeted_status"))).transpose()?.flatten();
    let quoted_text = quoted.map(|q| v1_text(q, at.key("quoted_status"))).transpose()?.flatten();

    Ok(Message {
        id,
        text,
        user,
        user_id,
        lang: get_str(map, at, "lang")?,
        urls,
        media,
        hashtags: entity_names(entities, "hashtags", HASHTAG_KEYS, '#')?,
        mentions: entity_names(entities, "user_mentions", MENTION_KEYS, '@')?,
        cashtags: entity_names(entities, "symbols", HASHTAG_KEYS, '$')?,
        coordinates: read_point(map.get("coordinates"), at.key("coordinates"))?,
        place: read_place(map.get("place"), at.key("place"))?,
        is_retweet: retweeted.is_some(),
        is_reply: present(map, "in_reply_to_status_id")
            || present(map, "in_reply_to_status_id_str"),
        is_quote: quoted.is_some() || get_bool(map, at, "is_quote_status")?,
        quoted_text,
        retweeted_text,
        in_reply_to_user: get_str(map, at, "in_reply_to_screen_name")?,
        in_reply_to_user_id: first_id(
            map,
            at,
            &["in_reply_to_user_id_str", "in_reply_to_user_id"],
        )?,
        ..Message::default()
    })
}

// ---------------------------------------------------------------------------------------------
// Twitter v2.

/// The object of `list` (an array in `includes`) whose `id` is `id`, with its index. Malformed
/// `includes` entries are skipped.
fn find_by_id<'v>(list: Option<&'v Value>, id: &str) -> Option<(usize, &'v Object)> {
    let Some(Value::Array(items)) = list else {
        return None;
    };
    items.iter().enumerate().find_map(|(i, item)| {
        let o = item.as_object()?;
        let matches = match o.get("id")? {
            Value::String(s) => s == id,
            Value::Number(n) => n.to_string() == id,
            _ => false,
        };
        matches.then_some((i, o))
    })
}

/// The full text of a v2 tweet: `note_tweet.text`, else `text`.
fn v2_text(tweet: &Object, at: Path<'_>) -> Result<Option<String>, JsonError> {
    if let Some(note) = get_obj(tweet, at, "note_tweet")? {
        if let Some(text) = get_str(note, at.key("note_tweet"), "text")? {
            return Ok(Some(text));
        }
    }
    get_str(tweet, at, "text")
}

/// The text of an included tweet; malformed entries give `None`.
fn included_text(tweet: &Object) -> Option<String> {
    let note = tweet.get("note_tweet").and_then(|n| n.get("text")).and_then(Value::as_str);
    note.or_else(|| tweet.get("text").and_then(Value::as_str)).map(str::to_owned)
}

fn included_username(users: Option<&Value>, id: &str) -> Option<String> {
    let (_, user) = find_by_id(users, id)?;
    user.get("username").and_then(Value::as_str).map(str::to_owned)
}

fn read_v2(map: &Object) -> Result<Message, JsonError> {
    let root = Path::Root;
    let data_at = root.key("data");
    let (tweet, at) = match map.get("data") {
        Some(Value::Object(d)) => (d, data_at),
        None | Some(Value::Null) => (map, root),
        Some(other) => return Err(data_at.expected("a tweet object", other)),
    };
    let includes = get_obj(map, root, "includes")?;
    let included = |key: &str| includes.and_then(|i| i.get(key));

    let text = v2_text(tweet, at)?.ok_or(JsonError::MissingText)?;
    let id = message_id(tweet, at, &["id", "id_str"], None)?.unwrap_or_default();
    let user_id = get_id(tweet, at, "author_id")?;
    let user = user_id.as_deref().and_then(|id| included_username(included("users"), id));

    // Entities: those of the note tweet when its text is used, else the tweet's.
    let note_at = at.key("note_tweet");
    let note_entities_at = note_at.key("entities");
    let note_entities = match get_obj(tweet, at, "note_tweet")? {
        Some(note) if present(note, "text") => get_obj(note, note_at, "entities")?,
        _ => None,
    };
    let entities_at = at.key("entities");
    let entities = match note_entities {
        Some(e) => Some((e, note_entities_at)),
        None => get_obj(tweet, at, "entities")?.map(|e| (e, entities_at)),
    };

    // URLs; an entry with a `media_key` is a media entity.
    let mut media_keys_seen: Vec<&str> = Vec::new();
    let (urls, mut media) = match entities {
        None => (None, None),
        Some((e, e_at)) => {
            let urls_at = e_at.key("urls");
            let (mut urls, mut media) = (Vec::new(), Vec::new());
            match get(e, "urls") {
                None => {}
                Some(Value::Array(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        let entity = url_entity(item, urls_at.index(i))?;
                        match item.get("media_key") {
                            Some(Value::Null) | None => urls.push(entity),
                            Some(key) => {
                                if let Some(key) = key.as_str() {
                                    media_keys_seen.push(key);
                                }
                                media.push(entity);
                            }
                        }
                    }
                }
                Some(other) => return Err(urls_at.expected("an array", other)),
            }
            (Some(urls), Some(media))
        }
    };
    // Attached media not linked from the text: their URLs from `includes.media`.
    if let Some(Value::Array(keys)) = tweet.get("attachments").and_then(|a| a.get("media_keys")) {
        for key in keys.iter().filter_map(Value::as_str) {
            if media_keys_seen.contains(&key) {
                continue;
            }
            let Some(Value::Array(items)) = included("media") else {
                break;
            };
            let found = items
                .iter()
                .filter_map(Value::as_object)
                .find(|m| m.get("media_key").and_then(Value::as_str) == Some(key));
            let url = found.and_then(|m| {
                ["url", "preview_image_url"].iter().find_map(|k| m.get(*k).and_then(Value::as_str))
            });
            if let Some(url) = url {
                media.get_or_insert_with(Vec::new).push(UrlEntity::new(url));
            }
        }
    }

    // Geography: an exact point, and the box of the tagged place from `includes.places`.
    let geo_at = at.key("geo");
    let geo = get_obj(tweet, at, "geo")?;
    let coordinates = match geo {
        Some(g) => read_point(g.get("coordinates"), geo_at.key("coordinates"))?,
        None => None,
    };
    let place_id = match geo {
        Some(g) => get_id(g, geo_at, "place_id")?,
        None => None,
    };
    let includes_at = root.key("includes");
    let places_at = includes_at.key("places");
    let place = match place_id.as_deref().and_then(|id| find_by_id(included("places"), id)) {
        Some((i, p)) => {
            let place_at = places_at.index(i);
            place_object(p, place_at)?
        }
        None => None,
    };

    // Referenced tweets.
    let (mut is_retweet, mut is_quote, mut is_reply) = (false, false, false);
    let (mut retweeted_text, mut quoted_text) = (None, None);
    let refs_at = at.key("referenced_tweets");
    match get(tweet, "referenced_tweets") {
        None => {}
        Some(Value::Array(refs)) => {
            for (i, r) in refs.iter().enumerate() {
                let r_at = refs_at.index(i);
                let Value::Object(r) = r else {
                    return Err(r_at.expected("an object", r));
                };
                let kind = get_str(r, r_at, "type")?;
                let ref_id = get_id(r, r_at, "id")?;
                let text = || {
                    let id = ref_id.as_deref()?;
                    find_by_id(included("tweets"), id).and_then(|(_, t)| included_text(t))
                };
                match kind.as_deref() {
                    Some("retweeted") => {
                        is_retweet = true;
                        retweeted_text = retweeted_text.or_else(text);
                    }
                    Some("quoted") => {
                        is_quote = true;
                        quoted_text = quoted_text.or_else(text);
                    }
                    Some("replied_to") => is_reply = true,
                    _ => {}
                }
            }
        }
        Some(other) => return Err(refs_at.expected("an array", other)),
    }

    let in_reply_to_user_id = get_id(tweet, at, "in_reply_to_user_id")?;
    let in_reply_to_user =
        in_reply_to_user_id.as_deref().and_then(|id| included_username(included("users"), id));

    Ok(Message {
        id,
        text,
        user,
        user_id,
        lang: get_str(tweet, at, "lang")?,
        urls,
        media,
        hashtags: entity_names(entities, "hashtags", HASHTAG_KEYS, '#')?,
        mentions: entity_names(entities, "mentions", MENTION_KEYS, '@')?,
        cashtags: entity_names(entities, "cashtags", HASHTAG_KEYS, '$')?,
        coordinates,
        place,
        is_retweet,
        is_reply,
        is_quote,
        quoted_text,
        retweeted_text,
        in_reply_to_user,
        in_reply_to_user_id,
        ..Message::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // -----------------------------------------------------------------------------------------
    // Fixtures.

    /// A v1.1 extended tweet: truncated `text`, full text and entities in `extended_tweet`.
    const V1_EXTENDED: &str = r#"{
  "created_at": "Thu May 10 17:41:57 +0000 2018",
  "id": 994633657141813248,
  "id_str": "994633657141813248",
  "text": "Just another Extended Tweet with more than 140 characters, generated as a documentation example, showing that [\"tru\u2026 https://t.co/U7Se4NM7Eu",
  "display_text_range": [0, 140],
  "source": "<a href=\"http://twitter.com\" rel=\"nofollow\">Twitter Web Client</a>",
  "truncated": true,
  "in_reply_to_status_id": null,
  "in_reply_to_status_id_str": null,
  "in_reply_to_user_id": null,
  "in_reply_to_user_id_str": null,
  "in_reply_to_screen_name": null,
  "user": {"id": 944480690, "id_str": "944480690", "name": "Jim Moffitt", "screen_name": "FloodSocial", "lang": "en"},
  "geo": null,
  "coordinates": null,
  "place": null,
  "is_quote_status": false,
  "extended_tweet": {
    "full_text": "Just another Extended Tweet with more than 140 characters, generated as a documentation example, showing that [\"truncated\": true] and the presence of an \"extended_tweet\" object with complete text and \"entities\" #documentation #parsingJSON #GeoTagged https://t.co/e9yhQTJSIA",
    "display_text_range": [0, 249],
    "entities": {
      "hashtags": [
        {"text": "documentation", "indices": [211, 225]},
        {"text": "parsingJSON", "indices": [226, 238]},
        {"text": "GeoTagged", "indices": [239, 249]}
      ],
      "urls": [],
      "user_mentions": [],
      "symbols": [],
      "media": [{"id": 994633626573664256, "id_str": "994633626573664256", "indices": [250, 273], "media_url_https": "https://pbs.twimg.com/media/Dc0DbhtV4AA4r1y.jpg", "url": "https://t.co/e9yhQTJSIA", "display_url": "pic.twitter.com/e9yhQTJSIA", "expanded_url": "https://twitter.com/FloodSocial/status/994633657141813248/photo/1", "type": "photo"}]
    },
    "extended_entities": {
      "media": [{"id": 994633626573664256, "id_str": "994633626573664256", "indices": [250, 273], "media_url_https": "https://pbs.twimg.com/media/Dc0DbhtV4AA4r1y.jpg", "url": "https://t.co/e9yhQTJSIA", "display_url": "pic.twitter.com/e9yhQTJSIA", "expanded_url": "https://twitter.com/FloodSocial/status/994633657141813248/photo/1", "type": "photo"}]
    }
  },
  "quote_count": 0,
  "reply_count": 0,
  "retweet_count": 0,
  "favorite_count": 0,
  "entities": {
    "hashtags": [],
    "urls": [{"url": "https://t.co/U7Se4NM7Eu", "expanded_url": "https://twitter.com/i/web/status/994633657141813248", "display_url": "twitter.com/i/web/status/9\u2026", "indices": [117, 140]}],
    "user_mentions": [],
    "symbols": []
  },
  "favorited": false,
  "retweeted": false,
  "possibly_sensitive": false,
  "filter_level": "low",
  "lang": "en",
  "timestamp_ms": "1525974117417"
}"#;

    /// A v1.1 retweet of an extended tweet.
    const V1_RETWEET: &str = r#"{
  "created_at": "Tue Mar 05 14:02:11 +0000 2019",
  "id": 1102952330436485120,
  "id_str": "1102952330436485120",
  "text": "RT @NASA: The Moon is slowly drifting away from Earth, about 3.8 cm every year. Here's why tides are to blame, and what\u2026",
  "truncated": false,
  "user": {"id": 222333444, "id_str": "222333444", "name": "Space Fan", "screen_name": "space_fan"},
  "coordinates": null,
  "place": null,
  "retweeted_status": {
    "created_at": "Tue Mar 05 13:00:00 +0000 2019",
    "id": 1102936690000000000,
    "id_str": "1102936690000000000",
    "text": "The Moon is slowly drifting away from Earth, about 3.8 cm every year. Here's why tides are to blame, and what it m\u2026 https://t.co/AbCdEf1234",
    "truncated": true,
    "user": {"id": 11348282, "id_str": "11348282", "name": "NASA", "screen_name": "NASA"},
    "extended_tweet": {
      "full_text": "The Moon is slowly drifting away from Earth, about 3.8 cm every year. Here's why tides are to blame, and what it means for the length of our days: https://t.co/XyZ987 #Moon",
      "entities": {"hashtags": [{"text": "Moon", "indices": [166, 171]}], "urls": [], "user_mentions": [], "symbols": []}
    },
    "entities": {"hashtags": [], "urls": [], "user_mentions": [], "symbols": []},
    "lang": "en"
  },
  "is_quote_status": false,
  "entities": {
    "hashtags": [],
    "urls": [],
    "user_mentions": [{"screen_name": "NASA", "name": "NASA", "id": 11348282, "id_str": "11348282", "indices": [3, 8]}],
    "symbols": []
  },
  "lang": "en"
}"#;

    /// A v1.1 quote tweet with an exact point and a place.
    const V1_QUOTE_WITH_PLACE: &str = r#"{
  "created_at": "Fri Nov 29 18:20:00 +0000 2019",
  "id": 1200462500000000001,
  "id_str": "1200462500000000001",
  "text": "This is what good public transit looks like \ud83d\udc47 #nyc $MTA https://t.co/Q1w2E3r4T5",
  "user": {"id": 5550001, "id_str": "5550001", "screen_name": "urbanist"},
  "is_quote_status": true,
  "quoted_status_id_str": "1200400000000000000",
  "quoted_status": {
    "id_str": "1200400000000000000",
    "text": "The new Second Avenue subway station at 86th St opens to riders today.",
    "user": {"id_str": "19040580", "screen_name": "MTA"},
    "entities": {"hashtags": [], "urls": [], "user_mentions": [], "symbols": []}
  },
  "geo": {"type": "Point", "coordinates": [40.7831, -73.9712]},
  "coordinates": {"type": "Point", "coordinates": [-73.9712, 40.7831]},
  "place": {
    "id": "01a9a39529b27f36",
    "url": "https://api.twitter.com/1.1/geo/id/01a9a39529b27f36.json",
    "place_type": "city",
    "name": "Manhattan",
    "full_name": "Manhattan, NY",
    "country_code": "US",
    "country": "United States",
    "bounding_box": {"type": "Polygon", "coordinates": [[[-74.026675, 40.683935], [-74.026675, 40.877483], [-73.910408, 40.877483], [-73.910408, 40.683935]]]},
    "attributes": {}
  },
  "entities": {
    "hashtags": [{"text": "nyc", "indices": [47, 51]}],
    "urls": [{"url": "https://t.co/Q1w2E3r4T5", "expanded_url": "https://twitter.com/MTA/status/1200400000000000000", "display_url": "twitter.com/MTA/status/120\u2026", "indices": [57, 80]}],
    "user_mentions": [],
    "symbols": [{"text": "MTA", "indices": [52, 56]}]
  },
  "lang": "en"
}"#;

    /// A v1.1 reply with numeric ids only.
    const V1_REPLY: &str = r#"{"id":1300000000000000002,"id_str":"1300000000000000002","text":"@jack just setting up my twttr","in_reply_to_status_id":20,"in_reply_to_status_id_str":"20","in_reply_to_user_id":12,"in_reply_to_screen_name":"jack","user":{"id":783214,"screen_name":"Twitter"},"entities":{"user_mentions":[{"screen_name":"jack","id":12,"id_str":"12","indices":[0,5]}]},"lang":"en"}"#;

    /// A v2 filtered-stream tweet with expansions.
    const V2_WITH_INCLUDES: &str = r#"{
  "data": {
    "id": "1445880548472328192",
    "text": "Exciting news from the #TwitterDev team: @TwitterAPI v2 now supports $TWTR lookups https://t.co/AbC123 https://t.co/PiC456",
    "author_id": "2244994945",
    "lang": "en",
    "edit_history_tweet_ids": ["1445880548472328192"],
    "conversation_id": "1445000000000000000",
    "created_at": "2021-10-06T22:32:03.000Z",
    "in_reply_to_user_id": "783214",
    "referenced_tweets": [
      {"type": "quoted", "id": "1445078208190291968"},
      {"type": "replied_to", "id": "1445000000000000000"}
    ],
    "attachments": {"media_keys": ["3_1445880540000000000"]},
    "entities": {
      "hashtags": [{"start": 23, "end": 34, "tag": "TwitterDev"}],
      "mentions": [{"start": 41, "end": 52, "username": "TwitterAPI", "id": "6253282"}],
      "cashtags": [{"start": 69, "end": 74, "tag": "TWTR"}],
      "urls": [
        {"start": 83, "end": 106, "url": "https://t.co/AbC123", "expanded_url": "https://developer.twitter.com/en/docs/twitter-api", "display_url": "developer.twitter.com/en/docs/twitte\u2026", "status": 200, "title": "Twitter API"},
        {"start": 107, "end": 130, "url": "https://t.co/PiC456", "expanded_url": "https://twitter.com/TwitterDev/status/1445880548472328192/photo/1", "display_url": "pic.twitter.com/PiC456", "media_key": "3_1445880540000000000"}
      ]
    },
    "geo": {"place_id": "01a9a39529b27f36", "coordinates": {"type": "Point", "coordinates": [-73.99, 40.73]}}
  },
  "includes": {
    "users": [
      {"id": "2244994945", "name": "Twitter Dev", "username": "TwitterDev"},
      {"id": "783214", "name": "Twitter", "username": "Twitter"}
    ],
    "tweets": [{"id": "1445078208190291968", "text": "Quoted: the v2 API is here", "author_id": "6253282"}],
    "places": [{"id": "01a9a39529b27f36", "full_name": "Manhattan, NY", "geo": {"type": "Feature", "bbox": [-74.026675, 40.683935, -73.910408, 40.877483], "properties": {}}}],
    "media": [{"media_key": "3_1445880540000000000", "type": "photo", "url": "https://pbs.twimg.com/media/FBDtest.jpg"}]
  },
  "matching_rules": [{"id": "1166916266197536768", "tag": "twitterdev"}]
}"#;

    /// A line of `posts/vader_tweets_en.jsonl` from the shared data (a test seed).
    const VADER_LINE: &str =
        r#"{"id": 4, "text": "LMAO, AMAZING!", "lang": "en", "sentiment": 2.857142857}"#;

    const ALL_FIXTURES: [&str; 6] =
        [V1_EXTENDED, V1_RETWEET, V1_QUOTE_WITH_PLACE, V1_REPLY, V2_WITH_INCLUDES, VADER_LINE];

    fn read(json: &str) -> Message {
        match Message::from_json(json) {
            Ok(m) => m,
            Err(e) => panic!("{json} should read: {e}"),
        }
    }

    /// The error of a message that should not read.
    fn error(json: &str) -> JsonError {
        match Message::from_json(json) {
            Ok(m) => panic!("{json} should not read, got {m:?}"),
            Err(e) => e,
        }
    }

    /// The field named by an `InvalidField` error.
    fn invalid_field(json: &str) -> String {
        match error(json) {
            JsonError::InvalidField { field, .. } => field,
            other => panic!("{json}: expected InvalidField, got {other:?}"),
        }
    }

    fn strings(items: &[&str]) -> Option<Vec<String>> {
        Some(items.iter().map(|s| s.to_string()).collect())
    }

    fn url(expanded: &str, display: &str) -> UrlEntity {
        UrlEntity { expanded_url: Some(expanded.into()), display_url: Some(display.into()) }
    }

    // -----------------------------------------------------------------------------------------
    // Twitter v1.1.

    #[test]
    fn v1_extended_tweet_uses_full_text_and_extended_entities() {
        let m = read(V1_EXTENDED);
        assert_eq!(m.id, "994633657141813248");
        assert!(m.text.starts_with("Just another Extended Tweet"));
        assert!(m.text.ends_with("#documentation #parsingJSON #GeoTagged https://t.co/e9yhQTJSIA"));
        assert!(!m.text.contains('\u{2026}'), "the truncated text must not be used");
        assert_eq!(m.user.as_deref(), Some("FloodSocial"));
        assert_eq!(m.user_id.as_deref(), Some("944480690"));
        assert_eq!(m.lang.as_deref(), Some("en"));
        assert_eq!(m.hashtags, strings(&["documentation", "parsingJSON", "GeoTagged"]));
        assert_eq!(m.mentions, Some(vec![]));
        assert_eq!(m.cashtags, Some(vec![]));
        // The extended entities are authoritative: the `i/web` link of the truncated text is gone.
        assert_eq!(m.urls, Some(vec![]));
        assert_eq!(
            m.media,
            Some(vec![url(
                "https://twitter.com/FloodSocial/status/994633657141813248/photo/1",
                "pic.twitter.com/e9yhQTJSIA"
            )])
        );
        assert_eq!(m.coordinates, None);
        assert_eq!(m.place, None);
        assert!(!m.is_retweet && !m.is_reply && !m.is_quote);
        assert_eq!(m.quoted_text, None);
        assert_eq!(m.retweeted_text, None);
        assert_eq!(m.in_reply_to_user, None);
        assert_eq!(m.in_reply_to_user_id, None);
    }

    #[test]
    fn v1_retweet_carries_the_retweeted_full_text() {
        let m = read(V1_RETWEET);
        assert_eq!(m.id, "1102952330436485120");
        assert!(m.text.starts_with("RT @NASA: The Moon"));
        assert_eq!(m.user.as_deref(), Some("space_fan"));
        assert!(m.is_retweet);
        assert!(!m.is_quote && !m.is_reply);
        assert_eq!(
            m.retweeted_text.as_deref(),
            Some(
                "The Moon is slowly drifting away from Earth, about 3.8 cm every year. Here's why \
                 tides are to blame, and what it means for the length of our days: \
                 https://t.co/XyZ987 #Moon"
            )
        );
        // Top-level entities belong to the retweet itself.
        assert_eq!(m.mentions, strings(&["NASA"]));
        assert_eq!(m.hashtags, Some(vec![]));
        assert_eq!(m.urls, Some(vec![]));
        // `entities` present without `media`: no media.
        assert_eq!(m.media, Some(vec![]));
    }

    #[test]
    fn v1_quote_with_point_and_place() {
        let m = read(V1_QUOTE_WITH_PLACE);
        assert_eq!(m.id, "1200462500000000001");
        assert!(m.text.contains('\u{1F447}'), "surrogate pair escapes decode to one emoji");
        assert!(m.is_quote);
        assert!(!m.is_retweet && !m.is_reply);
        assert_eq!(
            m.quoted_text.as_deref(),
            Some("The new Second Avenue subway station at 86th St opens to riders today.")
        );
        assert_eq!(m.coordinates, Some((-73.9712, 40.7831)));
        assert_eq!(
            m.place,
            Some(GeoBox { west: -74.026675, south: 40.683935, east: -73.910408, north: 40.877483 })
        );
        assert_eq!(m.hashtags, strings(&["nyc"]));
        assert_eq!(m.cashtags, strings(&["MTA"]));
        assert_eq!(
            m.urls,
            Some(vec![url(
                "https://twitter.com/MTA/status/1200400000000000000",
                "twitter.com/MTA/status/120\u{2026}"
            )])
        );
        assert_eq!(m.media, Some(vec![]));
    }

    #[test]
    fn v1_reply_reads_numeric_ids_as_strings() {
        let m = read(V1_REPLY);
        assert!(m.is_reply);
        assert_eq!(m.in_reply_to_user.as_deref(), Some("jack"));
        assert_eq!(m.in_reply_to_user_id.as_deref(), Some("12"));
        assert_eq!(m.user.as_deref(), Some("Twitter"));
        assert_eq!(m.user_id.as_deref(), Some("783214"));
        // Entities present but only `user_mentions` given: the other lists are empty, not absent.
        assert_eq!(m.mentions, strings(&["jack"]));
        assert_eq!(m.hashtags, Some(vec![]));
        assert_eq!(m.cashtags, Some(vec![]));
        assert_eq!(m.urls, Some(vec![]));
        assert_eq!(m.media, Some(vec![]));
    }

    #[test]
    fn v1_text_precedence_and_id_fallbacks() {
        let m = read(r#"{"id_str":"9","id":1,"text":"short","full_text":"full"}"#);
        assert_eq!((m.id.as_str(), m.text.as_str()), ("9", "full"));
        let m = read(r#"{"id":77,"full_text":"x","extended_tweet":{"display_text_range":[0,1]}}"#);
        assert_eq!((m.id.as_str(), m.text.as_str()), ("77", "x"));
        // No `entities` at all: every list is absent.
        assert_eq!(
            (m.hashtags, m.mentions, m.cashtags, m.urls, m.media),
            (None, None, None, None, None)
        );
        let m =
            read(r#"{"id_str":"1","text":"hi","is_quote_status":true,"retweeted_status":null}"#);
        assert!(m.is_quote);
        assert!(!m.is_retweet, "a null retweeted_status is no retweet");
        assert_eq!(m.quoted_text, None);
    }

    #[test]
    fn v1_retweeted_text_is_read_one_level_only() {
        let m = read(
            r#"{"id_str":"3","text":"RT @b: RT @c: x","retweeted_status":{"text":"RT @c: x",
                "retweeted_status":{"text":"x deep"}}}"#,
        );
        assert_eq!(m.retweeted_text.as_deref(), Some("RT @c: x"));
    }

    // -----------------------------------------------------------------------------------------
    // Twitter v2.

    #[test]
    fn v2_tweet_with_includes() {
        let m = read(V2_WITH_INCLUDES);
        assert_eq!(m.id, "1445880548472328192");
        assert!(m.text.starts_with("Exciting news from the #TwitterDev team"));
        assert_eq!(m.user_id.as_deref(), Some("2244994945"));
        assert_eq!(m.user.as_deref(), Some("TwitterDev"));
        assert_eq!(m.lang.as_deref(), Some("en"));
        assert_eq!(m.hashtags, strings(&["TwitterDev"]));
        assert_eq!(m.mentions, strings(&["TwitterAPI"]));
        assert_eq!(m.cashtags, strings(&["TWTR"]));
        assert_eq!(
            m.urls,
            Some(vec![url(
                "https://developer.twitter.com/en/docs/twitter-api",
                "developer.twitter.com/en/docs/twitte\u{2026}"
            )])
        );
        // The url entry with a media_key is media; the attachment is not counted twice.
        assert_eq!(
            m.media,
            Some(vec![url(
                "https://twitter.com/TwitterDev/status/1445880548472328192/photo/1",
                "pic.twitter.com/PiC456"
            )])
        );
        assert_eq!(m.coordinates, Some((-73.99, 40.73)));
        assert_eq!(
            m.place,
            Some(GeoBox { west: -74.026675, south: 40.683935, east: -73.910408, north: 40.877483 })
        );
        assert!(m.is_quote && m.is_reply && !m.is_retweet);
        assert_eq!(m.quoted_text.as_deref(), Some("Quoted: the v2 API is here"));
        assert_eq!(m.retweeted_text, None);
        assert_eq!(m.in_reply_to_user_id.as_deref(), Some("783214"));
        assert_eq!(m.in_reply_to_user.as_deref(), Some("Twitter"));
        // The source is the whole envelope.
        let source = m.source.expect("source is kept");
        assert!(source.contains_key("includes") && source.contains_key("matching_rules"));
    }

    #[test]
    fn v2_bare_retweet_with_note_tweet() {
        let m = read(
            r#"{"id":"2","text":"RT @a: truncated\u2026","author_id":"9",
                "referenced_tweets":[{"type":"retweeted","id":"1"}],
                "note_tweet":{"text":"the long note text #long","entities":{"hashtags":[{"tag":"long"}]}},
                "entities":{"hashtags":[]}}"#,
        );
        assert_eq!(m.text, "the long note text #long");
        assert_eq!(m.hashtags, strings(&["long"]), "the note tweet's entities are used");
        assert_eq!(m.mentions, Some(vec![]));
        assert_eq!(m.urls, Some(vec![]));
        assert_eq!(m.media, Some(vec![]));
        assert!(m.is_retweet);
        assert_eq!(m.retweeted_text, None, "no includes: the retweeted text is unknown");
        assert_eq!(m.user_id.as_deref(), Some("9"));
        assert_eq!(m.user, None);
    }

    #[test]
    fn v2_retweet_text_and_attached_media_come_from_includes() {
        let m = read(
            r#"{"data":{"id":"5","text":"RT @nasa: Look up","author_id":"7",
                  "referenced_tweets":[{"type":"retweeted","id":"4"}],
                  "attachments":{"media_keys":["3_1","3_2"]}},
                "includes":{"tweets":[{"id":"4","text":"Look up","note_tweet":{"text":"Look up tonight"}}],
                  "media":[{"media_key":"3_1","type":"photo","url":"https://pbs.twimg.com/media/a.jpg"},
                           {"media_key":"3_2","type":"video","preview_image_url":"https://pbs.twimg.com/v/b.jpg"}]}}"#,
        );
        assert!(m.is_retweet);
        assert_eq!(m.retweeted_text.as_deref(), Some("Look up tonight"));
        assert_eq!(
            m.media,
            Some(vec![
                UrlEntity::new("https://pbs.twimg.com/media/a.jpg"),
                UrlEntity::new("https://pbs.twimg.com/v/b.jpg"),
            ])
        );
        assert_eq!(m.urls, None, "no entities: URLs are extracted from the text later");
        assert_eq!(m.hashtags, None);
    }

    #[test]
    fn v2_errors_name_the_data_path() {
        let field = invalid_field(
            r#"{"data":{"id":"1","text":"x","entities":{"hashtags":[{"tag":"a"},{"start":1}]}}}"#,
        );
        assert_eq!(field, "data.entities.hashtags[1]");
        let field = invalid_field(r#"{"data":{"id":"1","text":7}}"#);
        assert_eq!(field, "data.text");
        let field = invalid_field(
            r#"{"data":{"id":"1","text":"x","geo":{"coordinates":{"type":"Point","coordinates":[200,1]}}}}"#,
        );
        assert_eq!(field, "data.geo.coordinates.coordinates");
        assert!(matches!(error(r#"{"data":{"id":"1"}}"#), JsonError::MissingText));
    }

    // -----------------------------------------------------------------------------------------
    // The simple shape.

    #[test]
    fn simple_ids_may_be_strings_or_integers() {
        assert_eq!(read(r#"{"id":42,"text":"a"}"#).id, "42");
        assert_eq!(read(r#"{"id":18446744073709551615,"text":"a"}"#).id, "18446744073709551615");
        assert_eq!(read(r#"{"id":-3,"text":"a"}"#).id, "-3");
        assert_eq!(read(r#"{"id":"Genesis 1:1","text":"a"}"#).id, "Genesis 1:1");
        assert_eq!(read(r#"{"text":"a"}"#).id, "");
        assert_eq!(invalid_field(r#"{"id":1.5,"text":"a"}"#), "id");
        assert_eq!(invalid_field(r#"{"id":true,"text":"a"}"#), "id");
    }

    /// Issue 23, item 8: a null id is an error (it was read as the empty id).
    #[test]
    fn null_id_is_an_error() {
        for json in [
            r#"{"id":null,"text":"a"}"#,
            r#"{"id_str":null,"id":5,"text":"a","entities":{}}"#,
            r#"{"data":{"id":null,"text":"a"}}"#,
        ] {
            let e = error(json);
            assert!(e.to_string().contains("found null"), "{json}: {e}");
            assert!(matches!(e, JsonError::InvalidField { .. }), "{json}: {e:?}");
        }
    }

    /// Issue 23, item 8: an integer id beyond 64 bits is kept as its decimal string (it was
    /// rejected as "found a fraction").
    #[test]
    fn big_integer_id_is_kept_as_its_digits() {
        let digits = "123456789012345678901234567890";
        assert_eq!(read(&format!(r#"{{"id":{digits},"text":"a"}}"#)).id, digits);
        assert_eq!(
            read(&format!(r#"{{ "text":"a", "x":{{"id":1}}, "id" : -{digits} }}"#)).id,
            format!("-{digits}")
        );
        // v1.1 without id_str falls back to the integer id.
        let v1 = format!(r#"{{"id":{digits},"text":"a","entities":{{}}}}"#);
        assert_eq!(read(&v1).id, digits);
        // Fractions and exponents are still refused; a parsed value has lost the digits.
        assert_eq!(invalid_field(r#"{"id":1e40,"text":"a"}"#), "id");
        assert_eq!(invalid_field(r#"{"id":12345678901234567890123.5,"text":"a"}"#), "id");
        let value: Value =
            serde_json::from_str(&format!(r#"{{"id":{digits},"text":"a"}}"#)).unwrap();
        let e = Message::from_json_value(value, MessageFormat::Auto).unwrap_err();
        assert!(e.to_string().contains("too large for 64 bits"), "{e}");
    }

    /// Issue 23, item 8: a key repeated in an object is an error naming the key and the column
    /// (`{"text":"ham","text":"spam"}` matched `spam` while both were echoed).
    #[test]
    fn duplicate_keys_are_an_error_naming_key_and_column() {
        let e = error(r#"{"text":"ham","text":"spam"}"#);
        assert!(
            matches!(&e, JsonError::DuplicateKey { key, line: 1, column: 20 } if key == "text"),
            "{e:?}"
        );
        assert_eq!(e.to_string(), "duplicate key `text` at line 1, column 20");
        // At any depth, and with keys that differ only in how they are escaped.
        let e = error(r#"{"id":"1","text":"t","user":{"screen_name":"a","screen_name":"b"}}"#);
        assert!(matches!(&e, JsonError::DuplicateKey { key, .. } if key == "screen_name"), "{e:?}");
        let e = error(r#"{"id":"1","text":"t","\u0074ext":"u"}"#);
        assert!(matches!(&e, JsonError::DuplicateKey { key, .. } if key == "text"), "{e:?}");
        // Equal keys in different objects are fine.
        let m = read(r#"{"id":"1","text":"t","quoted_status":{"id":"2","text":"q"}}"#);
        assert_eq!(m.quoted_text.as_deref(), Some("q"));
    }

    /// Issue 21, defect 7: the fields the crate does not interpret are reachable by key.
    #[test]
    fn extra_fields_are_reachable_by_key() {
        let m = read(VADER_LINE);
        assert_eq!(m.json_field("sentiment").and_then(Value::as_f64), Some(2.857142857));
        assert_eq!(m.json_field("missing"), None);
        assert_eq!(Message::new("1", "t").json_field("id"), None);
    }

    #[test]
    fn simple_line_from_shared_data_keeps_extra_fields() {
        let m = read(VADER_LINE);
        assert_eq!(m.id, "4");
        assert_eq!(m.text, "LMAO, AMAZING!");
        assert_eq!(m.lang.as_deref(), Some("en"));
        assert_eq!(m.hashtags, None);
        let source = m.source.expect("source is kept");
        assert_eq!(source.get("sentiment").and_then(Value::as_f64), Some(2.857142857));
    }

    #[test]
    fn simple_entities_null_missing_and_empty() {
        let m = read(r##"{"id":1,"text":"#a @b $c","hashtags":null,"mentions":[]}"##);
        assert_eq!(m.hashtags, None, "null means absent");
        assert_eq!(m.mentions, Some(vec![]), "[] means present, none");
        assert_eq!(m.cashtags, None, "missing means absent");
        assert_eq!(m.urls, None);
        assert_eq!(m.media, None);
        let m = read(r#"{"id":1,"text":"x","urls":[],"media":null}"#);
        assert_eq!((m.urls, m.media), (Some(vec![]), None));
    }

    #[test]
    fn simple_entity_lists_strip_sigils_and_read_objects() {
        let m = read(
            r##"{"id":1,"text":"x","hashtags":["#Snow","rain",{"text":"hail"},{"tag":"#fog"},"#"],
                "mentions":["@alice",{"screen_name":"bob"},{"username":"@carol"}],
                "cashtags":["$ACME",{"tag":"TWTR"}]}"##,
        );
        assert_eq!(m.hashtags, strings(&["Snow", "rain", "hail", "fog"]));
        assert_eq!(m.mentions, strings(&["alice", "bob", "carol"]));
        assert_eq!(m.cashtags, strings(&["ACME", "TWTR"]));
        // Only one sigil is stripped.
        assert_eq!(read(r###"{"text":"x","hashtags":["##a"]}"###).hashtags, strings(&["#a"]));
        assert_eq!(invalid_field(r#"{"text":"x","hashtags":"a"}"#), "hashtags");
        assert_eq!(invalid_field(r#"{"text":"x","hashtags":["a",3]}"#), "hashtags[1]");
        assert_eq!(invalid_field(r#"{"text":"x","mentions":[{"id":"1"}]}"#), "mentions[0]");
    }

    #[test]
    fn simple_urls_and_media() {
        let m = read(
            r#"{"id":1,"text":"x","urls":["https://example.com/a",
                  {"expanded_url":"https://en.wikipedia.org/wiki/Snow","display_url":"en.wikipedia.org/wiki/Snow"},
                  {"url":"https://example.org"},
                  {"url":"https://t.co/x","expanded_url":null,"display_url":"example.net"}],
                "media":[{"expanded_url":"https://pics.example/1.jpg"}]}"#,
        );
        assert_eq!(
            m.urls,
            Some(vec![
                UrlEntity::new("https://example.com/a"),
                url("https://en.wikipedia.org/wiki/Snow", "en.wikipedia.org/wiki/Snow"),
                UrlEntity::new("https://example.org"),
                url("https://t.co/x", "example.net"),
            ])
        );
        assert_eq!(
            m.media,
            Some(vec![UrlEntity {
                expanded_url: Some("https://pics.example/1.jpg".into()),
                display_url: None
            }])
        );
        assert_eq!(invalid_field(r#"{"text":"x","urls":[{"href":"h"}]}"#), "urls[0]");
        assert_eq!(invalid_field(r#"{"text":"x","media":[{"url":5}]}"#), "media[0].url");
    }

    #[test]
    fn simple_user_forms() {
        let m = read(r#"{"text":"x","user":"@alice"}"#);
        assert_eq!((m.user.as_deref(), m.user_id), (Some("alice"), None));
        let m = read(r#"{"text":"x","user":{"username":"bob","id":12},"hashtags":[]}"#);
        assert_eq!((m.user.as_deref(), m.user_id.as_deref()), (Some("bob"), Some("12")));
        let m = read(r#"{"text":"x","user":"carol","user_id":99}"#);
        assert_eq!((m.user.as_deref(), m.user_id.as_deref()), (Some("carol"), Some("99")));
        // An explicit `user_id` wins over the user object's id.
        let m = read(r#"{"text":"x","user":{"screen_name":"d","id_str":"1"},"user_id":"2"}"#);
        assert_eq!((m.user.as_deref(), m.user_id.as_deref()), (Some("d"), Some("2")));
        assert_eq!(invalid_field(r#"{"text":"x","user":5}"#), "user");
    }

    #[test]
    fn simple_coordinates_forms() {
        let point = |json: &str| read(json).coordinates;
        assert_eq!(point(r#"{"text":"x","coordinates":[2.35,48.85]}"#), Some((2.35, 48.85)));
        assert_eq!(
            point(r#"{"text":"x","coordinates":{"type":"Point","coordinates":[-0.12,51.5]}}"#),
            Some((-0.12, 51.5))
        );
        assert_eq!(
            point(r#"{"text":"x","coordinates":{"lon":139.69,"lat":35.69}}"#),
            Some((139.69, 35.69))
        );
        assert_eq!(point(r#"{"text":"x","coordinates":[180,-90]}"#), Some((180.0, -90.0)));
        assert_eq!(point(r#"{"text":"x","coordinates":null}"#), None);
        assert_eq!(
            point(r#"{"text":"x","coordinates":{"type":"Point","coordinates":null}}"#),
            None
        );
    }

    #[test]
    fn coordinates_out_of_range_or_malformed_are_rejected() {
        for json in [
            r#"{"text":"x","coordinates":[181,0]}"#,
            r#"{"text":"x","coordinates":[0,90.5]}"#,
            r#"{"text":"x","coordinates":[-180.01,0]}"#,
            r#"{"text":"x","coordinates":[0,-91]}"#,
            r#"{"text":"x","coordinates":[1,2,3]}"#,
            r#"{"text":"x","coordinates":[1]}"#,
            r#"{"text":"x","coordinates":"1,2"}"#,
            r#"{"text":"x","coordinates":{"lon":1}}"#,
            r#"{"text":"x","coordinates":{"type":"Point","coordinates":[1e300,0]}}"#,
        ] {
            let field = invalid_field(json);
            assert!(field.starts_with("coordinates"), "{json}: {field}");
        }
        assert_eq!(invalid_field(r#"{"text":"x","coordinates":["1",2]}"#), "coordinates[0]");
        assert_eq!(
            invalid_field(r#"{"text":"x","coordinates":{"type":"Polygon","coordinates":[1,2]}}"#),
            "coordinates.type"
        );
        assert_eq!(
            invalid_field(r#"{"text":"x","coordinates":{"lon":0,"lat":95}}"#),
            "coordinates.lat"
        );
        // The same checks apply to Twitter JSON.
        assert_eq!(
            invalid_field(
                r#"{"id_str":"1","text":"x","coordinates":{"type":"Point","coordinates":[40.7,-200]}}"#
            ),
            "coordinates.coordinates"
        );
        match error(r#"{"text":"x","coordinates":[0,90.5]}"#) {
            JsonError::InvalidField { reason, .. } => assert!(reason.contains("latitude 90.5")),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn simple_place_forms() {
        let place = |json: &str| read(json).place;
        let b = GeoBox { west: -10.0, south: 35.0, east: 5.5, north: 44.0 };
        assert_eq!(place(r#"{"text":"x","place":[-10,35,5.5,44]}"#), Some(b));
        assert_eq!(
            place(r#"{"text":"x","place":{"west":-10,"south":35,"east":5.5,"north":44}}"#),
            Some(b)
        );
        assert_eq!(place(r#"{"text":"x","place":{"bbox":[-10,35,5.5,44]}}"#), Some(b));
        assert_eq!(
            place(
                r#"{"text":"x","place":{"full_name":"Spain","bounding_box":{"type":"Polygon",
                   "coordinates":[[[-10,35],[5.5,35],[5.5,44],[-10,44]]]}}}"#
            ),
            Some(b)
        );
        assert_eq!(
            place(r#"{"text":"x","place":{"full_name":"Nowhere","bounding_box":null}}"#),
            None
        );
        assert_eq!(place(r#"{"text":"x","place":{"full_name":"Nowhere"}}"#), None);
        assert_eq!(place(r#"{"text":"x","place":null}"#), None);
        assert_eq!(invalid_field(r#"{"text":"x","place":[5,0,-5,1]}"#), "place");
        assert_eq!(invalid_field(r#"{"text":"x","place":[0,10,1,5]}"#), "place");
        assert_eq!(invalid_field(r#"{"text":"x","place":[0,0,1]}"#), "place");
        assert_eq!(invalid_field(r#"{"text":"x","place":{"west":0,"south":0,"east":1}}"#), "place");
        assert_eq!(
            invalid_field(r#"{"text":"x","place":{"bounding_box":{"coordinates":[[]]}}}"#),
            "place.bounding_box.coordinates"
        );
        assert_eq!(
            invalid_field(
                r#"{"text":"x","place":{"bounding_box":{"coordinates":[[[0,0],[0,99]]]}}}"#
            ),
            "place.bounding_box.coordinates[0][1]"
        );
    }

    #[test]
    fn simple_flags_and_reply_fields() {
        let m = read(
            r#"{"id":"1","text":"x","is_retweet":true,"is_reply":false,"is_quote":true,
                "quoted_text":"q","retweeted_text":"r","in_reply_to_screen_name":"jack",
                "in_reply_to_user_id":12,"lang":"zh-Hant"}"#,
        );
        assert!(m.is_retweet && !m.is_reply && m.is_quote);
        assert_eq!((m.quoted_text.as_deref(), m.retweeted_text.as_deref()), (Some("q"), Some("r")));
        assert_eq!(m.in_reply_to_user.as_deref(), Some("jack"));
        assert_eq!(m.in_reply_to_user_id.as_deref(), Some("12"));
        assert_eq!(m.lang.as_deref(), Some("zh-Hant"));
        // Twitter-style markers in the simple shape set the flags too.
        let m = read(
            r#"{"id":"1","text":"x","quoted_status":{"text":"quoted!"},"in_reply_to_status_id":5}"#,
        );
        assert!(m.is_quote && m.is_reply && !m.is_retweet);
        assert_eq!(m.quoted_text.as_deref(), Some("quoted!"));
        assert_eq!(invalid_field(r#"{"text":"x","is_reply":"yes"}"#), "is_reply");
        assert_eq!(invalid_field(r#"{"text":"x","lang":1}"#), "lang");
    }

    // -----------------------------------------------------------------------------------------
    // Detection and explicit formats.

    #[test]
    fn auto_detection() {
        let detected = |json: &str| match serde_json::from_str(json) {
            Ok(Value::Object(map)) => detect(&map),
            other => panic!("{json}: {other:?}"),
        };
        assert_eq!(detected(V1_EXTENDED), MessageFormat::TwitterV1);
        assert_eq!(detected(V1_REPLY), MessageFormat::TwitterV1);
        assert_eq!(detected(V2_WITH_INCLUDES), MessageFormat::TwitterV2);
        assert_eq!(detected(VADER_LINE), MessageFormat::Simple);
        assert_eq!(detected(r#"{"id":"1","text":"x","author_id":"2"}"#), MessageFormat::TwitterV2);
        assert_eq!(
            detected(r#"{"id":"1","text":"x","edit_history_tweet_ids":["1"]}"#),
            MessageFormat::TwitterV2
        );
        assert_eq!(detected(r#"{"id":"1","text":"x","entities":{}}"#), MessageFormat::TwitterV1);
        assert_eq!(
            detected(r#"{"id":1,"text":"x","user":{"screen_name":"a"}}"#),
            MessageFormat::TwitterV1
        );
        // A user object next to simple-only keys stays simple.
        assert_eq!(
            detected(r#"{"id":1,"text":"x","user":{"screen_name":"a"},"hashtags":[]}"#),
            MessageFormat::Simple
        );
        // A `data` payload next to a top-level text is not a v2 envelope.
        assert_eq!(detected(r#"{"id":1,"text":"x","data":{"k":1}}"#), MessageFormat::Simple);
        // Null markers do not count.
        assert_eq!(
            detected(r#"{"id":1,"text":"x","id_str":null,"entities":null}"#),
            MessageFormat::Simple
        );
        assert_eq!(MessageFormat::default(), MessageFormat::Auto);
    }

    /// Issue 21, defect 6: the simple shape marks a retweet with `retweeted_status`; its own
    /// keys (`urls`, `mentions`, …) must win over that marker.
    #[test]
    fn simple_shape_retweet_keeps_its_entity_keys() {
        let json = r#"{"id":"d42","text":"to","retweeted_status":{"id_str":"rt42","text":"my"},
            "urls":[{"expanded_url":"example.com"}]}"#;
        let m = read(json);
        assert_eq!(m.id, "d42");
        assert!(m.is_retweet);
        assert_eq!(m.retweeted_text.as_deref(), Some("my"));
        assert_eq!(
            m.urls,
            Some(vec![UrlEntity { expanded_url: Some("example.com".into()), display_url: None }])
        );
        let rule = crate::Rule::parse_track("example.com").expect("parses");
        assert!(crate::reference::matches(&rule, &m));
        let m =
            read(r#"{"id":"d43","text":"hi @bob","retweeted_status":{"text":"x"},"mentions":[]}"#);
        assert_eq!(m.mentions, Some(vec![]));
        for key in ["is_quote", "hashtags"] {
            let json = format!(
                r#"{{"id":"1","text":"t","retweeted_status":{{"text":"x"}},"{key}":null}}"#
            );
            let Ok(Value::Object(map)) = serde_json::from_str(&json) else { panic!("{json}") };
            assert_eq!(detect(&map), MessageFormat::Simple, "{json}");
        }
        // Without simple-shape keys a retweet is still read as v1.1.
        assert!(read(V1_RETWEET).is_retweet);
        let Ok(Value::Object(map)) =
            serde_json::from_str(r#"{"id":1,"text":"RT x","retweeted_status":{"text":"x"}}"#)
        else {
            panic!()
        };
        assert_eq!(detect(&map), MessageFormat::TwitterV1);
    }

    #[test]
    fn explicit_format_overrides_detection() {
        let json = r#"{"id":"5","id_str":"6","text":"hi #x","hashtags":["y"]}"#;
        let auto = Message::from_json(json).expect("reads");
        assert_eq!((auto.id.as_str(), auto.hashtags), ("6", None));
        let simple = Message::from_json_with(json, MessageFormat::Simple).expect("reads");
        assert_eq!((simple.id.as_str(), simple.hashtags), ("5", strings(&["y"])));
        // The v1.1 extended tweet read as simple: the truncated text, no entities.
        let m = Message::from_json_with(V1_EXTENDED, MessageFormat::Simple).expect("reads");
        assert!(m.text.ends_with("https://t.co/U7Se4NM7Eu"));
        assert_eq!(m.id, "994633657141813248");
        assert_eq!(m.hashtags, None);
        // A simple object read as v2: the object itself is the tweet.
        let m = Message::from_json_with(VADER_LINE, MessageFormat::TwitterV2).expect("reads");
        assert_eq!((m.id.as_str(), m.text.as_str()), ("4", "LMAO, AMAZING!"));
        let e = Message::from_json_with(r#"{"data":[1],"text":"x"}"#, MessageFormat::TwitterV2);
        assert!(matches!(e, Err(JsonError::InvalidField { field, .. }) if field == "data"));
    }

    #[test]
    fn from_json_value_requires_an_object() {
        for value in
            [Value::Null, Value::Bool(true), serde_json::json!([1, 2]), serde_json::json!("t")]
        {
            let e = Message::from_json_value(value, MessageFormat::Auto);
            assert!(matches!(e, Err(JsonError::NotAnObject)));
        }
        let m = Message::from_json_value(
            serde_json::json!({"id": 3, "text": "t"}),
            MessageFormat::Simple,
        )
        .expect("reads");
        assert_eq!((m.id.as_str(), m.text.as_str()), ("3", "t"));
    }

    // -----------------------------------------------------------------------------------------
    // Errors.

    #[test]
    fn invalid_json_is_a_syntax_error() {
        for json in
            ["", "   ", "{", "{\"id\":1,}", "{\"text\":\"x\"} trailing", "{'text':'x'}", "NaN"]
        {
            assert!(matches!(error(json), JsonError::Syntax(_)), "{json:?}");
        }
    }

    #[test]
    fn lone_surrogate_escapes_are_rejected() {
        for json in [r#"{"id":"1","text":"\ud800"}"#, r#"{"id":"1","text":"a\udc00b"}"#] {
            let e = error(json);
            assert!(matches!(e, JsonError::Syntax(_)), "{json}: {e:?}");
            assert!(e.to_string().starts_with("invalid JSON: "), "{e}");
        }
        assert_eq!(read(r#"{"text":"\ud83d\ude00"}"#).text, "\u{1F600}");
    }

    #[test]
    fn non_objects_are_rejected() {
        for json in ["[]", "[{\"text\":\"x\"}]", "\"text\"", "42", "null", "true"] {
            assert!(matches!(error(json), JsonError::NotAnObject), "{json}");
        }
    }

    #[test]
    fn missing_text_is_reported() {
        for json in [
            r#"{"id":1}"#,
            r#"{"id":1,"text":null}"#,
            r#"{}"#,
            r#"{"id_str":"1","user":{"screen_name":"a"}}"#,
            r#"{"limit":{"track":5,"timestamp_ms":"1525974117417"}}"#,
            r#"{"delete":{"status":{"id":1,"id_str":"1","user_id":3,"user_id_str":"3"}}}"#,
        ] {
            assert!(matches!(error(json), JsonError::MissingText), "{json}");
        }
        assert_eq!(invalid_field(r#"{"id":1,"text":5}"#), "text");
        assert_eq!(invalid_field(r#"{"id":1,"text":["a"]}"#), "text");
        assert_eq!(
            invalid_field(r#"{"id_str":"1","text":"a","extended_tweet":{"full_text":1}}"#),
            "extended_tweet.full_text"
        );
        assert_eq!(
            invalid_field(r#"{"id_str":"1","text":"a","retweeted_status":{"full_text":false}}"#),
            "retweeted_status.full_text"
        );
    }

    #[test]
    fn bytes_must_be_utf8() {
        let e = Message::from_json_bytes(b"{\"id\":1,\"text\":\"caf\xe9\"}").expect_err("latin-1");
        assert!(matches!(e, JsonError::InvalidUtf8(_)));
        assert!(e.to_string().starts_with("message is not valid UTF-8"), "{e}");
        // A surrogate encoded in bytes (CESU-8) is not UTF-8 either.
        let e = Message::from_json_bytes(b"{\"text\":\"\xed\xa0\x80\"}").expect_err("surrogate");
        assert!(matches!(e, JsonError::InvalidUtf8(_)));
        let m =
            Message::from_json_bytes("{\"id\":1,\"text\":\"café\"}\n".as_bytes()).expect("utf-8");
        assert_eq!(m.text, "café");
        let m = Message::from_json_bytes(b"\xEF\xBB\xBF{\"text\":\"bom\"}").expect("bom");
        assert_eq!(m.text, "bom");
        let m = Message::from_json("\u{feff}{\"text\":\"bom\"}").expect("bom");
        assert_eq!(m.text, "bom");
        // One mark, not two, from bytes as from text (found by the `message_json` fuzz
        // target: the bytes reader dropped one and then the text reader another).
        let two = "\u{feff}\u{feff}{\"text\":\"bom\"}";
        assert!(Message::from_json(two).is_err());
        assert!(Message::from_json_bytes(two.as_bytes()).is_err());
    }

    #[test]
    fn error_display_and_source() {
        use std::error::Error as _;
        assert_eq!(JsonError::NotAnObject.to_string(), "a message must be a JSON object");
        assert!(JsonError::MissingText.to_string().contains("extended_tweet.full_text"));
        let e = JsonError::InvalidField { field: "place".into(), reason: "bad".into() };
        assert_eq!(e.to_string(), "invalid field `place`: bad");
        assert!(e.source().is_none());
        let syntax = error("{");
        assert!(syntax.source().is_some());
        let reason = match error(r#"{"text":"x","user_id":[1]}"#) {
            JsonError::InvalidField { field, reason } => {
                assert_eq!(field, "user_id");
                reason
            }
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(reason, "expected a string or an integer, found an array");
    }

    #[test]
    fn truncated_input_is_an_error_never_a_panic() {
        for fixture in ALL_FIXTURES {
            let fixture = fixture.trim();
            for (end, _) in fixture.char_indices() {
                let e = Message::from_json(&fixture[..end]);
                assert!(matches!(e, Err(JsonError::Syntax(_))), "prefix of {end} bytes");
                let e = Message::from_json_bytes(&fixture.as_bytes()[..end]);
                assert!(matches!(e, Err(JsonError::Syntax(_))), "prefix of {end} bytes");
            }
        }
    }

    #[test]
    fn deep_nesting_is_an_error() {
        let deep =
            format!("{{\"text\":\"x\",\"extra\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(error(&deep), JsonError::Syntax(_)));
        assert!(matches!(error(&"[".repeat(100_000)), JsonError::Syntax(_)));
    }

    #[test]
    fn every_fixture_reads_in_every_format_or_fails_cleanly() {
        // v1 fixtures read as v2 have no `data`: the object is the tweet, `text` is used.
        for fixture in ALL_FIXTURES {
            for format in [MessageFormat::Auto, MessageFormat::Simple, MessageFormat::TwitterV1] {
                let m = Message::from_json_with(fixture, format);
                if fixture == V2_WITH_INCLUDES && format != MessageFormat::Auto {
                    assert!(matches!(m, Err(JsonError::MissingText)), "{format:?}");
                } else {
                    assert!(m.is_ok(), "{format:?}: {m:?}");
                }
            }
            let m = Message::from_json_with(fixture, MessageFormat::TwitterV2).expect("reads");
            assert!(!m.text.is_empty());
        }
    }

    // -----------------------------------------------------------------------------------------
    // Source and output.

    #[test]
    fn source_keeps_unknown_fields_and_key_order() {
        let input =
            r#"{"zeta":1,"text":"hi","id":"7","nested":{"b":[true,null],"a":"x"},"alpha":-2.5}"#;
        let m = read(input);
        let source = m.source.clone().expect("source is kept");
        assert_eq!(serde_json::to_string(&*source).expect("serializes"), input);
        assert_eq!(m.to_json_value().to_string(), input);
        // The same for Twitter JSON, written with white space.
        let m = read(V1_QUOTE_WITH_PLACE);
        let compact: Value = serde_json::from_str(V1_QUOTE_WITH_PLACE).expect("valid");
        let source = m.source.expect("source is kept");
        assert_eq!(
            serde_json::to_string(&*source).expect("serializes"),
            serde_json::to_string(&compact).expect("serializes")
        );
        let keys: Vec<&str> = source.keys().map(String::as_str).take(4).collect();
        assert_eq!(keys, ["created_at", "id", "id_str", "text"]);
    }

    #[test]
    fn to_json_value_without_source_has_only_set_fields() {
        let m = Message::new("1", "hi #a").with_hashtags(["a"]);
        assert_eq!(m.to_json_value().to_string(), r#"{"id":"1","text":"hi #a","hashtags":["a"]}"#);
        assert_eq!(Message::new("", "t").to_json_value().to_string(), r#"{"id":"","text":"t"}"#);
    }

    #[test]
    fn to_json_value_round_trips() {
        let mut m = Message::new("99", "full message")
            .with_user("alice")
            .with_lang("fr")
            .with_urls(vec![url("https://a.example/x", "a.example/x"), UrlEntity::default()])
            .with_hashtags(Vec::<String>::new())
            .with_mentions(["bob"])
            .with_coordinates(2.35, 48.85)
            .with_quoted_text("quoted");
        m.user_id = Some("5".into());
        m.media = Some(vec![UrlEntity::new("https://pics.example/1.jpg")]);
        m.cashtags = Some(vec!["ACME".into()]);
        m.place = Some(GeoBox { west: 2.2, south: 48.8, east: 2.5, north: 48.9 });
        m.is_retweet = true;
        m.is_reply = true;
        m.retweeted_text = Some("rt".into());
        m.in_reply_to_user = Some("carol".into());
        m.in_reply_to_user_id = Some("6".into());
        let line = m.to_json_value().to_string();
        let mut back = read(&line);
        assert!(back.source.is_some());
        back.source = None;
        assert_eq!(back, m);
        // Non-finite coordinates are left out rather than written as invalid JSON.
        let bad = Message::new("1", "x").with_coordinates(f64::NAN, 0.0);
        assert_eq!(bad.to_json_value().to_string(), r#"{"id":"1","text":"x"}"#);
    }
}
