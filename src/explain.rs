//! Why a rule matches a message, or does not: a tree mirroring the rule.
//!
//! Each node of the rule becomes an [`ExplainNode`] with its verdict; each term says in which
//! fields it was found and at which byte spans; a node that failed says why (the AND child
//! that was absent, the negation that fired, the filter that was false, the phrase whose
//! words were all there but not adjacent). [`Explanation::reason`] sums it up in one line:
//! for a miss, the first clause that failed; for a match, the terms that made it.
//!
//! Verdicts come from the spec's term definitions (the [`reference`](crate::reference)
//! matcher's), evaluated on the normalised message; the compiled matcher does not depend on
//! this module. Tests check that the verdict equals both matchers' on the differential
//! test cases.
//!
//! ```
//! use streamtrack::explain::explain;
//! use streamtrack::{Message, Rule};
//! let rule = Rule::parse("apple -pie").unwrap();
//! let e = explain(&rule, &Message::new("1", "I ate apple pie"));
//! assert!(!e.matched);
//! assert_eq!(e.reason, "no match: the negation -pie fired (pie in text at 12..15)");
//! ```

use crate::message::Message;
use crate::normalize::{
    is_boundary_at, is_phrase_start_at, no_space_run_holds, FieldKind, NormalizedMessage, Tokens,
    UrlMode,
};
use crate::reference::term_matches;
use crate::rule::{DistanceUnit, HasKind, IsKind, Node, Rule, Term};
use std::fmt::{self, Write as _};
use std::ops::Range;

/// The explanation of one rule against one message.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "json", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Explanation {
    /// Whether the rule matches the message.
    pub matched: bool,
    /// One line: for a miss, the first clause that failed and why; for a match, the terms
    /// that made it.
    pub reason: String,
    /// The tree, mirroring the rule's.
    pub tree: ExplainNode,
}

/// The kind of a rule node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "json", derive(serde::Serialize))]
#[cfg_attr(feature = "json", serde(rename_all = "lowercase"))]
#[non_exhaustive]
pub enum NodeKind {
    /// All children must match.
    And,
    /// One child must match.
    Or,
    /// The child must not match.
    Not,
    /// A term (keyword, phrase, operator…).
    Term,
}

/// A node of the explanation.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "json", derive(serde::Serialize))]
#[non_exhaustive]
pub struct ExplainNode {
    /// What the node is.
    pub kind: NodeKind,
    /// The node as rule text (terms in normal form).
    pub text: String,
    /// Whether the node holds for the message (for a `Not`: whether its term is absent).
    pub matched: bool,
    /// Where a term was found (empty for other nodes, and for terms that read no field).
    pub hits: Vec<Hit>,
    /// Why the node failed, or what an operator read.
    pub note: Option<String>,
    /// The children (the term under a `Not`; the operands of `And` and `Or`).
    pub children: Vec<ExplainNode>,
}

/// Where a term was found.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "json", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Hit {
    /// The field: `text`, `quoted_text`, `retweeted_text`, `url`, `media`, `hashtag`,
    /// `mention`, or an entity list (`hashtags`, `mentions`, `cashtags`).
    pub field: &'static str,
    /// Byte ranges of the field as given in the message (for `text`: of `Message::text`).
    pub spans: Vec<Range<usize>>,
    /// The normalised text found.
    pub found: String,
}

/// Explains `rule` against `msg`.
pub fn explain(rule: &Rule, msg: &Message) -> Explanation {
    explain_prepared(rule, &NormalizedMessage::of_reference(msg))
}

/// Explains `rule` against an already prepared message.
pub fn explain_prepared(rule: &Rule, msg: &NormalizedMessage) -> Explanation {
    let tree = node(rule.root(), msg);
    let reason = if tree.matched {
        let mut made = Vec::new();
        why_match(&tree, &mut made);
        format!("match: {}", made.join(", "))
    } else {
        format!("no match: {}", why_not(&tree))
    };
    Explanation { matched: tree.matched, reason, tree }
}

