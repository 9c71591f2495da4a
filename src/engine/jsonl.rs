//! JSON Lines in and out (feature `json`): a [`Source`] reading one message per line from a
//! file, standard input or any reader, and a [`Sink`] writing one delivery per line to any
//! writer (a backfill delivery's line ends with `"backfill":true`: see
//! [`Delivery::is_backfill`]).

use super::{Delivery, Sink, SinkError, Source, SourceError, SourceStatus};
use crate::message::MessageFormat;
use crate::read::{parse_message_line, BadLines, LineReader};
use crate::Message;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The longest line [`JsonLinesSource`] reads by default: the crate's one cap,
/// [`crate::read::MAX_LINE_BYTES`] (16 MiB).
pub use crate::read::MAX_LINE_BYTES;

/// A source reading messages as JSON Lines with the rules of [`crate::read`]: each non-blank
/// line is one message, JSON in any shape [`Message::from_json`] reads when its first non-blank
/// byte is `{`, plain text (its id the line number) otherwise. A bad line (invalid JSON or
/// UTF-8, no text, longer than [`MAX_LINE_BYTES`]) is skipped and reported
/// ([`SourceError::malformed`] with its 1-based line number, counted in
/// [`EngineStats::malformed`](super::EngineStats::malformed), and to [`BadLines`] when one is
/// set); reading goes on. An I/O error ends the stream.
///
/// A batch is returned as soon as the reader's buffer runs dry, so messages typed or piped
/// in one at a time are not held back waiting for more.
#[derive(Debug)]
pub struct JsonLinesSource<R> {
    lines: LineReader<R>,
    format: MessageFormat,
    bytes: Arc<AtomicU64>,
    bad: Option<BadLines>,
    good: Arc<AtomicU64>,
}

impl JsonLinesSource<File> {
    /// A source reading the file at `path`.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Self> {
        Ok(JsonLinesSource::new(File::open(path)?))
    }
}

impl JsonLinesSource<io::Stdin> {
    /// A source reading standard input.
    pub fn stdin() -> Self {
        JsonLinesSource::new(io::stdin())
    }
}

