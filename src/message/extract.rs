//! Entity extraction from text, for messages whose source carried no entity lists.

use crate::normalize::{ascii_url_prefix, char_class, is_mark, url_prefix, CharClass};

/// The kinds of entity found in text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EntityKind {
    /// `#tag`.
    Hashtag,
    /// `@name`.
    Mention,
    /// `$tag`.
    Cashtag,
    /// A URL (from its scheme or `www.` to the end of the raw token).
    Url,
}

/// Hashtags, mentions, cashtags and URLs found in a text
/// ([rule language](crate::rule_language#3-fields)).
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
/// `alice123`). Raw tokens holding a URL give the URL and no other entity. Default-ignorable
/// code points are skipped, as everywhere else.
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
    EntityScanner::default().scan(text, |kind, value| {
        let list = match kind {
            EntityKind::Hashtag => &mut out.hashtags,
            EntityKind::Mention => &mut out.mentions,
            EntityKind::Cashtag => &mut out.cashtags,
            EntityKind::Url => &mut out.urls,
        };
        list.push(value.to_string());
    });
    out
}

/// Whether `text` may hold an entity at all: a `#`, `@` or `$`, a `://` or a `www.` (any case).
/// When false, [`EntityScanner::scan`] finds nothing, so it can be skipped. Non-ASCII text
/// (where default-ignorables could hide inside a marker) always answers true.
pub(crate) fn may_hold_entities(text: &str) -> bool {
    let b = text.as_bytes();
    !text.is_ascii()
        || memchr::memchr3(b'#', b'@', b'$', b).is_some()
        || memchr::memmem::find(b, b"://").is_some()
        || memchr::memchr_iter(b'.', b).any(|i| i >= 3 && b[i - 3..i].eq_ignore_ascii_case(b"www"))
}

/// Finds entities with reusable buffers (no allocation once they have grown).
#[derive(Clone, Debug, Default)]
pub(crate) struct EntityScanner {
    chars: Vec<(usize, char)>,
    value: String,
}

impl EntityScanner {
    /// Calls `f` with each hashtag, mention and cashtag of `text` (no URLs), in text order.
    /// Only the raw tokens holding a sigil are looked at (sigils are ASCII, so a byte search
    /// finds them in any UTF-8 text).
    pub(crate) fn scan_tags(&mut self, text: &str, mut f: impl FnMut(EntityKind, &str)) {
        let b = text.as_bytes();
        let mut done_to = 0;
        let mut no_urls = |kind: EntityKind, v: &str| {
            if kind != EntityKind::Url {
                f(kind, v)
            }
        };
        for pos in memchr::memchr3_iter(b'#', b'@', b'$', b) {
            if pos < done_to {
                continue;
            }
            let start = text[..pos]
                .char_indices()
                .rev()
                .find(|&(_, c)| char_class(c) == CharClass::Space)
                .map_or(0, |(i, c)| i + c.len_utf8());
            let end = text[pos..]
                .char_indices()
                .find(|&(_, c)| char_class(c) == CharClass::Space)
                .map_or(b.len(), |(i, _)| pos + i);
            self.scan_token(&text[start..end], &mut no_urls);
            done_to = end;
        }
    }

    /// Calls `f` with each entity of `text`, in text order.
    pub(crate) fn scan(&mut self, text: &str, mut f: impl FnMut(EntityKind, &str)) {
        if text.is_ascii() {
            for token in text.split(|c: char| char_class(c) == CharClass::Space) {
                if !token.is_empty() {
                    scan_ascii_token(token, &mut f);
                }
            }
            return;
        }
        for token in text.split(|c: char| char_class(c) == CharClass::Space) {
            if !token.is_empty() {
                self.scan_token(token, &mut f);
            }
        }
    }

    /// The entities of one raw token.
    fn scan_token(&mut self, token: &str, f: &mut impl FnMut(EntityKind, &str)) {
        if token.is_ascii() {
            scan_ascii_token(token, f);
            return;
        }
        self.chars.clear();
        self.chars
            .extend(token.char_indices().filter(|&(_, c)| char_class(c) != CharClass::Ignorable));
        if let (Some((from, _)), true) = url_prefix(&self.chars) {
            self.value.clear();
            self.value.extend(self.chars[from..].iter().map(|&(_, c)| c));
            f(EntityKind::Url, &self.value);
            return;
        }
        let chars = &self.chars;
        let mut prev_is_word = false;
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i].1;
            if matches!(c, '#' | '@' | '$') && !prev_is_word {
                let mut j = i + 1;
                // A mark right after the sigil belongs to it, so it starts no entity.
                while j < chars.len()
                    && ((char_class(chars[j].1).is_word() && !(j == i + 1 && is_mark(chars[j].1)))
                        || chars[j].1 == '_')
                {
                    j += 1;
                }
                if j > i + 1 {
                    self.value.clear();
                    self.value.extend(chars[i + 1..j].iter().map(|&(_, c)| c));
                    let kind = match c {
                        '#' => EntityKind::Hashtag,
                        '@' => EntityKind::Mention,
                        _ => EntityKind::Cashtag,
                    };
                    f(kind, &self.value);
                    prev_is_word = true;
                    i = j;
                    continue;
                }
            }
            prev_is_word = char_class(c).is_word() || c == '_';
            i += 1;
        }
    }
}

/// [`EntityScanner::scan`] for one raw token made of ASCII characters (no ignorables can be
/// in it): the same rules on bytes.
fn scan_ascii_token(token: &str, f: &mut impl FnMut(EntityKind, &str)) {
    let b = token.as_bytes();
    // A URL needs "://" or "www.".
    if memchr::memchr2(b':', b'.', b).is_some() {
        if let (Some((from, _)), true) = ascii_url_prefix(b) {
            f(EntityKind::Url, &token[from..]);
            return;
        }
    }
    if memchr::memchr3(b'#', b'@', b'$', b).is_none() {
        return;
    }
    let is_word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut prev_is_word = false;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if matches!(c, b'#' | b'@' | b'$') && !prev_is_word {
            let mut j = i + 1;
            while j < b.len() && is_word(b[j]) {
                j += 1;
            }
            if j > i + 1 {
                let kind = match c {
                    b'#' => EntityKind::Hashtag,
                    b'@' => EntityKind::Mention,
                    _ => EntityKind::Cashtag,
                };
                f(kind, &token[i + 1..j]);
                prev_is_word = true;
                i = j;
                continue;
            }
        }
        prev_is_word = is_word(c);
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(text: &str) -> Vec<(EntityKind, String)> {
        let mut out = Vec::new();
        EntityScanner::default().scan_tags(text, |k, v| out.push((k, v.to_string())));
        out
    }

    proptest::proptest! {
        /// The tags of an ASCII text are those found when the text is not ASCII (a leading
        /// non-ASCII token without a sigil) and those of the full entity scan without its URLs,
        /// raw tokens split at every kind of white space (a tag after a tab inside what would
        /// otherwise be a URL token is a tag).
        #[test]
        fn ascii_tags_are_those_of_the_general_search(
            text in "((www\\.|http://|[#@$])?[#@$a-cB1_./:]{0,6}[ \t\u{b}\u{1c}-\u{1f}\r\n]{1,2}){0,8}"
        ) {
            let general = tags(&format!("é {text}"));
            let mut all = Vec::new();
            EntityScanner::default().scan(&text, |k, v| {
                if k != EntityKind::Url {
                    all.push((k, v.to_string()));
                }
            });
            let ascii = tags(&text);
            proptest::prop_assert_eq!(&ascii, &general);
            proptest::prop_assert_eq!(&ascii, &all);
        }
    }
}
