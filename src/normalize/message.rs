//! The normalised view of a message: every searchable field tokenised, every entity and
//! operator value folded.

use super::{fold, Tokens, UrlMode};
use crate::message::{extract_entities, GeoBox, Message};

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

/// A message prepared for matching: the fields searched by words, phrases, proximity and
/// `contains:` (text, quoted and retweeted text, URL and media entities, hashtags, mentions),
/// and the folded values read by the operators.
///
/// [`NormalizedMessage::prepare`] reuses the buffers of the previous message.
#[derive(Clone, Debug, Default)]
pub struct NormalizedMessage {
    fields: Vec<Field>,
    field_count: usize,
    /// The message id (for `sample:`).
    pub id: String,
    /// Folded hashtag texts (entities, or extracted from the text).
    pub hashtags: Vec<String>,
    /// Folded mentioned names.
    pub mentions: Vec<String>,
    /// Folded cashtag texts.
    pub cashtags: Vec<String>,
    /// Whether the message links somewhere (`has:links`).
    pub has_links: bool,
    /// Whether the message carries media (`has:media`).
    pub has_media: bool,
    /// Folded author screen name.
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

impl NormalizedMessage {
    /// An empty prepared message, to be filled by [`NormalizedMessage::prepare`].
    pub fn new() -> Self {
        NormalizedMessage::default()
    }

    /// Prepares `msg`.
    pub fn of(msg: &Message) -> Self {
        let mut n = NormalizedMessage::new();
        n.prepare(msg);
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

    fn push_field(&mut self, kind: FieldKind, text: &str) {
        if self.field_count == self.fields.len() {
            self.fields.push(Field { kind, tokens: Tokens::new() });
        }
        let field = &mut self.fields[self.field_count];
        field.kind = kind;
        field.tokens.tokenize(text, UrlMode::Canonicalize);
        self.field_count += 1;
    }

    /// Replaces the content with the normalised view of `msg`.
    pub fn prepare(&mut self, msg: &Message) {
        self.field_count = 0;
        self.push_field(FieldKind::Text, &msg.text);
        if let Some(q) = &msg.quoted_text {
            self.push_field(FieldKind::QuotedText, q);
        }
        if let Some(r) = &msg.retweeted_text {
            self.push_field(FieldKind::RetweetedText, r);
        }
        let needs_extraction = msg.hashtags.is_none()
            || msg.mentions.is_none()
            || msg.cashtags.is_none()
            || msg.urls.is_none();
        let extracted =
            if needs_extraction { extract_entities(&msg.text) } else { Default::default() };
        self.has_links = false;
        match &msg.urls {
            Some(urls) => {
                for u in urls {
                    for s in [&u.expanded_url, &u.display_url].into_iter().flatten() {
                        self.push_field(FieldKind::Url, s);
                        self.has_links = true;
                    }
                }
            }
            None => {
                for u in &extracted.urls {
                    self.push_field(FieldKind::Url, u);
                    self.has_links = true;
                }
            }
        }
        self.has_media = false;
        if let Some(media) = &msg.media {
            for u in media {
                for s in [&u.expanded_url, &u.display_url].into_iter().flatten() {
                    self.push_field(FieldKind::Media, s);
                    self.has_media = true;
                }
            }
        }
        fill_folded(&mut self.hashtags, msg.hashtags.as_deref(), &extracted.hashtags);
        fill_folded(&mut self.mentions, msg.mentions.as_deref(), &extracted.mentions);
        fill_folded(&mut self.cashtags, msg.cashtags.as_deref(), &extracted.cashtags);
        for i in 0..self.hashtags.len() {
            let tag = std::mem::take(&mut self.hashtags[i]);
            self.push_field(FieldKind::Hashtag, &tag);
            self.hashtags[i] = tag;
        }
        for i in 0..self.mentions.len() {
            let name = std::mem::take(&mut self.mentions[i]);
            self.push_field(FieldKind::Mention, &name);
            self.mentions[i] = name;
        }
        self.id.clear();
        self.id.push_str(&msg.id);
        self.user = msg.user.as_deref().map(|u| fold(u.trim_start_matches('@')));
        self.user_id = msg.user_id.clone();
        self.in_reply_to_user =
            msg.in_reply_to_user.as_deref().map(|u| fold(u.trim_start_matches('@')));
        self.in_reply_to_user_id = msg.in_reply_to_user_id.clone();
        self.lang = msg.lang.as_deref().map(fold);
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

fn fill_folded(out: &mut Vec<String>, given: Option<&[String]>, extracted: &[String]) {
    out.clear();
    let source = given.unwrap_or(extracted);
    out.extend(source.iter().map(|s| fold(s.trim_start_matches(['#', '@', '$']))));
}