impl<R: Read + Send> JsonLinesSource<R> {
    /// A source reading `reader` (buffered here; pass the raw reader).
    pub fn new(reader: R) -> Self {
        JsonLinesSource {
            lines: LineReader::new(reader),
            format: MessageFormat::Auto,
            bytes: Arc::new(AtomicU64::new(0)),
            bad: None,
            good: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Reads every JSON line in this shape instead of detecting it.
    pub fn format(mut self, format: MessageFormat) -> Self {
        self.format = format;
        self
    }

    /// Sets the longest line read (see [`MAX_LINE_BYTES`]).
    pub fn max_line_bytes(mut self, n: usize) -> Self {
        self.lines = self.lines.max_line_bytes(n);
        self
    }

    /// Also reports every bad line to `bad` (the command-line tool's one bad-line policy:
    /// the first few printed with their line and column, all counted).
    pub fn report_bad_lines(mut self, bad: BadLines) -> Self {
        self.bad = Some(bad);
        self
    }

    /// A counter of the bytes read so far, shared with the source (for progress bars).
    pub fn bytes_read(&self) -> Arc<AtomicU64> {
        self.bytes.clone()
    }

    /// A counter of the messages read so far (non-blank lines that were not bad), shared
    /// with the source.
    pub fn messages_read(&self) -> Arc<AtomicU64> {
        self.good.clone()
    }
}

impl<R: Read + Send> Source for JsonLinesSource<R> {
    fn next_batch(
        &mut self,
        out: &mut Vec<Message>,
        max: usize,
    ) -> Result<SourceStatus, SourceError> {
        while out.len() < max {
            let format = self.format;
            let parsed = self
                .lines
                .next_line()?
                .map(|(n, line)| (n, line.and_then(|l| parse_message_line(l, n, format))));
            self.bytes.store(self.lines.bytes_read(), Ordering::Relaxed);
            let Some((number, parsed)) = parsed else { return Ok(SourceStatus::Ended) };
            match parsed {
                Ok(Some(m)) => {
                    self.good.fetch_add(1, Ordering::Relaxed);
                    out.push(m);
                }
                Ok(None) => {}
                Err(e) => {
                    if let Some(bad) = &self.bad {
                        bad.report(&e);
                    }
                    let message = match e.column {
                        Some(c) => format!("column {c}: {}", e.message),
                        None => e.message,
                    };
                    return Err(SourceError::malformed(Some(number as u64), message));
                }
            }
            if self.lines.is_drained() {
                break;
            }
        }
        Ok(SourceStatus::Open)
    }

    fn wants_acks(&self) -> bool {
        false
    }
}

/// A sink writing each delivery as one line of JSON (the shapes of
/// [`Delivery`]'s serialisation), optionally with a leading `"subscriber"` field so that one
/// stream can carry several subscribers (share the writer with [`SharedWriter`]).
///
/// Each line is written with one `write_all` call; a write error fails the sink.
#[derive(Debug)]
pub struct JsonLinesSink<W> {
    out: W,
    prefix: Option<Vec<u8>>,
    line: Vec<u8>,
}

impl<W: Write + Send> JsonLinesSink<W> {
    /// A sink writing to `out` (wrap a file or socket in a `BufWriter`: the sink flushes it
    /// whenever the subscriber's queue runs empty).
    pub fn new(out: W) -> Self {
        JsonLinesSink { out, prefix: None, line: Vec::new() }
    }

    /// Starts every line with `"subscriber": name`, e.g.
    /// `{"subscriber":"alice","limit":{"track":3}}`.
    pub fn with_subscriber_field(mut self, name: &str) -> Self {
        let mut prefix = b"{\"subscriber\":".to_vec();
        // Serialising a string into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut prefix, name);
        self.prefix = Some(prefix);
        self
    }

    /// The writer back.
    pub fn into_inner(self) -> W {
        self.out
    }
}

impl<W: Write + Send> Sink for JsonLinesSink<W> {
    fn send(&mut self, delivery: Delivery) -> Result<(), SinkError> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, &delivery)
            .map_err(|e| SinkError::new(format!("cannot serialise a delivery: {e}")))?;
        if let Some(prefix) = &self.prefix {
            // `{…}` becomes `{"subscriber":…,…}`.
            let rest = &self.line[1..];
            let mut with = Vec::with_capacity(prefix.len() + self.line.len() + 1);
            with.extend_from_slice(prefix);
            if rest != b"}" {
                with.push(b',');
            }
            with.extend_from_slice(rest);
            self.line = with;
        }
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SinkError> {
        Ok(self.out.flush()?)
    }
}

/// A writer shared by several sinks (e.g. every subscriber's [`JsonLinesSink`] writing to
/// standard output): clones write to the same writer, and each `write_all` is written whole,
/// so lines never interleave.
#[derive(Debug)]
pub struct SharedWriter<W> {
    inner: Arc<Mutex<W>>,
}

impl<W> Clone for SharedWriter<W> {
    fn clone(&self) -> Self {
        SharedWriter { inner: self.inner.clone() }
    }
}

impl<W: Write> SharedWriter<W> {
    /// Shares `w`.
    pub fn new(w: W) -> Self {
        SharedWriter { inner: Arc::new(Mutex::new(w)) }
    }

