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
