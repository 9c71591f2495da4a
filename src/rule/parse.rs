//! The `rule` dialect (PowerTrack / API v2): a recursive-descent parser and the printer.
//!
//! Grammar (AND binds tighter than OR; white space is AND):
//!
//! ```text
//! rule  := or
//! or    := and ( "OR" and )*
//! and   := unary+
//! unary := "-" atom | atom          ("-" only when directly followed by an operand)
//! atom  := "(" or ")" | "\"phrase\"" [ "~" N ] | name ":" value | "#tag" | "@user" | "$tag" | keyword
//! ```

use super::{DistanceUnit, HasKind, IsKind, Limits, Node, RuleError, RuleErrorKind, Term};
use crate::message::GeoBox;
use crate::normalize::{char_class, fold, CharClass, Tokens, UrlMode};
use std::fmt;

/// The operators the rule dialect knows, for error messages.
const OPERATORS: &str =
    "from:, to:, url:, contains:, lang:, has:, is:, bounding_box:, point_radius:, sample:";

/// A hard cap on nesting whatever the configured limit, so that parsing, printing and matching
/// never recurse deep enough to exhaust a thread's stack.
pub(crate) const HARD_MAX_DEPTH: usize = 256;

struct Parser<'a> {
    text: &'a str,
    /// Non-ignorable characters of `text`, with their byte offsets.
    chars: Vec<(usize, char)>,
    pos: usize,
    limits: &'a Limits,
    depth: usize,
    /// Byte offset of each term, in the order terms are created (= depth-first tree order).
    term_offsets: Vec<usize>,
}

type Result<T> = std::result::Result<T, RuleError>;

pub(super) fn parse_rule(text: &str, limits: &Limits) -> Result<Node> {
    let length = text.chars().count();
    if length > limits.max_rule_chars {
        let offset = text.char_indices().nth(limits.max_rule_chars).map_or(text.len(), |(i, _)| i);
        return Err(RuleError::new(
            RuleErrorKind::TooLong { length, limit: limits.max_rule_chars },
            text,
            offset,
            format!("rule is {length} characters long; the limit is {}", limits.max_rule_chars),
        ));
    }
    if let Some((i, c)) = text.char_indices().find(|&(_, c)| char_class(c) == CharClass::Control) {
        return Err(RuleError::new(
            RuleErrorKind::ControlCharacter,
            text,
            i,
            format!("control character U+{:04X} is not allowed in a rule", c as u32),
        ));
    }
    let chars: Vec<(usize, char)> =
        text.char_indices().filter(|&(_, c)| char_class(c) != CharClass::Ignorable).collect();
    let mut p = Parser { text, chars, pos: 0, limits, depth: 0, term_offsets: Vec::new() };
    p.skip_space();
    if p.at_end() {
        return Err(p.error(RuleErrorKind::Empty, 0, "empty rule".into()));
    }
    let root = p.parse_or()?;
    p.skip_space();
    if !p.at_end() {
        // parse_or stops only at the end or at a ')'.
        return Err(p.error(RuleErrorKind::UnbalancedParen, p.offset(), "unbalanced ')'".into()));
    }
    let Some((root, _)) = root else {
        return Err(p.error(RuleErrorKind::Empty, 0, "empty rule".into()));
    };
    p.check_anchored(&root)?;
    Ok(root)
}

fn is_space(c: char) -> bool {
    char_class(c) == CharClass::Space
}

