//! Phrases and multi-word keywords are found by a pair of adjacent words (DESIGN.md, "Word-pair
//! keys"). That is only right if every match of such a term has the pair as two adjacent
//! words of the message: these cases probe the edges of that premise (punctuation, script
//! changes, no-space runs, emoji, fields, URLs, repeats) against the reference matcher.

use streamtrack::matcher::{Matcher, Scratch};
use streamtrack::reference::ReferenceMatcher;
use streamtrack::{Message, Rule};

const RULES: &[&str] = &[
    "\"new york\"",
    "\"new york city\"",
    "\"c++ rocks\"",
    "\"don't stop\"",
    "\"café olé\"",
    "\"hello 👍 world\"",
    "\"東京 tower\"",
    "\"tower 東京\"",
    "\"example.com rocks\"",
    "\"spam spam\"",
    "wi-fi",
    "\"new york\" -rain",
    "\"new york\" OR \"los angeles\"",
    "(\"big apple\" OR nyc) #travel",
];

const TEXTS: &[&str] = &[
    "I love New York!",
    "new, york",
    "new-york",
    "NEW\tYORK city",
    "newyork",
    "Приветnew york",
    "東京new york",
    "東京 tower",
    "見て東京 tower",
    "tower 東京タワー",
    "c++ rocks",
    "c rocks",
    "don't stop me",
    "dont stop",
    "CAFÉ Olé",
    "cafe ole",
    "hello 👍 world",
    "hello world",
    "see https://example.com rocks",
    "example.com rocks",
    "spam spam spam",
    "spam",
    "free WI-FI here",
    "wifi",
    "new york rain",
    "los angeles",
    "the big apple #Travel",
    "nyc #travel",
    "new\nyork",
    "new  york",
    "york new york",
];

#[test]
fn pair_keyed_terms_agree_with_the_reference() {
    let rules: Vec<Rule> = RULES.iter().map(|r| Rule::parse(r).expect("valid rule")).collect();
    let matcher = Matcher::new(&rules);
    let reference = ReferenceMatcher::new(rules.clone());
    let mut scratch = Scratch::new();
    let mut messages: Vec<Message> = TEXTS.iter().map(|t| Message::new("1", *t)).collect();
    // The same texts in other fields: a quoted text, a URL entity.
    for t in TEXTS {
        let mut m = Message::new("2", "quoting");
        m.quoted_text = Some(t.to_string());
        messages.push(m);
    }
    let mut m = Message::new("3", "new");
    m.quoted_text = Some("york".into());
    messages.push(m);
    let mut matched = 0;
    for m in &messages {
        let want: Vec<u32> = reference.matching(m).into_iter().map(|i| i as u32).collect();
        assert_eq!(matcher.find(m, &mut scratch), want.as_slice(), "{m:?}");
        matched += want.len();
    }
    assert!(matched > 20, "the cases exercise matches too ({matched})");
}

/// The same cases among 2,000 one-word rules: few key words then begin a pair, so a pair is
/// probed only after a word whose filter block marks it as a pair's first word (the gate in
/// `segment/build.rs`); that marking must lose no match. Posts mix the phrases with the
/// one-word rules' words, in both orders.
#[test]
fn pair_keyed_terms_agree_with_the_reference_when_pairs_are_gated() {
    let mut rules: Vec<Rule> = RULES.iter().map(|r| Rule::parse(r).expect("valid rule")).collect();
    rules.extend((0..2_000).map(|i| Rule::parse(&format!("word{i}")).expect("valid rule")));
    let matcher = Matcher::new(&rules);
    let reference = ReferenceMatcher::new(rules.clone());
    let mut scratch = Scratch::new();
    let mut matched = 0;
    for (i, t) in TEXTS.iter().enumerate() {
        for text in [
            t.to_string(),
            format!("word{i} {t} word{}", i + 1),
            format!("{t} word7 new york word9 york new"),
            format!("word{} new word{} york", i * 3, i * 5),
        ] {
            let m = Message::new("1", text);
            let want: Vec<u32> = reference.matching(&m).into_iter().map(|i| i as u32).collect();
            assert_eq!(matcher.find(&m, &mut scratch), want.as_slice(), "{m:?}");
            matched += want.len();
        }
    }
    assert!(matched > 100, "the cases exercise matches too ({matched})");
}
