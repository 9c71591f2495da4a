//! Explain: the verdict equals the compiled matcher's and the reference's on the cases of the
//! differential tests (the generators of `matcher_vs_reference.rs`, shared in `common/differential.rs`), and the reasons
//! of the spec's documented examples (section 6) read right.

use proptest::prelude::*;
use streamtrack::explain::{explain, NodeKind};
use streamtrack::matcher::{Matcher, Scratch};
use streamtrack::reference::ReferenceMatcher;
use streamtrack::{Message, Rule};

#[path = "common/differential.rs"]
mod differential;
use differential::*;
proptest! {
    #![proptest_config(config())]

    #[test]
    fn explain_verdict_equals_both_matchers(
        rules in prop::collection::vec(any_rule(), 1..24),
        messages in prop::collection::vec(message(), 1..8),
    ) {
        let rules: Vec<Rule> = rules.into_iter().flatten().collect();
        prop_assume!(!rules.is_empty());
        let compiled = Matcher::new(&rules);
        let reference = ReferenceMatcher::new(rules.clone());
        let mut scratch = Scratch::new();
        for m in &messages {
            let by_compiled = compiled.find(m, &mut scratch).to_vec();
            let by_reference = reference.matching(m);
            for (i, r) in rules.iter().enumerate() {
                let e = explain(r, m);
                prop_assert_eq!(e.matched, by_compiled.contains(&(i as u32)), "{} on {:?}", r, m);
                prop_assert_eq!(e.matched, by_reference.contains(&i), "{} on {:?}", r, m);
                prop_assert_eq!(e.tree.matched, e.matched);
                let prefix = if e.matched { "match: " } else { "no match: " };
                prop_assert!(e.reason.starts_with(prefix), "{}", e.reason);
            }
        }
    }
}

#[test]
fn explain_verdict_equals_the_matcher_on_the_generated_workload() {
    use streamtrack_workload::{RuleSetConfig, WorkloadConfig};
    let rules: Vec<Rule> =
        RuleSetConfig::default().rules(300).iter().map(|r| r.parse().unwrap()).collect();
    let messages = WorkloadConfig::default().count(100).messages();
    let compiled = Matcher::new(&rules);
    let mut scratch = Scratch::new();
    for m in &messages {
        let found = compiled.find(m, &mut scratch).to_vec();
        for (i, r) in rules.iter().enumerate() {
            let e = explain(r, m);
            assert_eq!(e.matched, found.contains(&(i as u32)), "{r} on {m:?}");
        }
    }
}

fn reason(rule: &Rule, text: &str) -> (bool, String) {
    let e = explain(rule, &Message::new("1", text));
    (e.matched, e.reason)
}

fn rule(t: &str) -> Rule {
    Rule::parse(t).unwrap()
}

fn track(t: &str) -> Rule {
    Rule::parse_track(t).unwrap()
}

/// A rule, texts it matches, and texts it does not match with the reason given.
type Row = (Rule, &'static [&'static str], &'static [(&'static str, &'static str)]);

