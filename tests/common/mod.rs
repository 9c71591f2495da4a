//! Shared test data: the documented examples of `semantics.md` section 6.
#![allow(dead_code)]

/// One row cell of the documented examples: a rule, a message (simple JSON shape) and whether
/// the rule must match it.
pub struct Example {
    pub dialect: &'static str,
    pub rule: &'static str,
    pub message: String,
    pub matches: bool,
}

fn text(t: &str) -> String {
    serde_json::json!({ "id": "m", "text": t }).to_string()
}

fn with_url(t: &str, url: &str) -> String {
    serde_json::json!({ "id": "m", "text": t, "urls": [{ "expanded_url": url }] }).to_string()
}

fn with_hashtag(t: &str, tag: &str) -> String {
    serde_json::json!({ "id": "m", "text": t, "hashtags": [tag] }).to_string()
}

/// Every row of semantics.md section 6, cell by cell.
pub fn documented_examples() -> Vec<Example> {
    let mut out = Vec::new();
    let mut row = |dialect: &'static str, rule: &'static str, yes: Vec<String>, no: Vec<String>| {
        for m in yes {
            out.push(Example { dialect, rule, message: m, matches: true });
        }
        for m in no {
            out.push(Example { dialect, rule, message: m, matches: false });
        }
    };
    let t = |v: &[&str]| v.iter().map(|s| text(s)).collect::<Vec<_>>();
    // track dialect
    row(
        "track",
        "Twitter",
        t(&[
            "TWITTER",
            "twitter",
            "“Twitter”",
            "twitter.",
            "#twitter",
            "@twitter",
            "http://twitter.com",
        ]),
        t(&["TwitterTracker", "#newtwitter"]),
    );
    row(
        "track",
        "Twitter’s",
        t(&["I like Twitter’s new design"]),
        t(&["Someday I’d like to visit @Twitter’s office"]),
    );
    row(
        "track",
        "twitter api,twitter streaming",
        t(&[
            "The Twitter API is awesome",
            "The twitter streaming service is fast",
            "Twitter has a streaming API",
        ]),
        t(&["I’m new to Twitter"]),
    );
    row(
        "track",
        "example.com",
        t(&["Someday I will visit example.com"]),
        t(&["There is no example.com/foobarbaz"]),
    );
    row(
        "track",
        "example.com/foobarbaz",
        t(&["example.com/foobarbaz", "www.example.com/foobarbaz"]),
        t(&["example.com"]),
    );
    row("track", "www.example.com/foobarbaz", vec![], t(&["www.example.com/foobarbaz"]));
    row(
        "track",
        "example com",
        t(&[
            "example.com",
            "www.example.com",
            "foo.example.com",
            "foo.example.com/bar",
            "I hope my startup isn’t merely another example of a dot com boom!",
        ]),
        vec![],
    );
    row("track", "touché", vec![], t(&["touche"]));
    // rule dialect
    row(
        "rule",
        "gnip",
        t(&[
            "I need to call gnip",
            "Check out gnip's documentation.",
            "I love the @gnip blog.",
            "Check out Gnip.",
        ]),
        t(&["#gniprocks"]),
    );
    row(
        "rule",
        "cola",
        t(&["Ice cold cola on a hot day", "I like coca-cola!"]),
        t(&["I like cocacola!"]),
    );
    row(
        "rule",
        "snow",
        vec![
            text("please let it snow!"),
            with_url("look at this", "https://en.wikipedia.org/wiki/Snow"),
        ],
        t(&["it is finally snowing!"]),
    );
    row(
        "rule",
        "Coachella",
        t(&["Hanging out at #coachella"]),
        t(&["NEW.PICS.FROM.COACHELLA2015!"]),
    );
    row(
        "rule",
        "\"call gnip\"",
        t(&["I need to call gnip, again", "call gnip"]),
        t(&["I called gnip", "call-gnip", "call_gnip"]),
    );
    row(
        "rule",
        "contains:phone",
        t(&["Where is my phone?", "That's a telephone"]),
        t(&["Pongo la telephono.", "What is the ph0ne number?"]),
    );
    row("rule", "cat #meme -grumpy", t(&["cat #meme"]), t(&["grumpy cat #meme"]));
    row("rule", "diacrítica", t(&["diacrítica"]), t(&["Diacritica"]));
    row(
        "rule",
        "#thanku",
        vec![text("#thanku"), with_hashtag("so grateful", "thanku")],
        vec![text("#thankunext"), with_hashtag("so grateful", "thankunext")],
    );
    out
}
