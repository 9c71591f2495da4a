//! Issue 20: non-ASCII posts holding URLs are matched without the full tokenizer (their URL
//! prefixes blanked); the compiled matcher must still agree with the reference, including
//! where ignorables sit inside a prefix (`www\u{200b}.`: the tokenizer drops them before it
//! looks for one, so `www` is no word of that post).

use streamtrack::matcher::{Matcher, Scratch};
use streamtrack::reference::ReferenceMatcher;
use streamtrack::{Message, Rule};

#[test]
fn non_ascii_posts_with_urls_match_like_the_reference() {
    let rules: Vec<Rule> = ["www", "http", "https", "ttp", "example", "com", "café", "東京", "x"]
        .iter()
        .map(|t| Rule::parse_track(t).expect("a track rule"))
        .collect();
    let posts = [
        "www\u{200b}.example.com café",
        "http:\u{200b}//x.com 東京",
        "h\u{200b}ttp\u{ad}:/\u{2060}/www\u{200d}.example.com é",
        "«http://www.example.com» café",
        "café\u{a0}www.example.com",
        "東京 HTTPS://WWW.EXAMPLE.COM/東京",
        "www. café http:// x",
        "ww\u{200b}w.x 東京",
        "é://x éhttp://example.com",
    ];
    let compiled = Matcher::new(&rules);
    let reference = ReferenceMatcher::new(rules.clone());
    let mut scratch = Scratch::new();
    for (i, text) in posts.iter().enumerate() {
        let m = Message::new(i.to_string(), *text);
        let want: Vec<u32> = reference.matching(&m).into_iter().map(|r| r as u32).collect();
        assert_eq!(compiled.find(&m, &mut scratch).to_vec(), want, "{text:?}");
    }
}