impl<'a> Parser<'a> {
    fn error(&self, kind: RuleErrorKind, offset: usize, message: String) -> RuleError {
        RuleError::new(kind, self.text, offset, message)
    }

    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).map(|&(_, c)| c)
    }

    fn peek_at(&self, k: usize) -> Option<char> {
        self.chars.get(self.pos + k).map(|&(_, c)| c)
    }

    /// Byte offset of the current character (or the end of the text).
    fn offset(&self) -> usize {
        self.offset_of(self.pos)
    }

    fn offset_of(&self, pos: usize) -> usize {
        self.chars.get(pos).map_or(self.text.len(), |&(i, _)| i)
    }

    fn skip_space(&mut self) {
        while self.peek().is_some_and(is_space) {
            self.pos += 1;
        }
    }

    /// Whether the next token is the exact token `OR`.
    fn at_or(&self) -> bool {
        self.peek() == Some('O')
            && self.peek_at(1) == Some('R')
            && self.peek_at(2).is_none_or(|c| is_space(c) || c == '(' || c == ')' || c == '"')
    }

    /// Collects `text[from..to]` (char positions) without ignorables.
    fn slice(&self, from: usize, to: usize) -> String {
        self.chars[from..to].iter().map(|&(_, c)| c).collect()
    }

    fn parse_or(&mut self) -> Result<Option<(Node, usize)>> {
        let mut branches: Vec<(Node, usize)> = Vec::new();
        let first = self.parse_and()?;
        let mut missing_first = first.is_none();
        branches.extend(first);
        loop {
            self.skip_space();
            if !self.at_or() {
                break;
            }
            let or_offset = self.offset();
            if missing_first {
                return Err(self.error(
                    RuleErrorKind::MissingOperand,
                    or_offset,
                    "OR needs an operand on its left".into(),
                ));
            }
            self.pos += 2;
            match self.parse_and()? {
                Some(b) => branches.push(b),
                None => {
                    return Err(self.error(
                        RuleErrorKind::MissingOperand,
                        or_offset,
                        "OR needs an operand on its right".into(),
                    ))
                }
            }
            missing_first = false;
        }
        if branches.len() <= 1 {
            return Ok(branches.pop());
        }
        let start = branches[0].1;
        let mut children = Vec::with_capacity(branches.len());
        for (node, offset) in branches {
            match node {
                Node::Not(_) => {
                    return Err(self.error(
                        RuleErrorKind::NegatedOr,
                        offset,
                        "a negation cannot be a branch of OR (negate inside an AND instead)".into(),
                    ))
                }
                Node::Or(inner) => children.extend(inner),
                other => children.push(other),
            }
        }
        Ok(Some((Node::Or(children), start)))
    }

    fn parse_and(&mut self) -> Result<Option<(Node, usize)>> {
        let mut items: Vec<(Node, usize)> = Vec::new();
        loop {
            self.skip_space();
            if self.at_end() || self.peek() == Some(')') || self.at_or() {
                break;
            }
            items.push(self.parse_unary()?);
        }
        if items.len() <= 1 {
            return Ok(items.pop());
        }
        let start = items[0].1;
        let mut children = Vec::with_capacity(items.len());
        for (node, _) in items {
            match node {
                Node::And(inner) => children.extend(inner),
                other => children.push(other),
            }
        }
        Ok(Some((Node::And(children), start)))
    }

    fn parse_unary(&mut self) -> Result<(Node, usize)> {
        let start = self.offset();
        let negates =
            self.peek() == Some('-') && self.peek_at(1).is_some_and(|c| !is_space(c) && c != ')');
        if !negates {
            return self.parse_atom();
        }
        self.pos += 1;
        match self.peek() {
            Some('(') => Err(self.error(
                RuleErrorKind::NegatedGroup,
                start,
                "a group cannot be negated; negate each term instead".into(),
            )),
            Some('-') if self.peek_at(1).is_some_and(|c| !is_space(c) && c != ')') => Err(self
                .error(RuleErrorKind::NegatedGroup, start, "a negation cannot be negated".into())),
            _ => {
                let (atom, _) = self.parse_atom()?;
                Ok((Node::Not(Box::new(atom)), start))
            }
        }
    }

    fn parse_atom(&mut self) -> Result<(Node, usize)> {
        let start = self.offset();
        match self.peek() {
            Some('(') => {
                self.depth += 1;
                let max = self.limits.max_depth.min(HARD_MAX_DEPTH);
                if self.depth > max {
                    return Err(self.error(
                        RuleErrorKind::TooDeep { limit: max },
                        start,
                        format!("parentheses nested deeper than {max}"),
                    ));
                }
                self.pos += 1;
                let inner = self.parse_or()?;
                self.skip_space();
                if self.peek() != Some(')') {
                    return Err(self.error(
                        RuleErrorKind::UnbalancedParen,
                        start,
                        "unbalanced '(' opened here".into(),
                    ));
                }
                self.pos += 1;
                self.depth -= 1;
                match inner {
                    Some((node, _)) => Ok((node, start)),
                    None => {
                        Err(self.error(RuleErrorKind::EmptyGroup, start, "empty group '()'".into()))
                    }
                }
            }
            Some('"') => {
                let text = self.quoted()?;
                let term = if self.peek() == Some('~') {
                    let distance = self.proximity()?;
                    let words = words_of(&text);
                    if words.is_empty() {
                        return Err(self.no_word(start, &text));
                    }
                    Term::Proximity { words, distance }
                } else {
                    let norm = Tokens::of(&text, UrlMode::Keep);
                    if norm.words().is_empty() {
                        return Err(self.no_word(start, &text));
                    }
                    Term::Phrase(norm.text().to_string())
                };
                Ok(self.term(term, start))
            }
            _ => {
                let term = self.bare()?;
                Ok(self.term(term, start))
            }
        }
    }

    fn term(&mut self, term: Term, offset: usize) -> (Node, usize) {
        self.term_offsets.push(offset);
        (Node::Term(term), offset)
    }

    fn no_word(&self, offset: usize, text: &str) -> RuleError {
        let kind = RuleErrorKind::NoWord;
        if text.chars().all(is_space) {
            return self.error(kind, offset, "empty phrase '\"\"'".into());
        }
        self.error(
            kind,
            offset,
            format!("\"{text}\" has no word to match (use contains:\"…\" for punctuation)"),
        )
    }

    /// Reads `"…"` at the current position and returns its content.
    fn quoted(&mut self) -> Result<String> {
        let open = self.pos;
        let close = (open + 1..self.chars.len()).find(|&k| self.chars[k].1 == '"');
        let Some(close) = close else {
            return Err(self.error(
                RuleErrorKind::UnbalancedQuote,
                self.offset_of(open),
                "unbalanced '\"' opened here".into(),
            ));
        };
        self.pos = close + 1;
        Ok(self.slice(open + 1, close))
    }

    /// Reads `~N` at the current position.
    fn proximity(&mut self) -> Result<u8> {
        let tilde = self.offset();
        self.pos += 1;
        let from = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let max = self.limits.max_proximity;
        if from == self.pos {
            return Err(self.error(
                RuleErrorKind::InvalidProximity,
                tilde,
                "'~' must be followed by a number".into(),
            ));
        }
        let digits = self.slice(from, self.pos);
        match digits.parse::<u64>() {
            Ok(n) if n <= u64::from(max) => Ok(n as u8),
            _ => Err(self.error(
                RuleErrorKind::InvalidProximity,
                tilde,
                format!("proximity ~{digits} is larger than the limit ~{max}"),
            )),
        }
    }

    /// Reads a bare token: an operator, an entity or a keyword.
    fn bare(&mut self) -> Result<Term> {
        let start = self.pos;
        let offset = self.offset();
        // An operator name: lower-case ASCII letters and '_' followed by ':'.
        let mut k = self.pos;
        while self.chars.get(k).is_some_and(|&(_, c)| c.is_ascii_lowercase() || c == '_') {
            k += 1;
        }
        if k > self.pos && self.chars.get(k).is_some_and(|&(_, c)| c == ':') {
            let name = self.slice(self.pos, k);
            self.pos = k + 1;
            return self.operator(&name, offset);
        }
        while self.peek().is_some_and(|c| !is_space(c) && !matches!(c, '(' | ')' | '"')) {
            self.pos += 1;
        }
        let token = self.slice(start, self.pos);
        let mut chars = token.chars();
        let sigil = chars.next();
        let rest = chars.as_str();
        if let (Some(s @ ('#' | '@' | '$')), false) = (sigil, rest.is_empty()) {
            let value = fold(rest);
            if !value.chars().any(|c| char_class(c).is_word()) {
                return Err(self.error(
                    RuleErrorKind::NoWord,
                    offset,
                    format!("'{token}' has no word character after '{s}'"),
                ));
            }
            return Ok(match s {
                '#' => Term::Hashtag(value),
                '@' => Term::Mention(value),
                _ => Term::Cashtag(value),
            });
        }
        let words = words_of(&token);
        if words.is_empty() {
            return Err(self.error(
                RuleErrorKind::NoWord,
                offset,
                format!("keyword '{token}' has no word to match (quote it, or use contains:\"…\")"),
            ));
        }
        Ok(Term::Keyword(words))
    }

    /// Reads an operator value: `"…"`, `[…]` (geo operators only) or a bare run.
    fn value(&mut self, bracketed: bool) -> Result<String> {
        match self.peek() {
            Some('"') => self.quoted(),
            Some('[') if bracketed => {
                let open = self.pos;
                let close = (open..self.chars.len()).find(|&k| self.chars[k].1 == ']');
                let Some(close) = close else {
                    return Err(self.error(
                        RuleErrorKind::InvalidValue,
                        self.offset_of(open),
                        "unbalanced '[' opened here".into(),
                    ));
                };
                self.pos = close + 1;
                Ok(self.slice(open, close + 1))
            }
            _ => {
                let from = self.pos;
                while self.peek().is_some_and(|c| !is_space(c) && !matches!(c, '(' | ')' | '"')) {
                    self.pos += 1;
                }
                Ok(self.slice(from, self.pos))
            }
        }
    }

    fn operator(&mut self, name: &str, offset: usize) -> Result<Term> {
        let known = matches!(
            name,
            "from"
                | "to"
                | "url"
                | "contains"
                | "lang"
                | "has"
                | "is"
                | "bounding_box"
                | "point_radius"
                | "sample"
        );
        if !known {
            let hint = if matches!(name, "http" | "https" | "ftp") {
                " (to match a link use url:\"…\")"
            } else {
                ""
            };
            return Err(self.error(
                RuleErrorKind::UnknownOperator(name.to_string()),
                offset,
                format!(
                    "unknown operator '{name}:'{hint}; supported: {OPERATORS}; quote the text to match it literally"
                ),
            ));
        }
        let raw = self.value(matches!(name, "bounding_box" | "point_radius"))?;
        if raw.trim().is_empty() {
            return Err(self.error(
                RuleErrorKind::MissingValue,
                offset,
                format!("operator '{name}:' needs a value"),
            ));
        }
        let invalid = |p: &Self, why: String| p.error(RuleErrorKind::InvalidValue, offset, why);
        Ok(match name {
            "from" | "to" => {
                let v = fold(raw.trim().trim_start_matches('@').trim_matches(is_space));
                if v.is_empty() {
                    return Err(invalid(self, format!("'{name}:' needs a user name or id")));
                }
                if name == "from" {
                    Term::From(v)
                } else {
                    Term::To(v)
                }
            }
            "url" => {
                let words = words_of(&raw);
                if words.is_empty() {
                    return Err(self.error(
                        RuleErrorKind::NoWord,
                        offset,
                        format!("url:\"{raw}\" has no word to match"),
                    ));
                }
                Term::Url(words)
            }
            "contains" => Term::Contains(Tokens::of(&raw, UrlMode::Keep).text().to_string()),
            "lang" => {
                let v = fold(&raw);
                if !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                    return Err(invalid(self, format!("'{raw}' is not a language tag")));
                }
                Term::Lang(v)
            }
            "has" => Term::Has(match raw.as_str() {
                "links" => HasKind::Links,
                "mentions" => HasKind::Mentions,
                "hashtags" => HasKind::Hashtags,
                "media" => HasKind::Media,
                "geo" => HasKind::Geo,
                _ => {
                    return Err(invalid(
                        self,
                        format!(
                            "unknown has:{raw}; supported: links, mentions, hashtags, media, geo"
                        ),
                    ))
                }
            }),
            "is" => Term::Is(match raw.as_str() {
                "retweet" => IsKind::Retweet,
                "reply" => IsKind::Reply,
                "quote" => IsKind::Quote,
                _ => {
                    return Err(invalid(
                        self,
                        format!("unknown is:{raw}; supported: retweet, reply, quote"),
                    ))
                }
            }),
            "sample" => match raw.parse::<u64>() {
                Ok(p @ 1..=100) => Term::Sample(p as u8),
                _ => {
                    return Err(invalid(
                        self,
                        format!("sample:{raw} must be a whole percentage from 1 to 100"),
                    ))
                }
            },
            "bounding_box" => {
                let nums = geo_numbers(&raw).ok_or_else(|| {
                    invalid(self, format!("bounding_box:{raw} must be [west south east north]"))
                })?;
                let [w, s, e, n] = nums[..] else {
                    return Err(invalid(
                        self,
                        format!("bounding_box:{raw} needs 4 numbers: [west south east north]"),
                    ));
                };
                let ok = (-180.0..=180.0).contains(&w)
                    && (-180.0..=180.0).contains(&e)
                    && (-90.0..=90.0).contains(&s)
                    && (-90.0..=90.0).contains(&n)
                    && w <= e
                    && s <= n;
                if !ok {
                    return Err(invalid(
                        self,
                        format!("bounding_box:{raw} needs -180 <= west <= east <= 180 and -90 <= south <= north <= 90"),
                    ));
                }
                Term::BoundingBox(GeoBox { west: w, south: s, east: e, north: n })
            }
            "point_radius" => {
                let bad = || {
                    format!("point_radius:{raw} must be [lon lat radius] with radius in km or mi, e.g. [2.35 48.85 10km]")
                };
                let inner = raw
                    .strip_prefix('[')
                    .and_then(|r| r.strip_suffix(']'))
                    .ok_or_else(|| invalid(self, bad()))?;
                let parts: Vec<&str> = inner.split(is_space).filter(|s| !s.is_empty()).collect();
                let [lon, lat, r] = parts[..] else { return Err(invalid(self, bad())) };
                let (num, unit) = if let Some(n) = r.strip_suffix("km") {
                    (n, DistanceUnit::Km)
                } else if let Some(n) = r.strip_suffix("mi") {
                    (n, DistanceUnit::Mi)
                } else {
                    return Err(invalid(self, bad()));
                };
                let (Some(lon), Some(lat), Some(radius)) = (finite(lon), finite(lat), finite(num))
                else {
                    return Err(invalid(self, bad()));
                };
                if !(-180.0..=180.0).contains(&lon)
                    || !(-90.0..=90.0).contains(&lat)
                    || radius <= 0.0
                {
                    return Err(invalid(
                        self,
                        format!("point_radius:{raw} needs -180 <= lon <= 180, -90 <= lat <= 90 and a radius above 0"),
                    ));
                }
                Term::PointRadius { lon, lat, radius, unit }
            }
            _ => unreachable!("operator names are checked above"),
        })
    }

    fn check_anchored(&self, root: &Node) -> Result<()> {
        if anchored(root) {
            return Ok(());
        }
        let mut index = 0;
        let mut culprit = None;
        let mut all_negated = true;
        root.visit_terms(&mut |t, negated| {
            all_negated &= negated;
            if culprit.is_none() && (negated || !t.is_anchor()) {
                culprit = Some(index);
            }
            index += 1;
        });
        let offset = culprit.and_then(|i| self.term_offsets.get(i).copied()).unwrap_or(0);
        let message = if all_negated {
            "a rule made only of negations matches nothing by itself; add a term to match"
                .to_string()
        } else if matches!(root, Node::Or(_)) {
            "every branch of an OR must be able to match by itself (has:, is:, lang: and sample: only narrow other terms; negations never match alone)".to_string()
        } else {
            "has:, is:, lang: and sample: cannot stand alone; combine them with a keyword or another operator".to_string()
        };
        Err(self.error(RuleErrorKind::NotAnchored, offset, message))
    }
}