/// Section 6 of the spec: every documented row, with the reason a non-match gives.
#[test]
fn documented_examples_explain_right() {
    let rows: &[Row] = &[
        (
            track("Twitter"),
            &["TWITTER", "twitter", "“Twitter”", "twitter.", "#twitter", "@twitter", "http://twitter.com"],
            &[("TwitterTracker", "twitter is absent"), ("#newtwitter", "twitter is absent")],
        ),
        (
            track("Twitter’s"),
            &["I like Twitter’s new design"],
            &[(
                "Someday I’d like to visit @Twitter’s office",
                "twitter’s is absent: no raw token is exactly \"twitter’s\"",
            )],
        ),
        (
            track("twitter api,twitter streaming"),
            &["The Twitter API is awesome", "The twitter streaming service is fast", "Twitter has a streaming API"],
            &[("I’m new to Twitter", "no alternative of (twitter api OR twitter streaming) matched: api is absent; streaming is absent")],
        ),
        (
            track("example.com"),
            &["Someday I will visit example.com"],
            &[("There is no example.com/foobarbaz", "example.com is absent: no raw token is exactly \"example.com\"")],
        ),
        (
            track("example.com/foobarbaz"),
            &["example.com/foobarbaz", "www.example.com/foobarbaz"],
            &[("example.com", "example.com/foobarbaz is absent")],
        ),
        (
            track("www.example.com/foobarbaz"),
            &[],
            &[("www.example.com/foobarbaz", "www.example.com/foobarbaz is absent")],
        ),
        (track("touché"), &[], &[("touche", "touché is absent")]),
        (rule("gnip"), &["I need to call gnip", "Check out gnip's documentation.", "I love the @gnip blog.", "Check out Gnip."], &[("#gniprocks", "gnip is absent")]),
        (rule("cola"), &["Ice cold cola on a hot day", "I like coca-cola!"], &[("I like cocacola!", "cola is absent")]),
        (rule("snow"), &["please let it snow!"], &[("it is finally snowing!", "snow is absent")]),
        (rule("Coachella"), &["Hanging out at #coachella"], &[("NEW.PICS.FROM.COACHELLA2015!", "coachella is absent")]),
        (
            rule("\"call gnip\""),
            &["I need to call gnip, again", "call gnip"],
            &[
                ("I called gnip", "\"call gnip\" is absent: the word \"call\" is absent"),
                ("call-gnip", "\"call gnip\" is absent: the words call gnip are there in sequence, but not as written"),
                ("call_gnip", "\"call gnip\" is absent: the words call gnip are there in sequence, but not as written"),
            ],
        ),
        (
            rule("contains:phone"),
            &["Where is my phone?", "That's a telephone"],
            &[("Pongo la telephono.", "contains:\"phone\" is absent"), ("What is the ph0ne number?", "contains:\"phone\" is absent")],
        ),
        (
            rule("cat #meme -grumpy"),
            &["cat #meme"],
            &[("grumpy cat #meme", "the negation -grumpy fired (grumpy in text at 0..6)")],
        ),
        (rule("diacrítica"), &["diacrítica"], &[("Diacritica", "diacrítica is absent")]),
    ];
    for (r, yes, no) in rows {
        for text in *yes {
            let (m, why) = reason(r, text);
            assert!(m, "{r} should match {text:?}: {why}");
        }
        for (text, want) in *no {
            let (m, why) = reason(r, text);
            assert!(!m, "{r} should not match {text:?}");
            assert!(why.starts_with(&format!("no match: {want}")), "{r} on {text:?}: {why}");
        }
    }
    // Entity rows: the hashtag list is named.
    let m = Message::new("1", "x").with_hashtags(["thankunext"]);
    let e = explain(&rule("#thanku"), &m);
    assert!(!e.matched);
    assert_eq!(e.reason, r#"no match: #thanku is absent: hashtags: ["thankunext"]"#);
    let m = Message::new("1", "x").with_hashtags(["thanku"]);
    assert_eq!(explain(&rule("#thanku"), &m).reason, "match: #thanku in hashtags");
}

#[test]
fn the_tree_mirrors_the_rule_and_names_the_first_failed_clause() {
    let r = rule("apple (pie OR tart) -crumble lang:en");
    let m = Message::new("1", "apple crumble and a tart").with_lang("en");
    let e = explain(&r, &m);
    assert!(!e.matched);
    assert_eq!(e.tree.kind, NodeKind::And);
    let kinds: Vec<NodeKind> = e.tree.children.iter().map(|c| c.kind).collect();
    assert_eq!(kinds, [NodeKind::Term, NodeKind::Or, NodeKind::Not, NodeKind::Term]);
    assert_eq!(e.tree.note.as_deref(), Some("clause 3 of 4 failed: -crumble"));
    assert_eq!(e.reason, "no match: the negation -crumble fired (crumble in text at 6..13)");
    // Spans point into the message text.
    let apple = &e.tree.children[0].hits[0];
    assert_eq!((apple.field, &m.text[apple.spans[0].clone()]), ("text", "apple"));
    // A filter that is false says what it read.
    let e = explain(&rule("apple lang:fr"), &Message::new("1", "apple").with_lang("en"));
    assert_eq!(e.reason, "no match: lang:fr is absent: lang en");
    // A match names the terms that made it, with their spans.
    let e = explain(&rule("apple OR pear"), &Message::new("1", "a pear"));
    assert_eq!(e.reason, "match: pear in text at 2..6");
    // A phrase whose words are there but not adjacent.
    let e = explain(&rule("\"apple pie\""), &Message::new("1", "pie and apple"));
    assert_eq!(
        e.reason,
        "no match: \"apple pie\" is absent: the words apple pie are all there, but not adjacent in one field"
    );
    // Proximity: the words are there but too far apart.
    let e = explain(&rule("\"apple pie\"~1"), &Message::new("1", "apple and a pie"));
    assert_eq!(
        e.reason,
        "no match: \"apple pie\"~1 is absent: the words apple pie are all there, but not within 1 in one field"
    );
}
