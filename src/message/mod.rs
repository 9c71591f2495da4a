//! Messages: the unit that flows through a stream
//! ([rule language](crate::rule_language#1-messages)).
//!
//! A [`Message`] is an id plus the fields rules can look at. Only `text` is required. Entity
//! lists (`hashtags`, `mentions`, `cashtags`, `urls`) are `None` when the source did not carry
//! them; matchers then extract them from the text (see [`extract_entities`]), exactly as the
//! rule language asks.

#[cfg(feature = "json")]
mod json;
#[cfg(feature = "json")]
pub use json::{JsonError, MessageFormat};

pub(crate) mod extract;
pub(crate) mod normalized;
pub use normalized::{Field, FieldKind, NormalizedMessage, StrList};
pub mod time;
pub use extract::{extract_entities, ExtractedEntities};

/// A URL entity: what the message links to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "json", derive(serde::Serialize, serde::Deserialize))]
pub struct UrlEntity {
    /// The full target of the link, e.g. `https://en.wikipedia.org/wiki/Snow`.
    pub expanded_url: Option<String>,
    /// The shortened form shown to readers, e.g. `en.wikipedia.org/wiki/Snow`.
    pub display_url: Option<String>,
}

impl UrlEntity {
    /// A URL entity with the same expanded and display form.
    pub fn new(url: impl Into<String>) -> Self {
        let url = url.into();
        UrlEntity { expanded_url: Some(url.clone()), display_url: Some(url) }
    }
}

/// A geographic box, `[west, south, east, north]` in degrees (longitude, latitude).
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "json", derive(serde::Serialize, serde::Deserialize))]
pub struct GeoBox {
    /// Western longitude.
    pub west: f64,
    /// Southern latitude.
    pub south: f64,
    /// Eastern longitude.
    pub east: f64,
    /// Northern latitude.
    pub north: f64,
}

impl GeoBox {
    /// Whether the point (lon, lat) lies inside the box, edges included.
    pub fn contains_point(&self, lon: f64, lat: f64) -> bool {
        self.west <= lon && lon <= self.east && self.south <= lat && lat <= self.north
    }

    /// Whether `other` lies entirely inside this box, edges included.
    pub fn contains_box(&self, other: &GeoBox) -> bool {
        self.contains_point(other.west, other.south) && self.contains_point(other.east, other.north)
    }

    /// Whether the two boxes share at least one point.
    pub fn overlaps(&self, other: &GeoBox) -> bool {
        self.west <= other.east
            && other.west <= self.east
            && self.south <= other.north
            && other.south <= self.north
    }
}

/// One message of a stream: an id, its text and the optional fields rules can test.
///
/// Build one with [`Message::new`] and the `with_*` methods, or read one from JSON with
/// [`Message::from_json`] (feature `json`), which accepts the simple shape
/// `{"id": …, "text": …}` as well as Twitter v1.1 and v2 tweet JSON.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Message {
    /// The message id (`id_str` for Twitter JSON). Used by `sample:`.
    pub id: String,
    /// The message text (for tweets: the full, untruncated text).
    pub text: String,
    /// The author's screen name, without `@`.
    pub user: Option<String>,
    /// The author's numeric id, as a string.
    pub user_id: Option<String>,
    /// The language tag (BCP 47), e.g. `en` or `zh-Hant`.
    pub lang: Option<String>,
    /// URL entities; `None` when the source had no such list (then URLs come from the text).
    pub urls: Option<Vec<UrlEntity>>,
    /// Media entities (photos, videos); they are searched like URLs but are not links.
    pub media: Option<Vec<UrlEntity>>,
    /// Hashtag texts without `#`; `None` when absent (then extracted from the text).
    pub hashtags: Option<Vec<String>>,
    /// Mentioned screen names without `@`; `None` when absent.
    pub mentions: Option<Vec<String>>,
    /// Cashtag texts without `$`; `None` when absent.
    pub cashtags: Option<Vec<String>>,
    /// An exact location, `(longitude, latitude)`.
    pub coordinates: Option<(f64, f64)>,
    /// The bounding box of a tagged place.
    pub place: Option<GeoBox>,
    /// Whether the message is a retweet / repost.
    pub is_retweet: bool,
    /// Whether the message is a reply.
    pub is_reply: bool,
    /// Whether the message quotes another.
    pub is_quote: bool,
    /// The text of the quoted message; matched as well.
    pub quoted_text: Option<String>,
    /// The text of the retweeted message; matched as well.
    pub retweeted_text: Option<String>,
    /// Screen name of the user replied to (for `to:`).
    pub in_reply_to_user: Option<String>,
    /// Id of the user replied to (for `to:`).
    pub in_reply_to_user_id: Option<String>,
    /// Event time, milliseconds since the Unix epoch (UTC), when the source gave one
    /// (`created_at` / `timestamp`, see [`time`]); analytics use arrival time otherwise.
    pub timestamp: Option<i64>,
    /// The JSON object the message was read from, kept so that output can echo the input
    /// unchanged (unknown fields included).
    #[cfg(feature = "json")]
    pub source: Option<std::sync::Arc<serde_json::Map<String, serde_json::Value>>>,
}

impl Message {
    /// A message with an id and a text and nothing else.
    pub fn new(id: impl Into<String>, text: impl Into<String>) -> Self {
        Message { id: id.into(), text: text.into(), ..Message::default() }
    }

    /// Sets the author's screen name.
    pub fn with_user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Sets the language tag.
    pub fn with_lang(mut self, lang: impl Into<String>) -> Self {
        self.lang = Some(lang.into());
        self
    }

    /// Sets the URL entities.
    pub fn with_urls(mut self, urls: Vec<UrlEntity>) -> Self {
        self.urls = Some(urls);
        self
    }

    /// Sets the hashtag entities (texts without `#`).
    pub fn with_hashtags<S: Into<String>>(mut self, tags: impl IntoIterator<Item = S>) -> Self {
        self.hashtags = Some(tags.into_iter().map(Into::into).collect());
        self
    }

    /// Sets the mention entities (screen names without `@`).
    pub fn with_mentions<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.mentions = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Sets the exact location.
    pub fn with_coordinates(mut self, lon: f64, lat: f64) -> Self {
        self.coordinates = Some((lon, lat));
        self
    }

    /// Sets the event time (milliseconds since the Unix epoch, UTC).
    pub fn with_timestamp(mut self, ms: i64) -> Self {
        self.timestamp = Some(ms);
        self
    }

    /// Sets the quoted message's text.
    pub fn with_quoted_text(mut self, text: impl Into<String>) -> Self {
        self.quoted_text = Some(text.into());
        self.is_quote = true;
        self
    }
}