fn field_name(k: FieldKind) -> &'static str {
    match k {
        FieldKind::Text => "text",
        FieldKind::QuotedText => "quoted_text",
        FieldKind::RetweetedText => "retweeted_text",
        FieldKind::Url => "url",
        FieldKind::Media => "media",
        FieldKind::Hashtag => "hashtag",
        FieldKind::Mention => "mention",
    }
}

fn node(n: &Node, msg: &NormalizedMessage) -> ExplainNode {
    match n {
        Node::And(children) | Node::Or(children) => {
            let is_and = matches!(n, Node::And(_));
            let kids: Vec<ExplainNode> = children.iter().map(|c| node(c, msg)).collect();
            let matched = if is_and {
                kids.iter().all(|k| k.matched)
            } else {
                kids.iter().any(|k| k.matched)
            };
            let sep = if is_and { " " } else { " OR " };
            let text = kids
                .iter()
                .map(|k| match k.kind {
                    // AND binds tighter than OR: only an OR inside an AND needs parentheses.
                    NodeKind::Or if is_and => format!("({})", k.text),
                    _ => k.text.clone(),
                })
                .collect::<Vec<_>>()
                .join(sep);
            let note = (!matched).then(|| {
                if is_and {
                    let i = kids.iter().position(|k| !k.matched).expect("a failed child");
                    format!("clause {} of {} failed: {}", i + 1, kids.len(), kids[i].text)
                } else {
                    "no alternative matched".to_string()
                }
            });
            let kind = if is_and { NodeKind::And } else { NodeKind::Or };
            ExplainNode { kind, text, matched, hits: Vec::new(), note, children: kids }
        }
        Node::Not(inner) => {
            let child = node(inner, msg);
            let matched = !child.matched;
            let note = (!matched).then(|| format!("the negation -{} fired", child.text));
            ExplainNode {
                kind: NodeKind::Not,
                text: format!("-{}", child.text),
                matched,
                hits: Vec::new(),
                note,
                children: vec![child],
            }
        }
        Node::Term(t) => term(t, msg),
    }
}

fn term(t: &Term, msg: &NormalizedMessage) -> ExplainNode {
    let matched = term_matches(t, msg);
    let mut hits = Vec::new();
    let mut note = None;
    let fields = || msg.fields().iter();
    match t {
        Term::Keyword(words) | Term::Url(words) => {
            let url_only = matches!(t, Term::Url(_));
            for f in fields().filter(|f| !url_only || f.kind == FieldKind::Url) {
                push_hit(&mut hits, f.kind, &f.tokens, sequences(&f.tokens, words));
            }
            if !matched && words.len() > 1 {
                note = scattered(msg, words, "consecutive");
            }
        }
        Term::Token(tok) => {
            for f in fields() {
                let t = &f.tokens;
                let spans = (0..t.raw_tokens().len())
                    .filter(|&i| t.raw_token_text(i) == tok)
                    .map(|i| t.raw_tokens()[i].norm.clone())
                    .collect();
                push_norm_hit(&mut hits, f.kind, t, spans);
            }
            if !matched {
                note = Some(format!("no raw token is exactly {tok:?}"));
            }
        }
        Term::Phrase(p) | Term::Contains(p) => {
            let bounded = matches!(t, Term::Phrase(_));
            for f in fields() {
                let text = f.tokens.text();
                let spans = occurrences(text, p)
                    .filter(|&i| {
                        !bounded
                            || (is_phrase_start_at(text, i) && is_boundary_at(text, i + p.len()))
                    })
                    .map(|i| i..i + p.len())
                    .collect();
                push_norm_hit(&mut hits, f.kind, &f.tokens, spans);
            }
            if !matched && bounded {
                let words: Vec<String> =
                    Tokens::of(p, UrlMode::Keep).word_texts().map(String::from).collect();
                let in_sequence = fields().any(|f| !sequences(&f.tokens, &words).is_empty());
                note = if in_sequence {
                    Some(format!(
                        "the words {} are there in sequence, but not as written (punctuation \
                         or spacing differs)",
                        words.join(" ")
                    ))
                } else {
                    scattered(msg, &words, "adjacent")
                }
                .or_else(|| {
                    fields()
                        .any(|f| f.tokens.text().contains(p.as_str()))
                        .then(|| "found only inside longer words (no word boundary)".into())
                });
            }
        }
        Term::Proximity { words, distance } => {
            for f in fields() {
                let spans = (0..f.tokens.words().len())
                    .filter(|&i| words.iter().any(|w| word_at(&f.tokens, i, w)))
                    .map(|i| i..i + 1)
                    .collect();
                push_hit(&mut hits, f.kind, &f.tokens, spans);
            }
            if !matched {
                note = scattered(msg, words, &format!("within {distance}"));
            }
        }
        Term::Hashtag(x) | Term::Mention(x) | Term::Cashtag(x) => {
            let (list, name) = match t {
                Term::Hashtag(_) => (&msg.hashtags, "hashtags"),
                Term::Mention(_) => (&msg.mentions, "mentions"),
                _ => (&msg.cashtags, "cashtags"),
            };
            if list.contains(x) {
                hits.push(Hit { field: name, spans: Vec::new(), found: x.clone() });
            } else {
                let have: Vec<&str> = list.iter().collect();
                note = Some(format!("{name}: {have:?}"));
            }
        }
        _ => note = Some(filter_note(t, msg)),
    }
    if matched && hits.is_empty() && note.is_none() {
        note = Some(filter_note(t, msg));
    }
    ExplainNode {
        kind: NodeKind::Term,
        text: describe(t),
        matched,
        hits,
        note,
        children: Vec::new(),
    }
}

