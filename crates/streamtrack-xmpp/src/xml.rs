//! Just enough XML for XMPP stanzas: a small element tree read from a quick-xml pull parser,
//! and escaping for the stanzas the bot writes.

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use tokio::io::AsyncBufRead;

/// One XML element of a stanza: its local name (prefix dropped), attributes, text and children.
///
/// Stanzas are small and few per second, so an owned tree is simpler than borrowing from the
/// parser's buffer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Element {
    /// The local name (`message`, `presence`, `body`, ...).
    pub name: String,
    /// Attributes in document order, values unescaped (`xmlns` included).
    pub attrs: Vec<(String, String)>,
    /// The concatenated character data directly inside this element.
    pub text: String,
    /// Child elements in document order.
    pub children: Vec<Element>,
}

impl Element {
    /// The value of attribute `name`, if present.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    fn from_start(start: &BytesStart<'_>) -> Result<Element, String> {
        let name = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
        let mut attrs = Vec::new();
        for a in start.attributes() {
            let a = a.map_err(|e| format!("bad attribute: {e}"))?;
            let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
            let value = a.unescape_value().map_err(|e| format!("bad attribute value: {e}"))?;
            attrs.push((key, value.into_owned()));
        }
        Ok(Element { name, attrs, ..Element::default() })
    }
}

/// What the stream reader produced next.
#[derive(Debug)]
pub(crate) enum Item {
    /// The opening `<stream:stream>` tag.
    StreamStart,
    /// A complete top-level element (a stanza, features, SASL reply).
    Stanza(Element),
    /// `</stream:stream>` or end of file.
    End,
}

/// Reads the next top-level item of an XMPP stream.
pub(crate) async fn next_item<R: AsyncBufRead + Unpin>(
    reader: &mut Reader<R>,
    buf: &mut Vec<u8>,
) -> Result<Item, String> {
    let mut stack: Vec<Element> = Vec::new();
    loop {
        buf.clear();
        let ev = reader.read_event_into_async(buf).await.map_err(|e| format!("XML error: {e}"))?;
        match ev {
            Event::Start(s) => {
                if stack.is_empty() && s.local_name().as_ref() == b"stream" {
                    return Ok(Item::StreamStart);
                }
                stack.push(Element::from_start(&s)?);
            }
            Event::Empty(s) => {
                let e = Element::from_start(&s)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(e),
                    None => return Ok(Item::Stanza(e)),
                }
            }
            Event::End(_) => match stack.pop() {
                Some(done) => match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => return Ok(Item::Stanza(done)),
                },
                None => return Ok(Item::End),
            },
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    let s = t.unescape().map_err(|e| format!("bad text: {e}"))?;
                    top.text.push_str(&s);
                }
            }
            Event::CData(c) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&String::from_utf8_lossy(&c));
                }
            }
            Event::Eof => return Ok(Item::End),
            _ => {}
        }
    }
}

/// Escapes text for an XML attribute value or character data (`&`, `<`, `>`, `"`, `'`), and
/// drops the control characters XML 1.0 cannot carry (a post's text is untrusted).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_drops_controls() {
        assert_eq!(escape("a<b>&\"'\u{1}c\n"), "a&lt;b&gt;&amp;&quot;&apos;c\n");
    }

    #[tokio::test]
    async fn reads_stream_start_stanzas_and_end() {
        let xml = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
            xmlns:stream='http://etherx.jabber.org/streams' id='x'> \
            <message from='a@h/r' type='chat'><body>hi &amp; &lt;3</body><x/></message>\
            <presence/></stream:stream>";
        let mut r = Reader::from_reader(tokio::io::BufReader::new(xml.as_bytes()));
        let mut buf = Vec::new();
        assert!(matches!(next_item(&mut r, &mut buf).await.unwrap(), Item::StreamStart));
        match next_item(&mut r, &mut buf).await.unwrap() {
            Item::Stanza(e) => {
                assert_eq!(e.name, "message");
                assert_eq!(e.attr("from"), Some("a@h/r"));
                assert_eq!(e.child("body").unwrap().text, "hi & <3");
                assert_eq!(e.children.len(), 2);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(next_item(&mut r, &mut buf).await.unwrap(), Item::Stanza(e) if e.name == "presence")
        );
        assert!(matches!(next_item(&mut r, &mut buf).await.unwrap(), Item::End));
    }
}
