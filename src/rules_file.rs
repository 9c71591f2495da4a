//! Rules files, the format the `match` and `run` commands read: one rule per line, either a
//! JSON object or a bare rule.
//!
//! ```text
//! {"id": "wii", "value": "nintendo,wii fit", "dialect": "track"}
//! {"id": "launch", "value": "\"product launch\" #acme -job", "tag": "launches", "subscriber": "alice"}
//! apple iphone
//! ```
//!
//! An object has the keys [`KEYS`]: `id` (a string or number, unique in the file) and `value`
//! are required; `dialect` is `"track"` or `"rule"`, and a line without it is read in the
//! reader's default dialect (the rule dialect unless the caller says otherwise; the
//! command-line tool's `--dialect`). Any other key is an error, so a misspelt `"dialekt"`
//! cannot silently change what a rule means. A line that is not an object is one rule in the
//! default dialect, its id the line number. Reading whole files is [`crate::read`]'s job.
//!
//! In the rule dialect a comma is not an operator: `nintendo,wii fit` is the AND of three
//! words. A rule read in the rule dialect *by default* with a comma between two words gets a
//! warning, since the track dialect's OR list was probably meant.

use crate::read::{column_of, is_json_line, json_syntax_message, Located};
use crate::rule::{Dialect, Parser, Rule};
use std::fmt;

/// The keys a rule object may have.
pub const KEYS: [&str; 5] = ["id", "value", "dialect", "tag", "subscriber"];

/// One line of a rules file, parsed.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RuleEntry {
    /// The rule id reported in `matching_rules`.
    pub id: String,
    /// The optional tag reported with the id.
    pub tag: Option<String>,
    /// The subscriber the rule belongs to (the `run` command groups deliveries by it); `None`
    /// means one subscriber per rule, named after the rule id.
    pub subscriber: Option<String>,
    /// The rule text as written.
    pub value: String,
    /// The parsed rule.
    pub rule: Rule,
    /// The 1-based line of the file.
    pub line: usize,
}

impl RuleEntry {
    /// An entry made in code rather than read from a file.
    pub fn new(
        id: impl Into<String>,
        tag: Option<String>,
        subscriber: Option<String>,
        value: String,
        rule: Rule,
        line: usize,
    ) -> Self {
        RuleEntry { id: id.into(), tag, subscriber, value, rule, line }
    }
}

/// A rules-file line that could not be used (or, as a warning, looks like a mistake).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RulesFileError {
    /// The 1-based line.
    pub line: usize,
    /// The 1-based column (in code points) on the line, when known.
    pub column: Option<usize>,
    /// The rule id, when the line had one.
    pub id: Option<String>,
    /// What is wrong, without the position.
    pub message: String,
}

impl RulesFileError {
    /// An error about `line` (1-based), at `column` when known, of the rule `id` when known.
    pub fn new(
        line: usize,
        column: Option<usize>,
        id: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        RulesFileError { line, column, id, message: message.into() }
    }

    /// The error as the command-line tool prints it: `FILE:LINE:COLUMN: rule "ID": message`.
    pub fn in_file<'a>(&'a self, file: &'a str) -> impl fmt::Display + 'a {
        RulesFileLocated { e: self, file }
    }
}

struct RulesFileLocated<'a> {
    e: &'a RulesFileError,
    file: &'a str,
}

impl fmt::Display for RulesFileLocated<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let prefix = self.e.id.as_ref().map(|id| format!("rule {id:?}"));
        let located = Located {
            file: self.file,
            line: self.e.line,
            column: self.e.column,
            prefix: prefix.as_deref(),
            message: &self.e.message,
        };
        located.fmt(f)
    }
}

