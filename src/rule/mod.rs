//! Rules: the two dialects ([rule language](crate::rule_language), sections 4 to 6) and the
//! tree both parse to.
//!
//! A [`Rule`] is a tree of [`Node`]s whose leaves are [`Term`]s, already normalised (folded,
//! tokenised), so matchers never look at rule text again. Every rule prints back to a canonical
//! text in its dialect ([`Rule`]'s `Display`), and parsing that text gives the same tree.
//! Limits apply to the text as written; the canonical text can be longer (case folding
//! lengthens a few characters, e.g. `İ`), and then parses back to the same tree under limits
//! that admit it.
//!
//! ```
//! use streamtrack::rule::Rule;
//! let rule = Rule::parse(r#"cat #Meme -grumpy ("Product Launch" OR acme)"#).unwrap();
//! assert_eq!(rule.to_string(), r#"cat #meme -grumpy ("product launch" OR acme)"#);
//! let track = Rule::parse_track("Nintendo, wii fit").unwrap();
//! assert_eq!(track.to_string(), "nintendo,wii fit");
//! ```

mod error;
mod parse;
mod track;

pub use error::{RuleError, RuleErrorKind};

use crate::message::GeoBox;
use std::fmt;

/// The two rule languages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "json", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "json", serde(rename_all = "lowercase"))]
pub enum Dialect {
    /// Twitter v1.1 `track`: comma-separated phrases (OR) of space-separated terms (AND).
    Track,
    /// PowerTrack / API v2 rules: AND, OR, negation, groups, phrases and operators.
    #[default]
    Rule,
}

/// A `has:` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HasKind {
    /// `has:links`: a URL entity (media do not count).
    Links,
    /// `has:mentions`.
    Mentions,
    /// `has:hashtags`.
    Hashtags,
    /// `has:media`.
    Media,
    /// `has:geo`: coordinates or a place.
    Geo,
}

/// An `is:` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IsKind {
    /// `is:retweet`.
    Retweet,
    /// `is:reply`.
    Reply,
    /// `is:quote`.
    Quote,
}

/// The unit of a `point_radius:` radius.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DistanceUnit {
    /// Kilometres.
    Km,
    /// Statute miles.
    Mi,
}

/// A leaf of a rule tree. Texts are in normal form (see [`crate::normalize`]).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Term {
    /// Words that must appear consecutively in one field (a keyword, or a track term without
    /// punctuation). Usually one word.
    Keyword(Vec<String>),
    /// A track term with punctuation: must equal a whole raw token.
    Token(String),
    /// An exact phrase: a substring of a field's normalised text with word boundaries at both
    /// ends.
    Phrase(String),
    /// Words within `distance` positions of each other in one field.
    Proximity {
        /// The words, in rule order.
        words: Vec<String>,
        /// The largest allowed distance between the first and last position.
        distance: u8,
    },
    /// `#tag`: a hashtag entity equal to this text.
    Hashtag(String),
    /// `@user`: a mention entity equal to this name.
    Mention(String),
    /// `$tag`: a cashtag entity equal to this text.
    Cashtag(String),
    /// `from:user`: the author's screen name or id.
    From(String),
    /// `to:user`: the screen name or id replied to.
    To(String),
    /// `url:"…"`: words consecutive in a URL entity.
    Url(Vec<String>),
    /// `contains:"…"`: a plain substring of a field's normalised text.
    Contains(String),
    /// `lang:xx`: the whole language tag.
    Lang(String),
    /// `has:…`.
    Has(HasKind),
    /// `is:…`.
    Is(IsKind),
    /// `bounding_box:[w s e n]`: a point inside, or a place box entirely inside.
    BoundingBox(GeoBox),
    /// `point_radius:[lon lat R]`.
    PointRadius {
        /// Centre longitude.
        lon: f64,
        /// Centre latitude.
        lat: f64,
        /// Radius, in `unit`s.
        radius: f64,
        /// Unit of the radius.
        unit: DistanceUnit,
    },
    /// `sample:P`: FNV-1a-64 of the id, modulo 100, below P.
    Sample(u8),
    /// Track `follow`: the author's user id.
    Follow(String),
    /// Track `locations`: a point inside or a place box that overlaps.
    Locations(GeoBox),
}

impl Term {
    /// Whether this term anchors a rule (can select messages by itself): everything but
    /// `has:`, `is:`, `lang:` and `sample:`.
    pub fn is_anchor(&self) -> bool {
        !matches!(self, Term::Has(_) | Term::Is(_) | Term::Lang(_) | Term::Sample(_))
    }
}

/// A node of a rule tree.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// All children match. Has at least two children; no child is an `And`.
    And(Vec<Node>),
    /// At least one child matches. Has at least two children; no child is an `Or` or a `Not`.
    Or(Vec<Node>),
    /// The term does not match. Only ever directly inside an `And`.
    Not(Box<Node>),
    /// A leaf.
    Term(Term),
}

