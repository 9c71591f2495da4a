//! The normalised view of a message: every searchable field tokenised, every entity and
//! operator value folded.

use super::extract::{may_hold_entities, EntityKind, EntityScanner};
use super::{GeoBox, Message};
use crate::normalize::{push_fold, Tokens, UrlMode};

/// Which part of a message a field comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FieldKind {
    /// The message text.
    Text,
    /// The text of a quoted message.
    QuotedText,
    /// The text of a retweeted message.
    RetweetedText,
    /// A URL entity (expanded or display form), or a URL found in the text.
    Url,
    /// A media entity (expanded or display form).
    Media,
    /// A hashtag text.
    Hashtag,
    /// A mentioned screen name.
    Mention,
}

/// One searchable field of a message, tokenised on its own (a phrase never spans two fields).
#[derive(Clone, Debug)]
pub struct Field {
    /// Where the field comes from.
    pub kind: FieldKind,
    /// Its tokenisation.
    pub tokens: Tokens,
}

/// A list of short strings in one buffer (no allocation per string).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StrList {
    buf: String,
    ends: Vec<usize>,
}

impl StrList {
    /// Removes every string, keeping the buffers.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.ends.clear();
    }

    /// Appends the folded form of `s` (see [`crate::normalize::fold`]).
    pub fn push_folded(&mut self, s: &str) {
        push_fold(s, &mut self.buf);
        self.ends.push(self.buf.len());
    }

    /// The number of strings.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// String `i`.
    pub fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.buf[start..self.ends[i]]
    }

    /// The strings, in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }

    /// Whether `s` is in the list.
    pub fn contains(&self, s: &str) -> bool {
        self.iter().any(|x| x == s)
    }
}

/// A message prepared for matching: the fields searched by words, phrases, proximity and
/// `contains:` (text, quoted and retweeted text, URL and media entities, hashtags, mentions),
/// and the folded values read by the operators.
///
/// [`NormalizedMessage::prepare`] reuses the buffers of the previous message, so preparing
/// message after message into one value allocates nothing once its buffers have grown.
#[derive(Clone, Debug, Default)]
pub struct NormalizedMessage {
    fields: Vec<Field>,
    field_count: usize,
    scanner: EntityScanner,
    /// The message id (for `sample:`).
    pub id: String,
    /// Folded hashtag texts (entities, or extracted from the text).
    pub hashtags: StrList,
    /// Folded mentioned names.
    pub mentions: StrList,
    /// Folded cashtag texts.
    pub cashtags: StrList,
    /// Whether the message links somewhere (`has:links`).
    pub has_links: bool,
    /// Whether the message carries media (`has:media`).
    pub has_media: bool,
    /// Folded author screen name (without `@`).
    pub user: Option<String>,
    /// Author id.
    pub user_id: Option<String>,
    /// Folded screen name of the user replied to.
    pub in_reply_to_user: Option<String>,
    /// Id of the user replied to.
    pub in_reply_to_user_id: Option<String>,
    /// Folded language tag.
    pub lang: Option<String>,
    /// Exact location `(lon, lat)`.
    pub coordinates: Option<(f64, f64)>,
    /// Place bounding box.
    pub place: Option<GeoBox>,
    /// `is:retweet`.
    pub is_retweet: bool,
    /// `is:reply`.
    pub is_reply: bool,
    /// `is:quote`.
    pub is_quote: bool,
}

/// Which tokenizer [`NormalizedMessage`] uses.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Path {
    Fast,
    Reference,
}

impl NormalizedMessage {
    /// An empty prepared message, to be filled by [`NormalizedMessage::prepare`].
    pub fn new() -> Self {
        NormalizedMessage::default()
    }

    /// Prepares `msg` (allocates; see [`NormalizedMessage::prepare`] to reuse buffers).
    pub fn of(msg: &Message) -> Self {
        let mut n = NormalizedMessage::new();
        n.prepare(msg);
        n
    }

    /// Prepares `msg` with the plain reference algorithms only (see
    /// [`NormalizedMessage::prepare_reference`]).
    pub fn of_reference(msg: &Message) -> Self {
        let mut n = NormalizedMessage::new();
        n.prepare_reference(msg);
        n
    }

    /// The searchable fields, in a fixed order: text, quoted text, retweeted text, URLs,
    /// media, hashtags, mentions.
    pub fn fields(&self) -> &[Field] {
        &self.fields[..self.field_count]
    }

    /// The fields of one kind.
    pub fn fields_of(&self, kind: FieldKind) -> impl Iterator<Item = &Field> {
        self.fields().iter().filter(move |f| f.kind == kind)
    }

    fn push_field(&mut self, kind: FieldKind, text: &str, path: Path) {
        if self.field_count == self.fields.len() {
            self.fields.push(Field { kind, tokens: Tokens::new() });
        }
        let field = &mut self.fields[self.field_count];
        field.kind = kind;
        match path {
            Path::Fast => field.tokens.tokenize(text, UrlMode::Canonicalize),
            Path::Reference => field.tokens.tokenize_reference(text, UrlMode::Canonicalize),
        }
        self.field_count += 1;
    }

    /// Replaces the content with the normalised view of `msg`, using the fast tokenizer.
    pub fn prepare(&mut self, msg: &Message) {
        self.prepare_with(msg, Path::Fast)
    }