    /// Runs `f` with the writer locked.
    pub fn with<T>(&self, f: impl FnOnce(&mut W) -> T) -> T {
        f(&mut crate::sync::lock_std(&self.inner))
    }
}

impl<W: Write> Write for SharedWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.with(|w| w.write(buf))
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.with(|w| w.write_all(buf))
    }

    fn flush(&mut self) -> io::Result<()> {
        self.with(|w| w.flush())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::MatchingRule;
    use crate::registry::RuleId;

    /// Every message and every error line, reading to the end.
    fn read_all<R: Read + Send>(src: &mut JsonLinesSource<R>) -> (Vec<Message>, Vec<u64>) {
        let (mut out, mut errors) = (Vec::new(), Vec::new());
        loop {
            match src.next_batch(&mut out, 10) {
                Ok(SourceStatus::Ended) => return (out, errors),
                Ok(_) => {}
                Err(e) => {
                    assert!(!e.is_fatal());
                    errors.push(e.line.unwrap_or(0));
                }
            }
        }
    }

    #[test]
    fn a_backfill_delivery_is_written_with_its_flag() {
        use crate::engine::MatchingRules;
        let rule = MatchingRule::new(RuleId::from_u64(3), None);
        let message = Arc::new(Message::new("9", "old news"));
        let mut sink = JsonLinesSink::new(Vec::new()).with_subscriber_field("alice");
        let backfill = MatchingRules::from(rule.clone()).backfill();
        sink.send(Delivery::Match { message: message.clone(), matching_rules: backfill }).unwrap();
        sink.send(Delivery::Match { message, matching_rules: rule.into() }).unwrap();
        let out = String::from_utf8(sink.into_inner()).unwrap();
        assert_eq!(
            out,
            concat!(
                r#"{"subscriber":"alice","id":"9","text":"old news","matching_rules":[{"id":"3"}],"backfill":true}"#,
                "\n",
                r#"{"subscriber":"alice","id":"9","text":"old news","matching_rules":[{"id":"3"}]}"#,
                "\n"
            )
        );
    }

    #[test]
    fn source_skips_and_reports_malformed_lines() {
        let input =
            "{\"id\":1,\"text\":\"a\"}\n\n{not json\r\nplain text\n{\"id\":2,\"text\":\"b\"}";
        let mut src = JsonLinesSource::new(input.as_bytes());
        let (out, errors) = read_all(&mut src);
        assert_eq!(errors, [3]);
        // A line that does not start with `{` is a plain-text message, as for every reader.
        assert_eq!(out.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["1", "4", "2"]);
        assert_eq!(out[1].text, "plain text");
        assert_eq!(src.bytes_read().load(Ordering::Relaxed), input.len() as u64);
    }

    #[test]
    fn overlong_lines_are_skipped_whole() {
        let long = format!(
            "{{\"id\":1,\"text\":\"{}\"}}\n{{\"id\":2,\"text\":\"ok\"}}\n",
            "x".repeat(100)
        );
        let mut src = JsonLinesSource::new(long.as_bytes()).max_line_bytes(50);
        let (out, errors) = read_all(&mut src);
        assert_eq!(errors, [1]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].id, "2");
    }

    #[test]
    fn source_reports_bad_lines_with_their_column_and_counts_messages() {
        let printed = Arc::new(Mutex::new(Vec::new()));
        let sink = printed.clone();
        let bad = BadLines::new("in", 10, move |l| sink.lock().unwrap().push(l.to_string()));
        let input = "{\"id\":1,\"text\":}\nplain\n";
        let mut src = JsonLinesSource::new(input.as_bytes()).report_bad_lines(bad.clone());
        let (out, errors) = read_all(&mut src);
        assert_eq!((out.len(), errors.as_slice()), (1, &[1][..]));
        assert_eq!(*printed.lock().unwrap(), ["in:1:16: invalid JSON: expected value"]);
        assert_eq!((bad.count(), src.messages_read().load(Ordering::Relaxed)), (1, 1));
    }

    #[test]
    fn sink_writes_protocol_lines() {
        let mut sink = JsonLinesSink::new(Vec::new()).with_subscriber_field("al\"ice");
        sink.send(Delivery::Limit { track: 4 }).unwrap();
        let m = Message::from_json(r#"{"id":"9","text":"hi","extra":true}"#).unwrap();
        sink.send(Delivery::Match {
            message: Arc::new(m),
            matching_rules: MatchingRule::new(RuleId::from_u64(3), Some("t".into())).into(),
        })
        .unwrap();
        let text = String::from_utf8(sink.into_inner()).unwrap();
        assert_eq!(
            text,
            "{\"subscriber\":\"al\\\"ice\",\"limit\":{\"track\":4}}\n\
             {\"subscriber\":\"al\\\"ice\",\"id\":\"9\",\"text\":\"hi\",\"extra\":true,\
             \"matching_rules\":[{\"id\":\"3\",\"tag\":\"t\"}]}\n"
        );
    }
}
