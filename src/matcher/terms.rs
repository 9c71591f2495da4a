//! The compiled matcher's own term semantics: whether one term holds in a normalised message.
//!
//! Written from the contract (`docs/rule-language.md`), independently of
//! [`crate::reference`], which stays a straight transcription of it and is the oracle the
//! differential tests and fuzzing compare this matcher with. Sharing code with the oracle
//! would make those comparisons compare it with itself, so nothing here calls it, and it
//! calls nothing here (the `matcher_independent` test and a `.ci/run` check keep it so).
//! The two differ on purpose in how they search: phrases with `memchr`'s substring finder,
//! multi-word sequences from the positions of the first word, proximity by bipartite
//! matching of words to positions (the reference runs a subset programme over positions).

use crate::message::GeoBox;
use crate::normalize::{is_boundary_at, FieldKind, NormalizedMessage, Tokens};
use crate::rule::{DistanceUnit, HasKind, IsKind, Term};

/// Statute mile in kilometres (`point_radius:` with `mi`).
pub(crate) const KM_PER_MILE: f64 = 1.609_344;

/// Radius of the sphere the contract measures `point_radius:` on.
const EARTH_RADIUS_KM: f64 = 6371.0;

/// Whether `term` holds in `msg` (prepared with [`NormalizedMessage::prepare`]).
pub(crate) fn term_holds(term: &Term, msg: &NormalizedMessage) -> bool {
    let fields = || msg.fields().iter().map(|f| &f.tokens);
    match term {
        Term::Keyword(words) => fields().any(|t| in_sequence(t, words)),
        Term::Url(words) => msg.fields_of(FieldKind::Url).any(|f| in_sequence(&f.tokens, words)),
        Term::Token(token) => {
            fields().any(|t| (0..t.raw_tokens().len()).any(|i| t.raw_token_text(i) == token))
        }
        Term::Phrase(p) => fields().any(|t| phrase_in(t.text(), p)),
        Term::Proximity { words, distance } => {
            fields().any(|t| within(t, words, usize::from(*distance)))
        }
        Term::Contains(s) => {
            fields().any(|t| memchr::memmem::find(t.text().as_bytes(), s.as_bytes()).is_some())
        }
        Term::Hashtag(v) => msg.hashtags.iter().any(|x| x == v),
        Term::Mention(v) => msg.mentions.iter().any(|x| x == v),
        Term::Cashtag(v) => msg.cashtags.iter().any(|x| x == v),
        Term::From(v) => [&msg.user, &msg.user_id].into_iter().any(|x| x.as_deref() == Some(v)),
        Term::To(v) => [&msg.in_reply_to_user, &msg.in_reply_to_user_id]
            .into_iter()
            .any(|x| x.as_deref() == Some(v)),
        Term::Follow(id) => msg.user_id.as_deref() == Some(id),
        Term::Lang(l) => msg.lang.as_deref() == Some(l),
        Term::Has(kind) => match kind {
            HasKind::Links => msg.has_links,
            HasKind::Media => msg.has_media,
            HasKind::Mentions => !msg.mentions.is_empty(),
            HasKind::Hashtags => !msg.hashtags.is_empty(),
            HasKind::Geo => msg.coordinates.is_some() || msg.place.is_some(),
        },
        Term::Is(kind) => match kind {
            IsKind::Retweet => msg.is_retweet,
            IsKind::Reply => msg.is_reply,
            IsKind::Quote => msg.is_quote,
        },
        Term::Sample(p) => sample_bucket(&msg.id) < u64::from(*p),
        Term::BoundingBox(b) => {
            geo_holds(msg, |x, y| b.contains_point(x, y), |pl| b.contains_box(pl))
        }
        Term::Locations(b) => geo_holds(msg, |x, y| b.contains_point(x, y), |pl| b.overlaps(pl)),
        Term::PointRadius { lon, lat, radius, unit } => {
            let km = radius_km(*radius, *unit);
            let near = |x: f64, y: f64| great_circle_km((*lon, *lat), (x, y)) <= km;
            geo_holds(msg, near, |pl| {
                [pl.west, pl.east].iter().all(|&x| [pl.south, pl.north].iter().all(|&y| near(x, y)))
            })
        }
    }
}