/// Whether a tree can select messages by itself: an AND is anchored if any child is, an OR
/// only if all children are, a negation never, a leaf unless it is `has:`/`is:`/`lang:`/`sample:`.
pub(crate) fn anchored(node: &Node) -> bool {
    match node {
        Node::And(children) => children.iter().any(anchored),
        Node::Or(children) => children.iter().all(anchored),
        Node::Not(_) => false,
        Node::Term(t) => t.is_anchor(),
    }
}

fn words_of(text: &str) -> Vec<String> {
    Tokens::of(text, UrlMode::Keep).word_texts().map(str::to_string).collect()
}

fn finite(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|x| x.is_finite())
}

fn geo_numbers(raw: &str) -> Option<Vec<f64>> {
    let inner = raw.strip_prefix('[')?.strip_suffix(']')?;
    inner.split(is_space).filter(|s| !s.is_empty()).map(finite).collect()
}

pub(super) fn print_rule(node: &Node, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match node {
        Node::And(children) => {
            for (i, c) in children.iter().enumerate() {
                if i > 0 {
                    f.write_str(" ")?;
                }
                if matches!(c, Node::Or(_) | Node::And(_)) {
                    f.write_str("(")?;
                    print_rule(c, f)?;
                    f.write_str(")")?;
                } else {
                    print_rule(c, f)?;
                }
            }
            Ok(())
        }
        Node::Or(children) => {
            for (i, c) in children.iter().enumerate() {
                if i > 0 {
                    f.write_str(" OR ")?;
                }
                if matches!(c, Node::Or(_)) {
                    f.write_str("(")?;
                    print_rule(c, f)?;
                    f.write_str(")")?;
                } else {
                    print_rule(c, f)?;
                }
            }
            Ok(())
        }
        Node::Not(inner) => {
            f.write_str("-")?;
            print_rule(inner, f)
        }
        Node::Term(t) => print_term(t, f),
    }
}