/// What an operator read from the message.
fn filter_note(t: &Term, msg: &NormalizedMessage) -> String {
    let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "none".into());
    let geo = match (msg.coordinates, msg.place) {
        (Some((x, y)), _) => format!("point [{x} {y}]"),
        (None, Some(b)) => format!("place [{} {} {} {}]", b.west, b.south, b.east, b.north),
        (None, None) => "no coordinates or place".into(),
    };
    match t {
        Term::From(_) => format!("user {}, user id {}", opt(&msg.user), opt(&msg.user_id)),
        Term::To(_) => format!(
            "in reply to {}, user id {}",
            opt(&msg.in_reply_to_user),
            opt(&msg.in_reply_to_user_id)
        ),
        Term::Follow(_) => format!("user id {}", opt(&msg.user_id)),
        Term::Lang(_) => format!("lang {}", opt(&msg.lang)),
        Term::Has(h) => {
            let v = match h {
                HasKind::Links => msg.has_links,
                HasKind::Media => msg.has_media,
                HasKind::Mentions => !msg.mentions.is_empty(),
                HasKind::Hashtags => !msg.hashtags.is_empty(),
                HasKind::Geo => msg.has_geo(),
            };
            format!("{} is {v}", describe(t))
        }
        Term::Is(k) => {
            let v = match k {
                IsKind::Retweet => msg.is_retweet,
                IsKind::Reply => msg.is_reply,
                IsKind::Quote => msg.is_quote,
            };
            format!("{} is {v}", describe(t))
        }
        Term::Sample(p) => {
            format!(
                "id hash mod 100 = {} (< {p} needed)",
                crate::reference::fnv1a64(msg.id.as_bytes()) % 100
            )
        }
        Term::BoundingBox(_) | Term::PointRadius { .. } | Term::Locations(_) => geo,
        _ => String::new(),
    }
}

/// For a miss of several words: a note when every word is in the message but not `how`.
fn scattered(msg: &NormalizedMessage, words: &[String], how: &str) -> Option<String> {
    let present = |w: &String| {
        msg.fields().iter().any(|f| (0..f.tokens.words().len()).any(|i| word_at(&f.tokens, i, w)))
    };
    match words.iter().find(|w| !present(w)) {
        None if words.len() > 1 => {
            Some(format!("the words {} are all there, but not {how} in one field", words.join(" ")))
        }
        None => None,
        Some(w) => Some(format!("the word {w:?} is absent")),
    }
}