impl fmt::Display for RulesFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rule {}", self.line)?;
        if let Some(id) = &self.id {
            write!(f, " (id {id:?})")?;
        }
        if let Some(c) = self.column {
            write!(f, ", column {c}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for RulesFileError {}

/// A top-level key of a JSON object line and where it and its value start (byte offsets).
struct KeySpan {
    key: String,
    key_at: usize,
    value_at: usize,
}

/// The end (exclusive) of the JSON string literal starting at `start` (a `"`).
fn string_end(b: &[u8], start: usize) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// The top-level keys of a line holding one valid JSON object, in order.
fn top_level_keys(text: &str) -> Vec<KeySpan> {
    let b = text.as_bytes();
    let mut keys = Vec::new();
    let (mut depth, mut expect_key, mut i) = (0usize, false, 0usize);
    while i < b.len() {
        match b[i] {
            b'"' => {
                let end = string_end(b, i);
                if depth == 1 && expect_key {
                    let key = serde_json::from_str::<String>(&text[i..end]).unwrap_or_default();
                    let mut j = end;
                    while j < b.len() && (b[j].is_ascii_whitespace() || b[j] == b':') {
                        j += 1;
                    }
                    keys.push(KeySpan { key, key_at: i, value_at: j });
                    expect_key = false;
                }
                i = end;
                continue;
            }
            b'{' | b'[' => {
                depth += 1;
                expect_key = depth == 1 && b[i] == b'{';
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            b',' if depth == 1 => expect_key = true,
            _ => {}
        }
        i += 1;
    }
    keys
}

/// The byte offset in `text` of byte `offset` of the value of the string literal at `start`.
fn literal_offset(text: &str, start: usize, offset: usize) -> usize {
    let b = text.as_bytes();
    let (mut i, mut decoded) = (start + 1, 0usize);
    while i < b.len() && b[i] != b'"' && decoded < offset {
        if b[i] == b'\\' {
            if b.get(i + 1) == Some(&b'u') {
                let code = text.get(i + 2..i + 6).and_then(|h| u32::from_str_radix(h, 16).ok());
                let pair = (0xD800..0xDC00).contains(&code.unwrap_or(0))
                    && text.get(i + 6..i + 8) == Some("\\u");
                let c = code.and_then(char::from_u32).map_or(3, char::len_utf8);
                (i, decoded) = if pair { (i + 12, decoded + 4) } else { (i + 6, decoded + c) };
            } else {
                (i, decoded) = (i + 2, decoded + 1);
            }
        } else {
            let c = text[i..].chars().next().map_or(1, char::len_utf8);
            (i, decoded) = (i + c, decoded + c);
        }
    }
    i
}

/// The column of the `id` value on a rule object line, when it has one.
pub(crate) fn id_column(text: &str) -> Option<usize> {
    if !is_json_line(text.as_bytes()) {
        return Some(1);
    }
    let keys = top_level_keys(text);
    keys.iter().find(|k| k.key == "id").map(|k| column_of(text.as_bytes(), k.value_at))
}

/// The first comma outside quotes between two letters (spaces aside), as a byte offset: the
/// shape of a track OR list (`nintendo,wii fit`), not of a number (`1,000`).
fn comma_between_words(value: &str) -> Option<usize> {
    let mut quoted = false;
    let mut prev: Option<char> = None;
    for (i, c) in value.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted && prev.is_some_and(char::is_alphabetic) => {
                let next = value[i + 1..].chars().find(|c| !c.is_whitespace());
                if next.is_some_and(char::is_alphabetic) {
                    return Some(i);
                }
            }
            _ => {}
        }
        if !c.is_whitespace() {
            prev = Some(c);
        }
    }
    None
}

fn string_field(
    obj: &serde_json::Map<String, serde_json::Value>,
    key: &str,
) -> Result<Option<String>, String> {
    match obj.get(key) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(serde_json::Value::Number(n)) if key == "id" => Ok(Some(n.to_string())),
        Some(_) if key == "id" => Err("\"id\" must be a string or a number".into()),
        Some(_) => Err(format!("\"{key}\" must be a string")),
    }
}

/// Parses one line of a rules file (a rule object, or a bare rule whose id is `line`).
/// `default_dialect` applies when the line names none.
pub fn parse_rule_line(
    text: &str,
    line: usize,
    default_dialect: Dialect,
    parser: &Parser,
) -> Result<RuleEntry, RulesFileError> {
    parse_rule_line_checked(text, line, default_dialect, parser, &mut Vec::new())
}