/// A geo term: the point if the message has one, else its place box, else no match.
fn geo_holds(
    msg: &NormalizedMessage,
    point: impl Fn(f64, f64) -> bool,
    place: impl Fn(&GeoBox) -> bool,
) -> bool {
    if let Some((lon, lat)) = msg.coordinates {
        point(lon, lat)
    } else {
        msg.place.as_ref().is_some_and(place)
    }
}

/// A `point_radius:` radius in kilometres.
pub(crate) fn radius_km(radius: f64, unit: DistanceUnit) -> f64 {
    match unit {
        DistanceUnit::Km => radius,
        DistanceUnit::Mi => radius * KM_PER_MILE,
    }
}

/// Haversine distance between two `(lon, lat)` points, in km.
fn great_circle_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat_a, lat_b) = (a.1.to_radians(), b.1.to_radians());
    let half_dlat = (lat_b - lat_a) / 2.0;
    let half_dlon = (b.0 - a.0).to_radians() / 2.0;
    let h = half_dlat.sin() * half_dlat.sin()
        + lat_a.cos() * lat_b.cos() * half_dlon.sin() * half_dlon.sin();
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

/// `sample:`'s bucket of a message id: FNV-1a-64 of its UTF-8 bytes, modulo 100.
fn sample_bucket(id: &str) -> u64 {
    const OFFSET: u64 = 14_695_981_039_346_656_037;
    const PRIME: u64 = 1_099_511_628_211;
    id.bytes().fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME)) % 100
}

/// Whether the normalised phrase `p` occurs in `text` with neither end between two word
/// characters (as [`is_boundary_at`] decides). Every occurrence is tried, overlapping ones
/// included: in `cafex1 x1 x1` the phrase `x1 x1` first occurs inside `cafex1` (no boundary),
/// and the one that counts starts within that one (a non-overlapping search skipped it; found
/// by `tests/registry_small_set.rs` at 20,000 cases).
pub(crate) fn phrase_in(text: &str, p: &str) -> bool {
    if p.is_empty() {
        return false;
    }
    let finder = memchr::memmem::Finder::new(p.as_bytes());
    let mut from = 0;
    while let Some(k) = finder.find(&text.as_bytes()[from..]) {
        let i = from + k;
        if is_boundary_at(text, i) && is_boundary_at(text, i + p.len()) {
            return true;
        }
        // `p` is UTF-8, so an occurrence starts on a character's first byte: the next one
        // starts after this one's first byte at the earliest.
        from = i + 1;
    }
    false
}

/// Whether rule word `r` fits field word `i` of `t` as word `j` of `k` consecutive rule words:
/// the whole word, or inside a no-space run (a no-space run holds words without spaces
/// between them: the first rule word may end it, the last begin it, a lone word sit anywhere).
pub(crate) fn word_fits(t: &Tokens, i: usize, r: &str, j: usize, k: usize) -> bool {
    let w = t.word_text(i);
    if w == r {
        return true;
    }
    if !t.words()[i].no_space {
        return false;
    }
    match (j == 0, j + 1 == k) {
        (true, true) => w.contains(r),
        (true, false) => w.ends_with(r),
        (false, true) => w.starts_with(r),
        (false, false) => false,
    }
}

/// Whether `words` sit at consecutive positions of one field.
fn in_sequence(t: &Tokens, words: &[String]) -> bool {
    let (n, k) = (t.words().len(), words.len());
    k > 0
        && k <= n
        && (0..=n - k).filter(|&s| word_fits(t, s, &words[0], 0, k)).any(|s| {
            words[1..].iter().enumerate().all(|(j, r)| word_fits(t, s + j + 1, r, j + 1, k))
        })
}

