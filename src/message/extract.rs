//! Entity extraction from text, for messages whose source carried no entity lists.

use crate::normalize::{char_class, CharClass};

/// Hashtags, mentions, cashtags and URLs found in a text (spec section 7).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtractedEntities {
    /// Hashtag texts, without `#`, as written.
    pub hashtags: Vec<String>,
    /// Mentioned names, without `@`, as written.
    pub mentions: Vec<String>,
    /// Cashtag texts, without `$`, as written.
    pub cashtags: Vec<String>,
    /// URLs, from the scheme or `www.` to the end of the raw token.
    pub urls: Vec<String>,
}

/// Extracts entities from `text`: an ASCII `#`, `@` or `$` at the start of a raw token or after
/// a non-word character, followed by word characters or `_` (`$5` is a cashtag, `@alice123` is
/// `alice123`). Raw tokens holding a URL give the URL and no other entity.
///
/// ```
/// use streamtrack::message::extract_entities;
/// let e = extract_entities("RT @Alice: #Rust is $5 at www.example.com/x!");
/// assert_eq!(e.mentions, ["Alice"]);
/// assert_eq!(e.hashtags, ["Rust"]);
/// assert_eq!(e.cashtags, ["5"]);
/// assert_eq!(e.urls, ["www.example.com/x!"]);
/// ```
pub fn extract_entities(text: &str) -> ExtractedEntities {
    let mut out = ExtractedEntities::default();
    for token in text.split(|c: char| char_class(c) == CharClass::Space) {
        if token.is_empty() {
            continue;
        }
        if let Some(url) = url_in_token(token) {
            out.urls.push(url.to_string());
            continue;
        }
        let mut prev_is_word = false;
        let mut iter = token.char_indices().peekable();
        while let Some((i, c)) = iter.next() {
            let class = char_class(c);
            if class == CharClass::Ignorable {
                continue;
            }
            if matches!(c, '#' | '@' | '$') && !prev_is_word {
                let start = i + 1;
                let mut end = start;
                while let Some(&(j, d)) = iter.peek() {
                    let k = char_class(d);
                    if k.is_word() || d == '_' || k == CharClass::Ignorable {
                        end = j + d.len_utf8();
                        iter.next();
                    } else {
                        break;
                    }
                }
                if end > start {
                    let value: String = token[start..end]
                        .chars()
                        .filter(|&d| char_class(d) != CharClass::Ignorable)
                        .collect();
                    match c {
                        '#' => out.hashtags.push(value),
                        '@' => out.mentions.push(value),
                        _ => out.cashtags.push(value),
                    }
                    prev_is_word = true;
                    continue;
                }
            }
            prev_is_word = class.is_word() || c == '_';
        }
    }
    out
}

/// The URL part of a raw token: after leading punctuation, starting with `scheme://` or `www.`.
pub(crate) fn url_in_token(token: &str) -> Option<&str> {
    let start = token.find(|c: char| char_class(c) != CharClass::Punct)?;
    let rest = &token[start..];
    let bytes = rest.as_bytes();
    if bytes.len() >= 4 && bytes[..4].eq_ignore_ascii_case(b"www.") {
        return Some(rest);
    }
    if !bytes.first().is_some_and(u8::is_ascii_alphabetic) {
        return None;
    }
    let k = bytes
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.')))?;
    bytes[k..].starts_with(b"://").then_some(rest)
}