/// [`parse_rule_line`], adding to `warnings` what looks like a mistake on a valid line (a
/// comma between words of a rule read in the rule dialect by default).
pub fn parse_rule_line_checked(
    text: &str,
    line: usize,
    default_dialect: Dialect,
    parser: &Parser,
    warnings: &mut Vec<RulesFileError>,
) -> Result<RuleEntry, RulesFileError> {
    let bytes = text.as_bytes();
    let col = |byte: usize| Some(column_of(bytes, byte));
    if !is_json_line(bytes) {
        let lead = text.len() - text.trim_start().len();
        let value = text.trim();
        let id = line.to_string();
        let rule = parser.parse(value, default_dialect).map_err(|e| {
            RulesFileError::new(line, col(lead + e.offset()), Some(id.clone()), e.message())
        })?;
        if default_dialect == Dialect::Rule {
            if let Some(at) = comma_between_words(value) {
                warnings.push(comma_warning(line, col(lead + at), &id));
            }
        }
        return Ok(RuleEntry::new(id, None, None, value.to_string(), rule, line));
    }
    match plain_rule_object(text, line, default_dialect, parser) {
        Some(entry) => Ok(entry),
        None => parse_rule_object(text, line, default_dialect, parser, warnings),
    }
}

/// A rule object line through a `serde_json::Value`: the general path, and the one every
/// error and warning comes from.
fn parse_rule_object(
    text: &str,
    line: usize,
    default_dialect: Dialect,
    parser: &Parser,
    warnings: &mut Vec<RulesFileError>,
) -> Result<RuleEntry, RulesFileError> {
    let bytes = text.as_bytes();
    let col = |byte: usize| Some(column_of(bytes, byte));
    let err = |column: Option<usize>, id: Option<String>, message: String| {
        RulesFileError::new(line, column, id, message)
    };
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| err(col(e.column().saturating_sub(1)), None, json_syntax_message(&e)))?;
    let serde_json::Value::Object(obj) = value else {
        return Err(err(col(0), None, "a rule line must be a JSON object".into()));
    };
    let keys = top_level_keys(text);
    let at = |key: &str| keys.iter().rev().find(|k| k.key == key).map(|k| k.value_at);
    let object_at = text.find('{').unwrap_or(0);
    let id = string_field(&obj, "id").map_err(|m| err(at("id").and_then(col), None, m))?;
    let Some(id) = id else {
        return Err(err(col(object_at), None, "missing \"id\"".into()));
    };
    let fail = |byte: Option<usize>, m: String| err(byte.and_then(col), Some(id.clone()), m);
    for (i, k) in keys.iter().enumerate() {
        if !KEYS.contains(&k.key.as_str()) {
            let expected = KEYS.join(", ");
            let m = format!("unknown key {:?} (expected one of {expected})", k.key);
            return Err(fail(Some(k.key_at), m));
        }
        if keys[..i].iter().any(|o| o.key == k.key) {
            return Err(fail(Some(k.key_at), format!("key {:?} given twice", k.key)));
        }
    }
    let tag = string_field(&obj, "tag").map_err(|m| fail(at("tag"), m))?;
    let subscriber = string_field(&obj, "subscriber").map_err(|m| fail(at("subscriber"), m))?;
    let value = string_field(&obj, "value")
        .map_err(|m| fail(at("value"), m))?
        .ok_or_else(|| fail(Some(object_at), "missing \"value\"".into()))?;
    let given = string_field(&obj, "dialect").map_err(|m| fail(at("dialect"), m))?;
    let dialect = match given.as_deref() {
        None => default_dialect,
        Some("track") => Dialect::Track,
        Some("rule") => Dialect::Rule,
        Some(other) => {
            let m = format!("unknown dialect {other:?} (use \"track\" or \"rule\")");
            return Err(fail(at("dialect"), m));
        }
    };
    let value_at = at("value").unwrap_or(object_at);
    let rule = parser
        .parse(&value, dialect)
        .map_err(|e| fail(Some(literal_offset(text, value_at, e.offset())), e.message().into()))?;
    if given.is_none() && dialect == Dialect::Rule {
        if let Some(comma) = comma_between_words(&value) {
            let byte = literal_offset(text, value_at, comma);
            warnings.push(comma_warning(line, col(byte), &id));
        }
    }
    Ok(RuleEntry { id, tag, subscriber, value, rule, line })
}