/// Whether `words` take distinct positions of one field, the largest minus the smallest at
/// most `distance`. For each window of `distance + 1` positions that starts where some word
/// sits, a maximum bipartite matching of words to the window's positions (augmenting paths).
/// Each window reads only its own positions (found by binary search), so the time is linear
/// in the field's length for a fixed term.
fn within(t: &Tokens, words: &[String], distance: usize) -> bool {
    let (n, k) = (t.words().len(), words.len());
    if k == 0 || k > n || k > distance.saturating_add(1) {
        return false;
    }
    // fits[j]: the positions word j may take, ascending.
    let fits: Vec<Vec<usize>> =
        words.iter().map(|r| (0..n).filter(|&i| word_fits(t, i, r, 0, 1)).collect()).collect();
    if fits.iter().any(Vec::is_empty) {
        return false;
    }
    let mut starts: Vec<usize> = fits.iter().flatten().copied().collect();
    starts.sort_unstable();
    starts.dedup();
    // Window-relative: the word holding each position of the window, and the positions an
    // augmenting search has visited.
    let width = distance.min(n - 1) + 1;
    let mut owner: Vec<Option<usize>> = vec![None; width];
    let mut seen = vec![false; width];
    starts.into_iter().any(|s| {
        let window = Window { lo: s, hi: s + width - 1, fits: &fits };
        owner.iter_mut().for_each(|o| *o = None);
        (0..k).all(|j| {
            seen.iter_mut().for_each(|v| *v = false);
            window.augment(j, &mut owner, &mut seen)
        })
    })
}

/// The positions `lo..=hi` of a field, and where each term word may sit.
struct Window<'a> {
    lo: usize,
    hi: usize,
    fits: &'a [Vec<usize>],
}

