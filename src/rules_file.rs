//! Rule files: one rule per line as JSON (`{"id": …, "value": …, "tag": …, "dialect": …}`), the
//! format the `match` and `run` commands read.

use crate::rule::{Dialect, Parser, Rule};
use std::fmt;

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

/// A rules-file line that could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RulesFileError {
    /// The 1-based line.
    pub line: usize,
    /// The rule id, when the line had one.
    pub id: Option<String>,
    /// What is wrong (for a rule syntax error: `column C: …`).
    pub message: String,
}

impl fmt::Display for RulesFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.id {
            Some(id) => write!(f, "rule {} (id {:?}), {}", self.line, id, self.message),
            None => write!(f, "rule {}, {}", self.line, self.message),
        }
    }
}

impl std::error::Error for RulesFileError {}

fn string_field(
    obj: &serde_json::Map<String, serde_json::Value>,
    key: &str,
) -> Result<Option<String>, String> {
    match obj.get(key) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
        Some(serde_json::Value::Number(n)) if key == "id" => Ok(Some(n.to_string())),
        Some(_) => Err(format!("\"{key}\" must be a string")),
    }
}

/// Parses one line of a rules file. `default_dialect` applies when the line has no `dialect`.
pub fn parse_rule_line(
    text: &str,
    line: usize,
    default_dialect: Dialect,
    parser: &Parser,
) -> Result<RuleEntry, RulesFileError> {
    let err = |id: Option<String>, message: String| RulesFileError { line, id, message };
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| err(None, format!("invalid JSON: {e}")))?;
    let serde_json::Value::Object(obj) = value else {
        return Err(err(None, "a rule line must be a JSON object".into()));
    };
    let id = string_field(&obj, "id").map_err(|m| err(None, m))?;
    let Some(id) = id else { return Err(err(None, "missing \"id\"".into())) };
    let fail = |m: String| err(Some(id.clone()), m);
    let tag = string_field(&obj, "tag").map_err(fail)?;
    let subscriber = string_field(&obj, "subscriber").map_err(fail)?;
    let value = string_field(&obj, "value")
        .map_err(fail)?
        .ok_or_else(|| fail("missing \"value\"".into()))?;
    let dialect = match string_field(&obj, "dialect").map_err(fail)?.as_deref() {
        None => default_dialect,
        Some("track") => Dialect::Track,
        Some("rule") => Dialect::Rule,
        Some(other) => {
            return Err(fail(format!("unknown dialect {other:?} (use \"track\" or \"rule\")")))
        }
    };
    let rule = parser.parse(&value, dialect).map_err(|e| fail(e.to_string()))?;
    Ok(RuleEntry { id, tag, subscriber, value, rule, line })
}

/// Parses a whole rules file; blank lines are skipped. Returns every error, not just the first.
pub fn parse_rules_file(
    text: &str,
    default_dialect: Dialect,
    parser: &Parser,
) -> Result<Vec<RuleEntry>, Vec<RulesFileError>> {
    let mut entries = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match parse_rule_line(line, i + 1, default_dialect, parser) {
            Ok(e) => entries.push(e),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(entries)
    } else {
        Err(errors)
    }
}