/// A rule object with only known keys, each once, whose values are strings or `null`.
/// Without a backslash in the line every string borrows from it, so nothing is copied.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PlainRule<'a> {
    #[serde(borrow)]
    id: Option<&'a str>,
    #[serde(borrow)]
    value: Option<&'a str>,
    #[serde(borrow)]
    dialect: Option<&'a str>,
    #[serde(borrow)]
    tag: Option<&'a str>,
    #[serde(borrow)]
    subscriber: Option<&'a str>,
}

/// The fast path of [`parse_rule_line_checked`] for the common rule object: no backslash in
/// the line, known keys once each, string (or `null`) values, an `id` and a `value`, a known
/// dialect, a rule that parses and no comma warning due. It reads the line straight into
/// borrowed strings instead of a `serde_json::Value` and a second scan for key positions.
/// Anything else returns `None` and the general path reads the line again, so every error
/// and warning (and its line and column) comes from one place.
fn plain_rule_object(
    text: &str,
    line: usize,
    default_dialect: Dialect,
    parser: &Parser,
) -> Option<RuleEntry> {
    if memchr::memchr(b'\\', text.as_bytes()).is_some() {
        return None;
    }
    let plain: PlainRule<'_> = serde_json::from_str(text).ok()?;
    let (id, value) = (plain.id?, plain.value?);
    let dialect = match plain.dialect {
        None => default_dialect,
        Some("track") => Dialect::Track,
        Some("rule") => Dialect::Rule,
        Some(_) => return None,
    };
    if plain.dialect.is_none() && dialect == Dialect::Rule && comma_between_words(value).is_some() {
        return None;
    }
    let rule = parser.parse(value, dialect).ok()?;
    Some(RuleEntry {
        id: id.to_string(),
        tag: plain.tag.map(str::to_string),
        subscriber: plain.subscriber.map(str::to_string),
        value: value.to_string(),
        rule,
        line,
    })
}

fn comma_warning(line: usize, column: Option<usize>, id: &str) -> RulesFileError {
    RulesFileError::new(
        line,
        column,
        Some(id.to_string()),
        "warning: this rule is read in the rule dialect (the default), where a comma between \
         words is not an OR: every word must match; add \"dialect\":\"track\" for the track \
         dialect's OR list, or \"dialect\":\"rule\" to keep this meaning without the warning",
    )
}