fn word_at(t: &Tokens, i: usize, w: &str) -> bool {
    let text = t.word_text(i);
    text == w || (t.words()[i].no_space && !w.is_empty() && no_space_run_holds(text, w, true, true))
}

/// Word ranges `[start, end)` where `words` sit consecutively (as the reference matches).
fn sequences(t: &Tokens, words: &[String]) -> Vec<Range<usize>> {
    let n = t.words().len();
    let k = words.len();
    if k == 0 || k > n {
        return Vec::new();
    }
    (0..=n - k)
        .filter(|&s| {
            words.iter().enumerate().all(|(j, r)| {
                let w = t.word_text(s + j);
                w == r
                    || (t.words()[s + j].no_space && no_space_run_holds(w, r, j == 0, j == k - 1))
            })
        })
        .map(|s| s..s + k)
        .collect()
}

fn occurrences<'a>(text: &'a str, p: &'a str) -> impl Iterator<Item = usize> + 'a {
    let step = p.chars().next().map_or(1, char::len_utf8);
    let mut from = 0;
    std::iter::from_fn(move || {
        if p.is_empty() || from > text.len() {
            return None;
        }
        let i = from + text[from..].find(p)?;
        from = i + step;
        Some(i)
    })
}

/// A hit from word ranges.
fn push_hit(hits: &mut Vec<Hit>, kind: FieldKind, t: &Tokens, words: Vec<Range<usize>>) {
    if words.is_empty() {
        return;
    }
    let w = t.words();
    let spans = words.iter().map(|r| w[r.start].source.start..w[r.end - 1].source.end).collect();
    let found = words
        .iter()
        .map(|r| t.text()[w[r.start].norm.start..w[r.end - 1].norm.end].to_string())
        .collect::<Vec<_>>()
        .join(" | ");
    hits.push(Hit { field: field_name(kind), spans, found });
}

/// A hit from byte ranges of the normalised text, mapped back to the source through the
/// raw tokens they fall in.
fn push_norm_hit(hits: &mut Vec<Hit>, kind: FieldKind, t: &Tokens, norm: Vec<Range<usize>>) {
    if norm.is_empty() {
        return;
    }
    let raws = t.raw_tokens();
    let to_source = |r: &Range<usize>| {
        let first = raws.iter().find(|x| x.norm.end > r.start);
        let last = raws.iter().rev().find(|x| x.norm.start < r.end);
        match (first, last) {
            (Some(a), Some(b)) => {
                // Exact inside one raw token whose normal form has the source's length.
                if a == b && a.norm.len() == a.source.len() {
                    let off = a.source.start + (r.start - a.norm.start);
                    off..off + r.len()
                } else {
                    a.source.start..b.source.end
                }
            }
            _ => r.clone(),
        }
    };
    let spans = norm.iter().map(to_source).collect();
    let found =
        norm.iter().map(|r| t.text()[r.clone()].to_string()).collect::<Vec<_>>().join(" | ");
    hits.push(Hit { field: field_name(kind), spans, found });
}

/// A term as rule text (normal form).
fn describe(t: &Term) -> String {
    let quote = |s: &str| format!("\"{s}\"");
    match t {
        Term::Keyword(w) if w.len() == 1 => w[0].clone(),
        Term::Keyword(w) => quote(&w.join(" ")),
        Term::Token(s) => s.clone(),
        Term::Phrase(p) => quote(p),
        Term::Proximity { words, distance } => format!("{}~{distance}", quote(&words.join(" "))),
        Term::Hashtag(x) => format!("#{x}"),
        Term::Mention(x) => format!("@{x}"),
        Term::Cashtag(x) => format!("${x}"),
        Term::From(x) => format!("from:{x}"),
        Term::To(x) => format!("to:{x}"),
        Term::Url(w) => format!("url:{}", quote(&w.join(" "))),
        Term::Contains(s) => format!("contains:{}", quote(s)),
        Term::Lang(l) => format!("lang:{l}"),
        Term::Has(h) => format!("has:{}", format!("{h:?}").to_lowercase()),
        Term::Is(k) => format!("is:{}", format!("{k:?}").to_lowercase()),
        Term::BoundingBox(b) => {
            format!("bounding_box:[{} {} {} {}]", b.west, b.south, b.east, b.north)
        }
        Term::PointRadius { lon, lat, radius, unit } => {
            let u = match unit {
                DistanceUnit::Km => "km",
                DistanceUnit::Mi => "mi",
            };
            format!("point_radius:[{lon} {lat} {radius}{u}]")
        }
        Term::Sample(p) => format!("sample:{p}"),
        Term::Follow(id) => format!("follow:{id}"),
        Term::Locations(b) => format!("locations:[{} {} {} {}]", b.west, b.south, b.east, b.north),
    }
}