impl Node {
    /// Calls `f` on every term of the tree, depth first, with whether it is negated.
    pub fn visit_terms<'a>(&'a self, f: &mut impl FnMut(&'a Term, bool)) {
        fn go<'a>(node: &'a Node, negated: bool, f: &mut impl FnMut(&'a Term, bool)) {
            match node {
                Node::And(children) | Node::Or(children) => {
                    children.iter().for_each(|c| go(c, negated, f))
                }
                Node::Not(inner) => go(inner, !negated, f),
                Node::Term(t) => f(t, negated),
            }
        }
        go(self, false, f)
    }
}

/// Limits applied while parsing, with Twitter's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Longest rule (rule dialect), in code points. Default 2,048.
    pub max_rule_chars: usize,
    /// Deepest nesting of parentheses. Default 32.
    pub max_depth: usize,
    /// Largest proximity `~N`. Default 6.
    pub max_proximity: u8,
    /// Longest track phrase, in UTF-8 bytes. Default 60.
    pub max_phrase_bytes: usize,
    /// Most phrases in one track value. Default 400.
    pub max_phrases: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_rule_chars: 2048,
            max_depth: 32,
            max_proximity: 6,
            max_phrase_bytes: 60,
            max_phrases: 400,
        }
    }
}

/// Parses rules of either dialect under configurable [`Limits`].
///
/// ```
/// use streamtrack::rule::{Dialect, Parser};
/// let parser = Parser::builder().max_rule_chars(512).build();
/// assert!(parser.parse("apple OR (iphone ipad)", Dialect::Rule).is_ok());
/// let err = parser.parse("(apple", Dialect::Rule).unwrap_err();
/// assert_eq!(err.to_string(), "column 1: unbalanced '(' opened here");
/// ```
#[derive(Clone, Debug, Default)]
pub struct Parser {
    limits: Limits,
}

impl Parser {
    /// A parser with the default limits.
    pub fn new() -> Self {
        Parser::default()
    }

    /// A builder to set limits.
    pub fn builder() -> ParserBuilder {
        ParserBuilder::default()
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Parses `text` in `dialect`.
    pub fn parse(&self, text: &str, dialect: Dialect) -> Result<Rule, RuleError> {
        let root = match dialect {
            Dialect::Rule => parse::parse_rule(text, &self.limits)?,
            Dialect::Track => track::parse_track(text, &self.limits)?,
        };
        Ok(Rule { dialect, root })
    }
}

/// Builds a [`Parser`].
#[derive(Clone, Debug, Default)]
pub struct ParserBuilder {
    limits: Limits,
}

impl ParserBuilder {
    /// Sets all limits at once.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Longest rule, in code points.
    pub fn max_rule_chars(mut self, n: usize) -> Self {
        self.limits.max_rule_chars = n;
        self
    }

    /// Deepest nesting of parentheses.
    pub fn max_depth(mut self, n: usize) -> Self {
        self.limits.max_depth = n;
        self
    }

    /// Largest proximity `~N`.
    pub fn max_proximity(mut self, n: u8) -> Self {
        self.limits.max_proximity = n;
        self
    }

    /// Longest track phrase, in bytes.
    pub fn max_phrase_bytes(mut self, n: usize) -> Self {
        self.limits.max_phrase_bytes = n;
        self
    }

    /// Most phrases in one track value.
    pub fn max_phrases(mut self, n: usize) -> Self {
        self.limits.max_phrases = n;
        self
    }

    /// The parser.
    pub fn build(self) -> Parser {
        Parser { limits: self.limits }
    }
}

/// A parsed rule: its dialect and its tree.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    dialect: Dialect,
    root: Node,
}

impl Rule {
    /// Parses a rule-dialect rule with the default limits.
    ///
    /// ```
    /// use streamtrack::reference::matches;
    /// use streamtrack::{Dialect, Message, Rule};
    ///
    /// let rule = Rule::parse(r#"(nintendo OR "wii fit") -lang:fr"#)?;
    /// assert_eq!(rule.dialect(), Dialect::Rule);
    /// assert!(matches(&rule, &Message::new("1", "Got a Wii Fit board")));
    /// assert!(!matches(&rule, &Message::new("2", "a fit wii")));
    /// // Errors say where.
    /// let err = Rule::parse("(nintendo OR wii").unwrap_err();
    /// assert_eq!(err.to_string(), "column 1: unbalanced '(' opened here");
    /// # Ok::<(), streamtrack::RuleError>(())
    /// ```
    pub fn parse(text: &str) -> Result<Rule, RuleError> {
        Parser::new().parse(text, Dialect::Rule)
    }