/// A number printed in its shortest form that parses back to the same value (`5e-324`, not
/// 324 decimals).
struct Num(f64);

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plain = format!("{}", self.0);
        let sci = format!("{:e}", self.0);
        f.write_str(if sci.len() < plain.len() { &sci } else { &plain })
    }
}

fn needs_quotes(v: &str) -> bool {
    v.chars().any(|c| is_space(c) || matches!(c, '(' | ')' | '"' | '['))
}

fn print_term(term: &Term, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match term {
        Term::Keyword(words) => f.write_str(&words.join("-")),
        Term::Token(t) => write!(f, "\"{t}\""),
        Term::Phrase(p) => write!(f, "\"{p}\""),
        Term::Proximity { words, distance } => write!(f, "\"{}\"~{distance}", words.join(" ")),
        Term::Hashtag(t) => write!(f, "#{t}"),
        Term::Mention(t) => write!(f, "@{t}"),
        Term::Cashtag(t) => write!(f, "${t}"),
        Term::From(v) | Term::To(v) | Term::Follow(v) => {
            let name = if matches!(term, Term::To(_)) { "to" } else { "from" };
            if needs_quotes(v) {
                write!(f, "{name}:\"{v}\"")
            } else {
                write!(f, "{name}:{v}")
            }
        }
        Term::Url(words) => write!(f, "url:\"{}\"", words.join(" ")),
        Term::Contains(s) => write!(f, "contains:\"{s}\""),
        Term::Lang(l) => write!(f, "lang:{l}"),
        Term::Has(h) => write!(
            f,
            "has:{}",
            match h {
                HasKind::Links => "links",
                HasKind::Mentions => "mentions",
                HasKind::Hashtags => "hashtags",
                HasKind::Media => "media",
                HasKind::Geo => "geo",
            }
        ),
        Term::Is(k) => write!(
            f,
            "is:{}",
            match k {
                IsKind::Retweet => "retweet",
                IsKind::Reply => "reply",
                IsKind::Quote => "quote",
            }
        ),
        Term::Sample(p) => write!(f, "sample:{p}"),
        Term::BoundingBox(b) | Term::Locations(b) => write!(
            f,
            "bounding_box:[{} {} {} {}]",
            Num(b.west),
            Num(b.south),
            Num(b.east),
            Num(b.north)
        ),
        Term::PointRadius { lon, lat, radius, unit } => {
            let u = match unit {
                DistanceUnit::Km => "km",
                DistanceUnit::Mi => "mi",
            };
            write!(f, "point_radius:[{} {} {}{u}]", Num(*lon), Num(*lat), Num(*radius))
        }
    }
}
