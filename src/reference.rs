//! The reference matcher: the [rule language](crate::rule_language), written as directly as
//! possible.
//!
//! It evaluates every rule's tree against a [`NormalizedMessage`], term by term, with no index
//! and no cleverness. It is slow on purpose: it is the oracle every faster matcher in this
//! crate is tested against (differential tests and fuzzing), and it is public so that users can
//! explain a match ("which term made this rule fire?") or check a result.
//!
//! ```
//! use streamtrack::reference::ReferenceMatcher;
//! use streamtrack::rule::Rule;
//! use streamtrack::Message;
//!
//! let matcher = ReferenceMatcher::new(vec![
//!     Rule::parse("cat #meme -grumpy").unwrap(),
//!     Rule::parse_track("twitter api,twitter streaming").unwrap(),
//! ]);
//! let msg = Message::new("1", "The Twitter API is awesome, cat #meme");
//! assert_eq!(matcher.matching(&msg), vec![0, 1]);
//! ```

use crate::message::{GeoBox, Message};
use crate::normalize::{
    is_boundary_at, is_phrase_start_at, no_space_run_holds, FieldKind, NormalizedMessage, Tokens,
};
use crate::rule::{DistanceUnit, HasKind, IsKind, Node, Rule, Term};

/// Evaluates rules one by one, straight from the [rule language](crate::rule_language).
#[derive(Clone, Debug, Default)]
pub struct ReferenceMatcher {
    rules: Vec<Rule>,
}