    /// Parses a track value with the default limits: commas separate alternatives, spaces
    /// within one require every word (in any order).
    ///
    /// ```
    /// use streamtrack::reference::matches;
    /// use streamtrack::{Message, Rule};
    ///
    /// let rule = Rule::parse_track("nintendo,wii fit")?;
    /// assert!(matches(&rule, &Message::new("1", "fit for a Wii")));
    /// assert!(!matches(&rule, &Message::new("2", "just wii")));
    /// # Ok::<(), streamtrack::RuleError>(())
    /// ```
    pub fn parse_track(text: &str) -> Result<Rule, RuleError> {
        Parser::new().parse(text, Dialect::Track)
    }

    /// A track filter as Twitter's v1.1 `statuses/filter` took it: `track` phrases, `follow`
    /// user ids and `locations` boxes, combined by OR. At least one must be given.
    pub fn track_filter(
        track: Option<&str>,
        follow: &[String],
        locations: &[GeoBox],
        parser: &Parser,
    ) -> Result<Rule, RuleError> {
        let mut branches = Vec::new();
        if let Some(t) = track {
            match parser.parse(t, Dialect::Track)?.root {
                Node::Or(children) => branches.extend(children),
                other => branches.push(other),
            }
        }
        branches.extend(follow.iter().map(|id| Node::Term(Term::Follow(id.trim().to_string()))));
        branches.extend(locations.iter().map(|b| Node::Term(Term::Locations(*b))));
        let root = match branches.len() {
            0 => {
                return Err(RuleError::new(
                    RuleErrorKind::Empty,
                    "",
                    0,
                    "a track filter needs track phrases, follow ids or locations".into(),
                ))
            }
            1 => branches.pop().expect("one branch"),
            _ => Node::Or(branches),
        };
        Ok(Rule { dialect: Dialect::Track, root })
    }

    /// The dialect the rule was written in.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The rule tree.
    pub fn root(&self) -> &Node {
        &self.root
    }
}

impl fmt::Display for Rule {
    /// The canonical text of the rule in its dialect. For a track filter with `follow` or
    /// `locations`, only the track phrases print.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.dialect {
            Dialect::Rule => parse::print_rule(&self.root, f),
            Dialect::Track => track::print_track(&self.root, f),
        }
    }
}

/// The JSON form of a [`Rule`] (feature `json`): the canonical text and the dialect, plus a
/// track filter's `follow` ids and `locations` boxes (`[west, south, east, north]`) when it
/// has any.
#[cfg(feature = "json")]
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleJson {
    #[serde(default)]
    value: String,
    #[serde(default)]
    dialect: Dialect,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    follow: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    locations: Vec<[f64; 4]>,
}

/// A rule serialises as `{"value": canonical text, "dialect": "rule" | "track"}` (the keys of
/// a rules-file line), with `follow` and `locations` for a track filter that has them.
/// Deserialising parses `value` with the default [`Limits`]; `dialect` defaults to `rule`.
///
/// ```
/// use streamtrack::Rule;
/// let rule = Rule::parse_track("Nintendo, wii fit").unwrap();
/// let json = serde_json::to_string(&rule).unwrap();
/// assert_eq!(json, r#"{"value":"nintendo,wii fit","dialect":"track"}"#);
/// assert_eq!(serde_json::from_str::<Rule>(&json).unwrap(), rule);
/// ```
#[cfg(feature = "json")]
impl serde::Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (mut follow, mut locations) = (Vec::new(), Vec::new());
        if self.dialect == Dialect::Track {
            let branches = match &self.root {
                Node::Or(children) => children.as_slice(),
                other => std::slice::from_ref(other),
            };
            for branch in branches {
                match branch {
                    Node::Term(Term::Follow(id)) => follow.push(id.clone()),
                    Node::Term(Term::Locations(b)) => {
                        locations.push([b.west, b.south, b.east, b.north])
                    }
                    _ => {}
                }
            }
        }
        RuleJson { value: self.to_string(), dialect: self.dialect, follow, locations }
            .serialize(serializer)
    }
}

/// See the `Serialize` impl: parses the canonical text under the default limits.
#[cfg(feature = "json")]
impl<'de> serde::Deserialize<'de> for Rule {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let json = RuleJson::deserialize(deserializer)?;
        let parser = Parser::new();
        let parsed = if json.follow.is_empty() && json.locations.is_empty() {
            parser.parse(&json.value, json.dialect)
        } else if json.dialect != Dialect::Track {
            return Err(D::Error::custom("`follow` and `locations` need the track dialect"));
        } else {
            let boxes: Vec<GeoBox> = json
                .locations
                .iter()
                .map(|&[west, south, east, north]| GeoBox { west, south, east, north })
                .collect();
            let track = Some(json.value.as_str()).filter(|t| !t.trim().is_empty());
            Rule::track_filter(track, &json.follow, &boxes, &parser)
        };
        parsed.map_err(|e| D::Error::custom(format!("rule {:?}: {e}", json.value)))
    }
}

#[cfg(test)]
mod tests;
