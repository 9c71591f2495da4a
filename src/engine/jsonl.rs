//! JSON Lines in and out (feature `json`): a [`Source`] reading one message per line from a
//! file, standard input or any reader, and a [`Sink`] writing one delivery per line to any
//! writer.

use super::{Delivery, Sink, SinkError, Source, SourceError, SourceStatus};
use crate::message::MessageFormat;
use crate::Message;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// The longest line [`JsonLinesSource`] reads by default (16 MiB); a longer line is skipped
/// and reported as malformed, so one bad record cannot exhaust memory.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// A source reading messages as JSON Lines: each non-blank line is one message in any shape
/// [`Message::from_json`] reads. A line that is not a valid message is skipped and reported
/// ([`SourceError::malformed`] with its 1-based line number, counted in
/// [`EngineStats::malformed`](super::EngineStats::malformed)); reading goes on. An I/O error
/// ends the stream.
///
/// A batch is returned as soon as the reader's buffer runs dry, so messages typed or piped
/// in one at a time are not held back waiting for more.
#[derive(Debug)]
pub struct JsonLinesSource<R> {
    reader: BufReader<R>,
    line: u64,
    buf: Vec<u8>,
    format: MessageFormat,
    max_line: usize,
    bytes: Arc<AtomicU64>,
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
            reader: BufReader::with_capacity(64 << 10, reader),
            line: 0,
            buf: Vec::new(),
            format: MessageFormat::Auto,
            max_line: MAX_LINE_BYTES,
            bytes: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Reads every line in this shape instead of detecting it.
    pub fn format(mut self, format: MessageFormat) -> Self {
        self.format = format;
        self
    }

    /// Sets the longest line read (see [`MAX_LINE_BYTES`]).
    pub fn max_line_bytes(mut self, n: usize) -> Self {
        self.max_line = n.max(1);
        self
    }

    /// A counter of the bytes read so far, shared with the source (for progress bars).
    pub fn bytes_read(&self) -> Arc<AtomicU64> {
        self.bytes.clone()
    }

    /// Reads one line into `self.buf` (without its line feed); `None` at the end of input,
    /// `Some(false)` when the line was too long and skipped.
    fn read_line(&mut self) -> io::Result<Option<bool>> {
        self.buf.clear();
        let limit = self.max_line as u64 + 1;
        let n = (&mut self.reader).take(limit).read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(None);
        }
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        self.line += 1;
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
            return Ok(Some(true));
        }
        if self.buf.len() <= self.max_line {
            // The last line, without a line feed.
            return Ok(Some(true));
        }
        // Too long: skip to the end of the line without keeping it.
        loop {
            let available = self.reader.fill_buf()?;
            if available.is_empty() {
                break;
            }
            match available.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.reader.consume(i + 1);
                    self.bytes.fetch_add(i as u64 + 1, Ordering::Relaxed);
                    break;
                }
                None => {
                    let len = available.len();
                    self.reader.consume(len);
                    self.bytes.fetch_add(len as u64, Ordering::Relaxed);
                }
            }
        }
        Ok(Some(false))
    }
}

impl<R: Read + Send> Source for JsonLinesSource<R> {
    fn next_batch(
        &mut self,
        out: &mut Vec<Message>,
        max: usize,
    ) -> Result<SourceStatus, SourceError> {
        while out.len() < max {
            let fits = match self.read_line()? {
                None => return Ok(SourceStatus::Ended),
                Some(fits) => fits,
            };
            let line = self.line;
            if !fits {
                let msg = format!("line longer than {} bytes", self.max_line);
                return Err(SourceError::malformed(Some(line), msg));
            }
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let bytes = self.buf.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&self.buf);
            let parsed = match std::str::from_utf8(bytes) {
                Ok(text) => Message::from_json_with(text, self.format).map_err(|e| e.to_string()),
                Err(e) => Err(format!("invalid UTF-8: {e}")),
            };
            match parsed {
                Ok(m) => out.push(m),
                Err(e) => return Err(SourceError::malformed(Some(line), e)),
            }
            if self.reader.buffer().is_empty() {
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
        f(&mut self.inner.lock().unwrap_or_else(PoisonError::into_inner))
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
    fn source_skips_and_reports_malformed_lines() {
        let input = "{\"id\":1,\"text\":\"a\"}\n\nnot json\r\n{\"id\":2,\"text\":\"b\"}";
        let mut src = JsonLinesSource::new(input.as_bytes());
        let (out, errors) = read_all(&mut src);
        assert_eq!(errors, [3]);
        assert_eq!(out.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["1", "2"]);
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
    fn sink_writes_protocol_lines() {
        let mut sink = JsonLinesSink::new(Vec::new()).with_subscriber_field("al\"ice");
        sink.send(Delivery::Limit { track: 4 }).unwrap();
        let m = Message::from_json(r#"{"id":"9","text":"hi","extra":true}"#).unwrap();
        sink.send(Delivery::Match {
            message: Arc::new(m),
            matching_rules: MatchingRule::new(RuleId(3), Some("t".into())).into(),
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