impl Window<'_> {
    /// Kuhn's step: finds word `j` a position of the window, moving earlier words if need be.
    fn augment(&self, j: usize, owner: &mut [Option<usize>], seen: &mut [bool]) -> bool {
        let list = &self.fits[j];
        let from = list.partition_point(|&p| p < self.lo);
        for &p in list[from..].iter().take_while(|&&p| p <= self.hi) {
            let i = p - self.lo;
            if seen[i] {
                continue;
            }
            seen[i] = true;
            let free = match owner[i] {
                None => true,
                Some(other) => self.augment(other, owner, seen),
            };
            if free {
                owner[i] = Some(j);
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    //! The contract's documented examples for each piece, on its own (the differential tests
    //! then compare this module with the reference on random rules and messages).
    use super::*;
    use crate::rule::Rule;
    use crate::Message;

    fn holds(rule: &str, msg: &Message) -> bool {
        let rule = Rule::parse(rule).expect("a valid rule");
        let crate::rule::Node::Term(term) = rule.root() else { panic!("one term") };
        term_holds(term, &NormalizedMessage::of(msg))
    }

    fn text(t: &str) -> Message {
        Message::new("1", t)
    }

    #[test]
    fn phrases_need_a_boundary_at_both_ends() {
        assert!(holds("\"call gnip\"", &text("I need to call gnip, again")));
        assert!(!holds("\"call gnip\"", &text("I called gnip")));
        assert!(!holds("\"call gnip\"", &text("recall gnip")));
        assert!(holds("\"product launch\"", &text("The Product   Launch is today")));
        // Punctuation inside the quotes must be present.
        assert!(holds("\"c++ rocks\"", &text("yes c++ rocks")));
        assert!(!holds("\"c++ rocks\"", &text("yes c rocks")));
        // A later occurrence can match when an earlier one does not.
        assert!(phrase_in("xcat cat", "cat"));
        assert!(!phrase_in("xcat catx", "cat"));
        assert!(!phrase_in("cat", ""));
    }

    #[test]
    fn proximity_counts_adjacent_words_one_apart_in_any_order() {
        assert!(holds("\"apple ipad\"~1", &text("ipad apple")));
        assert!(holds("\"apple ipad\"~2", &text("apple new ipad")));
        assert!(!holds("\"apple ipad\"~1", &text("apple new ipad")));
        assert!(!holds("\"apple ipad\"~6", &text("apple only")));
        // Distinct positions: one word cannot stand for two.
        assert!(!holds("\"apple apple\"~3", &text("apple pie")));
        assert!(holds("\"apple apple\"~3", &text("apple pie apple")));
        // Words in different fields never pair up.
        let mut m = text("apple");
        m.quoted_text = Some("ipad".into());
        assert!(!holds("\"apple ipad\"~5", &m));
    }

    #[test]
    fn proximity_moves_an_earlier_word_to_make_room() {
        // "a" may sit at 0 or 1, "b" only at 0: a greedy first choice for "a" would fail.
        let t = text("ab ab x");
        let msg = NormalizedMessage::of(&t);
        let tokens = &msg.fields()[0].tokens;
        let words = ["ab".to_string(), "x".to_string()];
        assert!(within(tokens, &words, 1));
        let words = ["ab".to_string(), "ab".to_string(), "x".to_string()];
        assert!(within(tokens, &words, 2));
        assert!(!within(tokens, &words, 1));
    }

    #[test]
    fn keywords_are_consecutive_words() {
        // `wi-fi` is one keyword of two words: they must be adjacent and in order.
        assert!(holds("wi-fi", &text("free WI FI here")));
        assert!(holds("wi-fi", &text("free wi-fi here")));
        assert!(!holds("wi-fi", &text("fi wi")));
        assert!(!holds("wi-fi", &text("wi and fi")));
        let words = ["wi".to_string(), "fi".to_string()];
        let msg = NormalizedMessage::of(&text("wi x wi fi"));
        assert!(in_sequence(&msg.fields()[0].tokens, &words));
    }

    #[test]
    fn sample_is_fnv1a_of_the_id_modulo_100() {
        // FNV-1a-64 of the empty string is the offset basis; of "a" a published test vector.
        assert_eq!(sample_bucket(""), 0xcbf2_9ce4_8422_2325 % 100);
        assert_eq!(sample_bucket("a"), 0xaf63_dc4c_8601_ec8c % 100);
        let m = Message::new("a", "x");
        let bucket = 0xaf63_dc4c_8601_ec8c_u64 % 100;
        let at = |p: u64| term_holds(&Term::Sample(p as u8), &NormalizedMessage::of(&m));
        assert!(!at(bucket));
        assert!(at(bucket + 1));
    }

    #[test]
    fn point_radius_is_haversine_on_a_6371_km_sphere() {
        // One degree of latitude is 6371 * pi / 180 = 111.19 km.
        let d = great_circle_km((0.0, 0.0), (0.0, 1.0));
        assert!((d - 111.194_93).abs() < 1e-3, "{d}");
        assert!((radius_km(10.0, DistanceUnit::Mi) - 16.093_44).abs() < 1e-9);
        let mut m = text("x");
        m.coordinates = Some((0.0, 1.0));
        let pr = |radius: f64, unit| Term::PointRadius { lon: 0.0, lat: 0.0, radius, unit };
        let norm = NormalizedMessage::of(&m);
        assert!(term_holds(&pr(111.2, DistanceUnit::Km), &norm));
        assert!(!term_holds(&pr(111.1, DistanceUnit::Km), &norm));
        assert!(term_holds(&pr(69.1, DistanceUnit::Mi), &norm));
        assert!(!term_holds(&pr(69.0, DistanceUnit::Mi), &norm));
    }

    #[test]
    fn no_space_runs_hold_words_inside_them() {
        let t = NormalizedMessage::of(&text("我喜欢苹果手机"));
        let tokens = &t.fields()[0].tokens;
        let i = (0..tokens.words().len()).find(|&i| tokens.words()[i].no_space).expect("a run");
        assert!(word_fits(tokens, i, "苹果", 0, 1));
        // First of several rule words: it must end the run; last: begin it; middle: be it.
        assert!(word_fits(tokens, i, "手机", 0, 2));
        assert!(!word_fits(tokens, i, "苹果", 0, 2));
        assert!(word_fits(tokens, i, "我喜", 1, 2));
        assert!(!word_fits(tokens, i, "手机", 1, 2));
        assert!(!word_fits(tokens, i, "苹果", 1, 3));
    }
}