/// The first failed clause, followed down to a term (or the negation that fired).
fn why_not(n: &ExplainNode) -> String {
    match n.kind {
        NodeKind::And => match n.children.iter().find(|c| !c.matched) {
            Some(c) => why_not(c),
            None => "?".into(),
        },
        NodeKind::Or => {
            let each: Vec<String> = n.children.iter().map(why_not).collect();
            format!("no alternative of ({}) matched: {}", n.text, each.join("; "))
        }
        NodeKind::Not => {
            let child = &n.children[0];
            let at = child
                .hits
                .first()
                .map(|h| format!(" ({} in {} at {})", h.found, h.field, spans(&h.spans)))
                .unwrap_or_default();
            format!("the negation {} fired{at}", n.text)
        }
        NodeKind::Term => match &n.note {
            Some(why) if !why.is_empty() => format!("{} is absent: {why}", n.text),
            _ => format!("{} is absent", n.text),
        },
    }
}

/// The positive terms that made a match (in the branches that matched).
fn why_match(n: &ExplainNode, out: &mut Vec<String>) {
    match n.kind {
        NodeKind::And | NodeKind::Or => {
            n.children.iter().filter(|c| c.matched).for_each(|c| why_match(c, out))
        }
        NodeKind::Not => {}
        NodeKind::Term => match n.hits.first() {
            Some(h) if h.spans.is_empty() => out.push(format!("{} in {}", n.text, h.field)),
            Some(h) => out.push(format!("{} in {} at {}", n.text, h.field, spans(&h.spans))),
            None => out.push(n.text.clone()),
        },
    }
}

fn spans(s: &[Range<usize>]) -> String {
    s.iter().map(|r| format!("{}..{}", r.start, r.end)).collect::<Vec<_>>().join(",")
}

impl fmt::Display for Explanation {
    /// The reason, then the tree, one node a line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.reason)?;
        fn go(n: &ExplainNode, prefix: &str, last: bool, root: bool, out: &mut String) {
            let (branch, next) = match (root, last) {
                (true, _) => ("", String::new()),
                (false, true) => ("└─ ", format!("{prefix}   ")),
                (false, false) => ("├─ ", format!("{prefix}│  ")),
            };
            let mark = if n.matched { "✓" } else { "✗" };
            let label = match n.kind {
                NodeKind::And => "AND".to_string(),
                NodeKind::Or => "OR".to_string(),
                NodeKind::Not => "NOT".to_string(),
                NodeKind::Term => n.text.clone(),
            };
            let _ = write!(out, "{prefix}{branch}{mark} {label}");
            for h in &n.hits {
                let _ = write!(out, "  [{} {} {:?}]", h.field, spans(&h.spans), h.found);
            }
            if let Some(note) = n.note.as_deref().filter(|s| !s.is_empty()) {
                let _ = write!(out, "  ({note})");
            }
            out.push('\n');
            for (i, c) in n.children.iter().enumerate() {
                go(c, &next, i + 1 == n.children.len(), false, out);
            }
        }
        let mut s = String::new();
        go(&self.tree, "", true, true, &mut s);
        f.write_str(s.trim_end())
    }
}
