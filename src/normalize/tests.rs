use super::*;

fn words(text: &str) -> Vec<String> {
    Tokens::of(text, UrlMode::Canonicalize).word_texts().map(str::to_string).collect()
}

#[test]
fn splits_punctuation_and_emoji() {
    assert_eq!(words("I like 🍕"), ["i", "like", "🍕"]);
    assert_eq!(words("coca-cola"), ["coca", "cola"]);
    assert_eq!(words("👍🏽"), ["👍", "🏽"]);
    assert_eq!(words("🇫🇷"), ["🇫", "🇷"]);
}

#[test]
fn ascii_normalized_text_equals_the_tokenizer_text() {
    let mut out = String::new();
    for t in [
        "",
        "  a  B\tc\n",
        "see (HTTP://WWW.Example.com/x). and www.a.b http:// x+y://z ftp://www.www.q",
        "\u{1}ctrl\u{7f} c++ $5 #Tag @User",
    ] {
        ascii_normalized_text(t, &mut out);
        assert_eq!(out, Tokens::of(t, UrlMode::Canonicalize).text(), "{t:?}");
    }
    // Every printable ASCII string of a small alphabet, exhaustively up to length 5.
    let alphabet = [b'a', b'W', b'.', b':', b'/', b' ', b'(', b'\t'];
    let mut stack = vec![Vec::new()];
    while let Some(s) = stack.pop() {
        let t = String::from_utf8(s.clone()).unwrap();
        ascii_normalized_text(&t, &mut out);
        assert_eq!(out, Tokens::of(&t, UrlMode::Canonicalize).text(), "{t:?}");
        if s.len() < 5 {
            for &c in &alphabet {
                let mut n = s.clone();
                n.push(c);
                stack.push(n);
            }
        }
    }
}