/// Parses a whole rules file held in a string (see [`crate::read::read_rules_from`]); blank
/// lines are skipped. Returns every error, not just the first.
pub fn parse_rules_file(
    text: &str,
    default_dialect: Dialect,
    parser: &Parser,
) -> Result<Vec<RuleEntry>, Vec<RulesFileError>> {
    match crate::read::read_rules_from(text.as_bytes(), default_dialect, parser) {
        Ok(file) => Ok(file.entries),
        Err(crate::read::ReadRulesError::Rules(errors)) => Err(errors),
        Err(other) => Err(vec![RulesFileError::new(0, None, None, other.to_string())]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RuleEntry, RulesFileError> {
        parse_rule_line(text, 3, Dialect::Rule, &Parser::new())
    }

    /// The fast path takes only lines the general path reads the same way, and leaves every
    /// other line (errors, warnings, escapes, numeric ids) to it.
    #[test]
    fn the_plain_object_path_agrees_with_the_general_one() {
        let taken = [
            r#"{"id": "a", "value": "apple iphone"}"#,
            r#"  {"value": "nintendo,wii fit", "id": "w", "dialect": "track", "tag": "t"}"#,
            r#"{"id":"s","value":"x y","subscriber":"alice","tag":null,"dialect":"rule"}"#,
            r#"{"id": "n", "value": "a,b", "dialect": "rule"}"#,
            r#"{"id": "", "value": "é ü"}"#,
        ];
        let left = [
            r#"{"id": 7, "value": "a"}"#,
            r#"{"id": "a", "value": "a\"b\""}"#,
            r#"{"\u0069d": "a", "value": "b"}"#,
            r#"{"id": "a", "value": "nintendo,wii"}"#,
            r#"{"id": "a", "value": "b", "dialekt": "track"}"#,
            r#"{"id": "a", "value": "b", "id": "c"}"#,
            r#"{"id": "a", "value": "b", "dialect": "x"}"#,
            r#"{"id": "a", "value": 3}"#,
            r#"{"id": "a"}"#,
            r#"{"value": "a"}"#,
            r#"{"id": "a", "value": "(("}"#,
            r#"{"id": "a", "value": "b"} x"#,
            r#"{"id": "a", "value": "b""#,
        ];
        let p = Parser::new();
        for (dialect, text) in
            [Dialect::Rule, Dialect::Track].into_iter().flat_map(|d| taken.map(|t| (d, t)))
        {
            let fast = plain_rule_object(text, 4, dialect, &p).expect(text);
            let mut w = Vec::new();
            assert_eq!(parse_rule_object(text, 4, dialect, &p, &mut w), Ok(fast), "{text}");
            assert!(w.is_empty(), "{text}");
        }
        for text in left {
            assert!(plain_rule_object(text, 4, Dialect::Rule, &p).is_none(), "{text}");
        }
    }

    #[test]
    fn unknown_and_repeated_keys_are_errors_at_their_column() {
        let e = parse(r#"{"id":"a","value":"x","dialekt":"track"}"#).unwrap_err();
        assert_eq!(e.column, Some(23));
        assert_eq!(
            e.in_file("rules.jsonl").to_string(),
            "rules.jsonl:3:23: rule \"a\": unknown key \"dialekt\" \
             (expected one of id, value, dialect, tag, subscriber)"
        );
        let e = parse(r#"{"id":"a","value":"x","value":"y"}"#).unwrap_err();
        assert_eq!((e.column, e.message.as_str()), (Some(23), "key \"value\" given twice"));
        // Keys of nested objects are not rule keys.
        let e = parse(r#"{"id":"a","value":{"x":1}}"#).unwrap_err();
        assert_eq!((e.column, e.message.as_str()), (Some(19), "\"value\" must be a string"));
    }

    #[test]
    fn rule_errors_point_into_the_line_through_escapes() {
        // `(` is the 8th character of the value, which starts after `"value":"` at column 19.
        let e = parse(r#"{"id":"b","value":"\u0041pple (pie"}"#).unwrap_err();
        assert_eq!(e.message, "unbalanced '(' opened here");
        assert_eq!(e.column, Some(31));
        let e = parse("  apple (pie").unwrap_err();
        assert_eq!((e.column, e.id.as_deref()), (Some(9), Some("3")));
    }

    #[test]
    fn a_defaulted_rule_dialect_comma_warns() {
        let mut w = Vec::new();
        let text = r#"{"id":"r","value":"nintendo,wii fit"}"#;
        parse_rule_line_checked(text, 1, Dialect::Rule, &Parser::new(), &mut w).unwrap();
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].column, Some(28));
        for quiet in [
            r#"{"id":"r","value":"nintendo,wii fit","dialect":"rule"}"#,
            r#"{"id":"r","value":"nintendo,wii fit","dialect":"track"}"#,
            r#"{"id":"r","value":"\"a,b\" c"}"#,
            r#"{"id":"r","value":"price 1,000"}"#,
        ] {
            let mut w = Vec::new();
            parse_rule_line_checked(quiet, 1, Dialect::Rule, &Parser::new(), &mut w).unwrap();
            assert!(w.is_empty(), "{quiet}");
        }
        let mut w = Vec::new();
        parse_rule_line_checked("a,b", 1, Dialect::Track, &Parser::new(), &mut w).unwrap();
        assert!(w.is_empty());
    }
}