    /// Like [`NormalizedMessage::prepare`], but with the plain per-character tokenizer and
    /// an unconditional entity scan: the reference the fast path is tested against.
    pub fn prepare_reference(&mut self, msg: &Message) {
        self.prepare_with(msg, Path::Reference)
    }

    fn prepare_with(&mut self, msg: &Message, path: Path) {
        self.field_count = 0;
        self.push_field(FieldKind::Text, &msg.text, path);
        if let Some(q) = &msg.quoted_text {
            self.push_field(FieldKind::QuotedText, q, path);
        }
        if let Some(r) = &msg.retweeted_text {
            self.push_field(FieldKind::RetweetedText, r, path);
        }
        // Entities absent from the source are extracted from the text.
        let extract = msg.hashtags.is_none()
            || msg.mentions.is_none()
            || msg.cashtags.is_none()
            || msg.urls.is_none();
        self.hashtags.clear();
        self.mentions.clear();
        self.cashtags.clear();
        self.has_links = false;
        if let Some(urls) = &msg.urls {
            for u in urls {
                for s in [&u.expanded_url, &u.display_url].into_iter().flatten() {
                    self.push_field(FieldKind::Url, s, path);
                    self.has_links = true;
                }
            }
        }
        if extract && (path == Path::Reference || may_hold_entities(&msg.text)) {
            let mut scanner = std::mem::take(&mut self.scanner);
            scanner.scan(&msg.text, |kind, value| match kind {
                EntityKind::Url if msg.urls.is_none() => {
                    self.push_field(FieldKind::Url, value, path);
                    self.has_links = true;
                }
                kind => push_extracted_tag(
                    msg,
                    kind,
                    value,
                    [&mut self.hashtags, &mut self.mentions, &mut self.cashtags],
                ),
            });
            self.scanner = scanner;
        }
        self.has_media = false;
        if let Some(media) = &msg.media {
            for u in media {
                for s in [&u.expanded_url, &u.display_url].into_iter().flatten() {
                    self.push_field(FieldKind::Media, s, path);
                    self.has_media = true;
                }
            }
        }
        push_given_entities(msg, [&mut self.hashtags, &mut self.mentions, &mut self.cashtags]);
        for i in 0..self.hashtags.len() {
            let tags = std::mem::take(&mut self.hashtags);
            self.push_field(FieldKind::Hashtag, tags.get(i), path);
            self.hashtags = tags;
        }
        for i in 0..self.mentions.len() {
            let names = std::mem::take(&mut self.mentions);
            self.push_field(FieldKind::Mention, names.get(i), path);
            self.mentions = names;
        }
        self.id.clear();
        self.id.push_str(&msg.id);
        set_folded(&mut self.user, msg.user.as_deref().map(|u| u.trim_start_matches('@')));
        set_copy(&mut self.user_id, msg.user_id.as_deref());
        set_folded(
            &mut self.in_reply_to_user,
            msg.in_reply_to_user.as_deref().map(|u| u.trim_start_matches('@')),
        );
        set_copy(&mut self.in_reply_to_user_id, msg.in_reply_to_user_id.as_deref());
        set_folded(&mut self.lang, msg.lang.as_deref());
        self.coordinates = msg.coordinates;
        self.place = msg.place;
        self.is_retweet = msg.is_retweet || msg.retweeted_text.is_some();
        self.is_reply = msg.is_reply;
        self.is_quote = msg.is_quote || msg.quoted_text.is_some();
    }

    /// Whether the message has geo information (`has:geo`).
    pub fn has_geo(&self) -> bool {
        self.coordinates.is_some() || self.place.is_some()
    }
}

/// Appends the folded entities the message carries itself (`[hashtags, mentions, cashtags]`),
/// one leading sigil removed.
pub(crate) fn push_given_entities(msg: &Message, lists: [&mut StrList; 3]) {
    let given = [&msg.hashtags, &msg.mentions, &msg.cashtags];
    for (given, list) in given.into_iter().zip(lists) {
        for s in given.iter().flatten() {
            list.push_folded(s.trim_start_matches(['#', '@', '$']));
        }
    }
}

/// Appends a tag found in the text to its list (`[hashtags, mentions, cashtags]`), unless
/// the message carries that kind of entity itself.
pub(crate) fn push_extracted_tag(
    msg: &Message,
    kind: EntityKind,
    value: &str,
    lists: [&mut StrList; 3],
) {
    let [h, m, c] = lists;
    match kind {
        EntityKind::Hashtag if msg.hashtags.is_none() => h.push_folded(value),
        EntityKind::Mention if msg.mentions.is_none() => m.push_folded(value),
        EntityKind::Cashtag if msg.cashtags.is_none() => c.push_folded(value),
        _ => {}
    }
}

fn set_folded(slot: &mut Option<String>, value: Option<&str>) {
    match value {
        Some(v) => {
            let s = slot.get_or_insert_with(String::new);
            s.clear();
            push_fold(v, s);
        }
        None => *slot = None,
    }
}

fn set_copy(slot: &mut Option<String>, value: Option<&str>) {
    match value {
        Some(v) => {
            let s = slot.get_or_insert_with(String::new);
            s.clear();
            s.push_str(v);
        }
        None => *slot = None,
    }
}