impl ReferenceMatcher {
    /// A matcher over `rules`; results are indices into this list.
    pub fn new(rules: Vec<Rule>) -> Self {
        ReferenceMatcher { rules }
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Indices of the rules that match `msg`, ascending. The message is prepared with the
    /// plain reference tokenizer ([`NormalizedMessage::prepare_reference`]).
    pub fn matching(&self, msg: &Message) -> Vec<usize> {
        self.matching_prepared(&NormalizedMessage::of_reference(msg))
    }

    /// Indices of the rules that match an already prepared message, ascending.
    pub fn matching_prepared(&self, msg: &NormalizedMessage) -> Vec<usize> {
        (0..self.rules.len()).filter(|&i| rule_matches(&self.rules[i], msg)).collect()
    }
}

/// Whether `rule` matches `msg` (prepared with the reference tokenizer).
///
/// ```
/// use streamtrack::{reference, Message, Rule};
/// let rule = Rule::parse("\"call gnip\"").unwrap();
/// assert!(reference::matches(&rule, &Message::new("1", "I need to call gnip, again")));
/// assert!(!reference::matches(&rule, &Message::new("2", "I called gnip")));
/// ```
pub fn matches(rule: &Rule, msg: &Message) -> bool {
    rule_matches(rule, &NormalizedMessage::of_reference(msg))
}

/// Whether `rule` matches `msg`.
pub fn rule_matches(rule: &Rule, msg: &NormalizedMessage) -> bool {
    node_matches(rule.root(), msg)
}

/// Whether the tree `node` matches `msg`.
pub(crate) fn node_matches(node: &Node, msg: &NormalizedMessage) -> bool {
    match node {
        Node::And(children) => children.iter().all(|c| node_matches(c, msg)),
        Node::Or(children) => children.iter().any(|c| node_matches(c, msg)),
        Node::Not(inner) => !node_matches(inner, msg),
        Node::Term(t) => term_matches(t, msg),
    }
}

/// Whether the single term `term` matches `msg`.
pub(crate) fn term_matches(term: &Term, msg: &NormalizedMessage) -> bool {
    let any_field = |f: &dyn Fn(&Tokens) -> bool| msg.fields().iter().any(|field| f(&field.tokens));
    match term {
        Term::Keyword(words) => any_field(&|t| words_in_sequence(t, words)),
        Term::Token(token) => {
            any_field(&|t| (0..t.raw_tokens().len()).any(|i| t.raw_token_text(i) == token))
        }
        Term::Phrase(p) => any_field(&|t| phrase_in(t.text(), p)),
        Term::Proximity { words, distance } => {
            any_field(&|t| words_within(t, words, usize::from(*distance)))
        }
        Term::Hashtag(x) => msg.hashtags.contains(x),
        Term::Mention(x) => msg.mentions.contains(x),
        Term::Cashtag(x) => msg.cashtags.contains(x),
        Term::From(v) => msg.user.as_ref() == Some(v) || msg.user_id.as_ref() == Some(v),
        Term::To(v) => {
            msg.in_reply_to_user.as_ref() == Some(v) || msg.in_reply_to_user_id.as_ref() == Some(v)
        }
        Term::Follow(id) => msg.user_id.as_ref() == Some(id),
        Term::Url(words) => {
            msg.fields_of(FieldKind::Url).any(|f| words_in_sequence(&f.tokens, words))
        }
        Term::Contains(s) => any_field(&|t| t.text().contains(s.as_str())),
        Term::Lang(l) => msg.lang.as_ref() == Some(l),
        Term::Has(h) => match h {
            HasKind::Links => msg.has_links,
            HasKind::Media => msg.has_media,
            HasKind::Mentions => !msg.mentions.is_empty(),
            HasKind::Hashtags => !msg.hashtags.is_empty(),
            HasKind::Geo => msg.has_geo(),
        },
        Term::Is(k) => match k {
            IsKind::Retweet => msg.is_retweet,
            IsKind::Reply => msg.is_reply,
            IsKind::Quote => msg.is_quote,
        },
        Term::Sample(p) => fnv1a64(msg.id.as_bytes()) % 100 < u64::from(*p),
        Term::BoundingBox(b) => match (msg.coordinates, msg.place) {
            (Some((lon, lat)), _) => b.contains_point(lon, lat),
            (None, Some(place)) => b.contains_box(&place),
            (None, None) => false,
        },
        Term::Locations(b) => match (msg.coordinates, msg.place) {
            (Some((lon, lat)), _) => b.contains_point(lon, lat),
            (None, Some(place)) => b.overlaps(&place),
            (None, None) => false,
        },
        Term::PointRadius { lon, lat, radius, unit } => {
            let r = match unit {
                DistanceUnit::Km => *radius,
                DistanceUnit::Mi => radius * KM_PER_MILE,
            };
            let within = |(x, y): (f64, f64)| haversine_km(*lon, *lat, x, y) <= r;
            match (msg.coordinates, msg.place) {
                (Some(p), _) => within(p),
                (None, Some(GeoBox { west, south, east, north })) => {
                    [(west, south), (west, north), (east, south), (east, north)]
                        .into_iter()
                        .all(within)
                }
                (None, None) => false,
            }
        }
    }
}

/// Kilometres in a statute mile.
pub(crate) const KM_PER_MILE: f64 = 1.609344;

/// Great-circle distance in km on a sphere of radius 6,371 km.
pub(crate) fn haversine_km(lon1: f64, lat1: f64, lon2: f64, lat2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6371.0 * a.sqrt().min(1.0).asin()
}

/// FNV-1a, 64 bits (the hash `sample:` uses).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// How the rule word `r` can sit in field word `i`: as the whole word, or (in a no-space run)
/// as any substring, a suffix (first of several words) or a prefix (last of several).
fn word_matches(t: &Tokens, i: usize, r: &str, first: bool, last: bool) -> bool {
    let w = t.word_text(i);
    if w == r {
        return true;
    }
    if !t.words()[i].no_space {
        return false;
    }
    no_space_run_holds(w, r, first, last)
}

/// Whether `words` appear at consecutive positions of the field.
pub(crate) fn words_in_sequence(t: &Tokens, words: &[String]) -> bool {
    let n = t.words().len();
    let k = words.len();
    if k == 0 || k > n {
        return false;
    }
    (0..=n - k).any(|start| {
        words.iter().enumerate().all(|(j, r)| word_matches(t, start + j, r, j == 0, j == k - 1))
    })
}

/// Whether the normalised phrase `p` occurs in `text` with a word boundary at both ends.
pub(crate) fn phrase_in(text: &str, p: &str) -> bool {
    if p.is_empty() {
        return false;
    }
    let step = p.chars().next().map_or(1, char::len_utf8);
    let mut from = 0;
    while let Some(k) = text[from..].find(p) {
        let i = from + k;
        if is_phrase_start_at(text, i) && is_boundary_at(text, i + p.len()) {
            return true;
        }
        from = i + step;
    }
    false
}

/// Whether each of `words` sits at a distinct position of the field, all within `distance`
/// of each other (largest minus smallest position).
///
/// For each window `[s, s + distance]` starting at a position where some word occurs, a
/// subset dynamic programme over the window's positions (at most 7) decides whether the words
/// can take distinct positions in it: O(n · k · 2^(distance+1)) for n positions, k words.
pub(crate) fn words_within(t: &Tokens, words: &[String], distance: usize) -> bool {
    let n = t.words().len();
    let k = words.len();
    if k == 0 || k > distance + 1 || k > n {
        return false;
    }
    // matches[j][p]: word j can sit at position p.
    let matches: Vec<Vec<bool>> =
        words.iter().map(|r| (0..n).map(|i| word_matches(t, i, r, true, true)).collect()).collect();
    if matches.iter().any(|m| !m.iter().any(|&b| b)) {
        return false;
    }
    let width = (distance + 1).min(n);
    let mut reachable = vec![false; 1 << width];
    for s in 0..n {
        if !matches.iter().any(|m| m[s]) {
            continue;
        }
        let hi = (s + width).min(n);
        // reachable[mask]: the first popcount(mask) words can take exactly the positions in
        // mask (bit b = position s + b).
        reachable.iter_mut().for_each(|r| *r = false);
        reachable[0] = true;
        for mask in 0..(1usize << (hi - s)) {
            if !reachable[mask] {
                continue;
            }
            let j = mask.count_ones() as usize;
            if j == k {
                return true;
            }
            for b in 0..hi - s {
                if mask & (1 << b) == 0 && matches[j][s + b] {
                    reachable[mask | (1 << b)] = true;
                }
            }
        }
    }
    false
}
