//! Reading input (feature `json`): messages and rules files as JSON Lines, with one line-length
//! cap, one policy for bad lines and one wording for every reader.
//!
//! Every reader of the crate goes through here: [`JsonLinesSource`](crate::engine::jsonl::JsonLinesSource)
//! (the engine's source), the corpus readers ([`read_message_file`], [`read_rules`]) and the
//! `streamtrack match` and `run` commands.
//!
//! - **Lines** end with LF or CRLF; a byte order mark before the first line is dropped; blank
//!   lines are skipped. A line longer than [`MAX_LINE_BYTES`] is skipped without being held in
//!   memory and reported as bad, so one runaway record cannot exhaust memory.
//! - **Messages**: a line whose first non-blank byte is `{` is a JSON message (any shape
//!   [`Message::from_json_with`] reads); any other line is a plain-text message whose id is its
//!   line number. A line that is neither (invalid JSON, invalid UTF-8, no text) is *bad*: it is
//!   skipped, reported ([`BadLines`]) and counted; reading goes on.
//! - **Rules**: a `{` line is a rule object (see [`crate::rules_file`]); any other line is one
//!   rule in the default dialect whose id is its line number. Any bad rule line makes the whole
//!   file an error that lists every bad line; nothing is half-loaded.
//! - **Wording**: `FILE:LINE:COLUMN: what is wrong` (columns count code points from 1), e.g.
//!   `rules.jsonl:3:30: rule "a": unknown key "dialekt" (expected one of id, value, dialect,
//!   tag, subscriber)`.

use crate::message::{JsonError, MessageFormat};
use crate::rule::{Dialect, Parser};
use crate::rules_file::{parse_rule_line_checked, RuleEntry, RulesFileError};
use crate::Message;
use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The longest line any reader accepts (16 MiB); a longer line is skipped and reported as bad.
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// How many bad lines [`BadLines`] prints before it only counts them.
pub const MAX_REPORTED_LINES: u64 = 10;

/// The name the readers give standard input in their reports.
pub const STDIN_NAME: &str = "<stdin>";

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// A line of input that was skipped or rejected, and where in it the problem is.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LineError {
    /// The 1-based line number.
    pub line: usize,
    /// The 1-based column (in code points) of the problem, when known.
    pub column: Option<usize>,
    /// What is wrong with it.
    pub message: String,
}

impl LineError {
    /// An error about line `line` (1-based), at `column` when known.
    pub fn new(line: usize, column: Option<usize>, message: impl Into<String>) -> Self {
        LineError { line, column, message: message.into() }
    }

    /// The error as the command-line tool prints it: `FILE:LINE:COLUMN: message`.
    pub fn in_file<'a>(&'a self, file: &'a str) -> impl fmt::Display + 'a {
        Located { file, line: self.line, column: self.column, prefix: None, message: &self.message }
    }
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column {
            Some(c) => write!(f, "line {}, column {c}: {}", self.line, self.message),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

impl std::error::Error for LineError {}

/// `FILE:LINE[:COLUMN]: [prefix: ]message`, the one wording of every report.
pub(crate) struct Located<'a> {
    pub(crate) file: &'a str,
    pub(crate) line: usize,
    pub(crate) column: Option<usize>,
    pub(crate) prefix: Option<&'a str>,
    pub(crate) message: &'a str,
}

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:", self.file, self.line)?;
        if let Some(c) = self.column {
            write!(f, "{c}:")?;
        }
        f.write_str(" ")?;
        if let Some(p) = self.prefix {
            write!(f, "{p}: ")?;
        }
        f.write_str(self.message)
    }
}

/// The 1-based column, in code points, of byte offset `offset` of `text`.
pub(crate) fn column_of(text: &[u8], offset: usize) -> usize {
    let prefix = &text[..offset.min(text.len())];
    // Count code points: every byte that does not continue a UTF-8 sequence.
    prefix.iter().filter(|&&b| (b & 0xC0) != 0x80).count() + 1
}

/// Reads lines with a length cap: the one line splitter of every reader.
///
/// A line is returned without its LF or CRLF; a byte order mark before the first line is
/// dropped. A line longer than the cap is consumed without being kept and returned as a
/// [`LineError`], so memory stays bounded by the cap whatever the input.
#[derive(Debug)]
pub struct LineReader<R> {
    reader: BufReader<R>,
    line: usize,
    buf: Vec<u8>,
    max_line: usize,
    bytes: u64,
}

impl<R: Read> LineReader<R> {
    /// A reader of `reader`'s lines (buffered here; pass the raw reader), capped at
    /// [`MAX_LINE_BYTES`].
    pub fn new(reader: R) -> Self {
        LineReader {
            reader: BufReader::with_capacity(64 << 10, reader),
            line: 0,
            buf: Vec::new(),
            max_line: MAX_LINE_BYTES,
            bytes: 0,
        }
    }

    /// Sets the longest line accepted (at least 1 byte).
    pub fn max_line_bytes(mut self, n: usize) -> Self {
        self.max_line = n.max(1);
        self
    }

    /// The longest line accepted.
    pub fn max_line(&self) -> usize {
        self.max_line
    }

    /// The 1-based number of the line last returned (0 before the first).
    pub fn line_number(&self) -> usize {
        self.line
    }

    /// The bytes consumed so far, line ends included.
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// Whether every byte read from the underlying reader has been returned, i.e. the next
    /// line would have to wait for the reader (a caller batching lines stops here so that a
    /// live stream is not held back).
    pub fn is_drained(&self) -> bool {
        self.reader.buffer().is_empty()
    }

    /// The next line and its 1-based number: `None` at the end of input, `Err(_)` for a line
    /// over the cap (already skipped).
    #[allow(clippy::type_complexity)]
    pub fn next_line(&mut self) -> io::Result<Option<(usize, Result<&[u8], LineError>)>> {
        self.buf.clear();
        let limit = self.max_line as u64 + 1;
        let n = (&mut self.reader).take(limit).read_until(b'\n', &mut self.buf)?;
        if n == 0 {
            return Ok(None);
        }
        self.bytes += n as u64;
        self.line += 1;
        let ended = self.buf.last() == Some(&b'\n');
        if ended {
            self.buf.pop();
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
        }
        if ended || self.buf.len() <= self.max_line {
            let mut line = &self.buf[..];
            if self.line == 1 {
                line = line.strip_prefix(BOM).unwrap_or(line);
            }
            return Ok(Some((self.line, Ok(line))));
        }
        // Too long: skip to the end of the line without keeping it.
        loop {
            let available = self.reader.fill_buf()?;
            if available.is_empty() {
                break;
            }
            match memchr::memchr(b'\n', available) {
                Some(i) => {
                    self.reader.consume(i + 1);
                    self.bytes += i as u64 + 1;
                    break;
                }
                None => {
                    let len = available.len();
                    self.reader.consume(len);
                    self.bytes += len as u64;
                }
            }
        }
        let message = format!("line longer than {} bytes; skipped", self.max_line);
        Ok(Some((self.line, Err(LineError::new(self.line, None, message)))))
    }
}

/// Whether a line holds only white space (such lines are skipped by every reader).
pub fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// Whether the first non-blank byte of a line is `{` (the line is read as JSON).
pub fn is_json_line(line: &[u8]) -> bool {
    line.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// The error for a line that is not UTF-8, pointing at the first bad byte.
pub(crate) fn utf8_error(number: usize, line: &[u8], e: std::str::Utf8Error) -> LineError {
    LineError::new(number, Some(column_of(line, e.valid_up_to())), "invalid UTF-8")
}

/// serde_json's message without its ` at line L column C` suffix (the report has its own).
pub(crate) fn json_syntax_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    format!("invalid JSON: {}", text.strip_suffix(&suffix).unwrap_or(&text))
}

/// Reads one non-blank line as a message: JSON when its first non-blank byte is `{` (in the
/// given shape), otherwise plain text with id `number`. `Ok(None)` for a blank line.
pub fn parse_message_line(
    line: &[u8],
    number: usize,
    format: MessageFormat,
) -> Result<Option<Message>, LineError> {
    if is_blank(line) {
        return Ok(None);
    }
    let text = std::str::from_utf8(line).map_err(|e| utf8_error(number, line, e))?;
    if !is_json_line(line) {
        return Ok(Some(Message::new(number.to_string(), text)));
    }
    Message::from_json_with(text, format).map(Some).map_err(|e| match e {
        JsonError::Syntax(s) => {
            // serde_json counts bytes on the line; report code points like every other column.
            let byte = byte_of_column(text, s.column());
            LineError::new(number, Some(column_of(line, byte)), json_syntax_message(&s))
        }
        other => LineError::new(number, None, other.to_string()),
    })
}

/// The byte offset of serde_json's 1-based byte column (clamped to the text).
fn byte_of_column(text: &str, column: usize) -> usize {
    column.saturating_sub(1).min(text.len())
}

/// Counts and reports bad input lines with one policy: the first [`MAX_REPORTED_LINES`] are
/// printed as `FILE:LINE:COLUMN: message`, the rest only counted, and [`BadLines::summary`]
/// says how many there were in all.
///
/// Clones share the count, so a reader on another thread (the engine's source) and the
/// command that prints the summary see the same figures.
#[derive(Clone)]
pub struct BadLines {
    inner: Arc<BadLinesInner>,
}

struct BadLinesInner {
    name: String,
    show: u64,
    count: AtomicU64,
    print: Box<dyn Fn(&str) + Send + Sync>,
}

impl fmt::Debug for BadLines {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BadLines")
            .field("name", &self.inner.name)
            .field("count", &self.count())
            .finish_non_exhaustive()
    }
}

impl BadLines {
    /// Reports the bad lines of the input called `name` (a path, or [`STDIN_NAME`]) through
    /// `print`, one report per call, at most `show` of them.
    pub fn new(
        name: impl Into<String>,
        show: u64,
        print: impl Fn(&str) + Send + Sync + 'static,
    ) -> Self {
        BadLines {
            inner: Arc::new(BadLinesInner {
                name: name.into(),
                show,
                count: AtomicU64::new(0),
                print: Box::new(print),
            }),
        }
    }

    /// Reports to standard error, at most [`MAX_REPORTED_LINES`] lines.
    pub fn to_stderr(name: impl Into<String>) -> Self {
        BadLines::new(name, MAX_REPORTED_LINES, |line| eprintln!("{line}"))
    }

    /// The input's name as reports show it.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Counts one bad line, and prints it while fewer than the cap were printed.
    pub fn report(&self, e: &LineError) {
        let n = self.inner.count.fetch_add(1, Ordering::Relaxed);
        if n < self.inner.show {
            (self.inner.print)(&e.in_file(&self.inner.name).to_string());
        }
    }

    /// How many bad lines were reported.
    pub fn count(&self) -> u64 {
        self.inner.count.load(Ordering::Relaxed)
    }

    /// The closing report, `None` when every line was good: how many lines were skipped, how
    /// many of them were not printed, and a hint when more than half of the `lines` non-blank
    /// lines read were bad (the input is probably not JSON Lines or text at all).
    pub fn summary(&self, lines: u64) -> Option<String> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let mut s = String::new();
        if n > self.inner.show {
            s.push_str(&format!("... {} more bad lines not shown\n", n - self.inner.show));
        }
        let name = &self.inner.name;
        if lines > 0 {
            let were = if n == 1 { "was" } else { "were" };
            s.push_str(&format!("{name}: {n} of {lines} lines {were} bad and skipped"));
        } else {
            let plural = if n == 1 { "" } else { "s" };
            s.push_str(&format!("{name}: {n} bad line{plural} skipped"));
        }
        if lines > 0 && n * 2 > lines {
            s.push_str(" (more than half the input: is it JSON Lines or text?)");
        }
        Some(s)
    }
}

/// Messages read from a corpus file, with the lines that could not be used.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct MessageFile {
    /// The messages, in file order.
    pub messages: Vec<Message>,
    /// How many non-blank lines were skipped as bad.
    pub malformed: usize,
    /// The first few bad lines (at most [`MessageFile::MAX_ERRORS`]) and why.
    pub errors: Vec<LineError>,
}

impl MessageFile {
    /// How many bad lines [`MessageFile::errors`] keeps.
    pub const MAX_ERRORS: usize = MAX_REPORTED_LINES as usize;
}

/// Reads messages from `reader` (the rules of the module documentation), keeping the first
/// few bad lines.
pub fn read_messages_from<R: Read>(reader: R) -> io::Result<MessageFile> {
    let mut out = MessageFile::default();
    let mut lines = LineReader::new(reader);
    while let Some((number, line)) = lines.next_line()? {
        match line.and_then(|l| parse_message_line(l, number, MessageFormat::Auto)) {
            Ok(Some(m)) => out.messages.push(m),
            Ok(None) => {}
            Err(e) => {
                out.malformed += 1;
                if out.errors.len() < MessageFile::MAX_ERRORS {
                    out.errors.push(e);
                }
            }
        }
    }
    Ok(out)
}

/// Parses a message corpus held in memory: JSON Lines, plain text (one message per line, its
/// id the line number) or a mix; bad lines are skipped and counted.
pub fn parse_messages(bytes: &[u8]) -> MessageFile {
    // Reading from a slice cannot fail.
    read_messages_from(bytes).unwrap_or_default()
}

/// Reads a message corpus file (see [`parse_messages`]), reporting skipped lines.
pub fn read_message_file(path: &Path) -> io::Result<MessageFile> {
    read_messages_from(File::open(path)?)
}

/// Reads the messages of a corpus file (see [`parse_messages`]); bad lines are skipped (use
/// [`read_message_file`] to count them).
pub fn read_messages(path: &Path) -> io::Result<Vec<Message>> {
    Ok(read_message_file(path)?.messages)
}

/// Why a rules file could not be read.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReadRulesError {
    /// The file could not be read.
    Io(io::Error),
    /// A line is not UTF-8.
    InvalidUtf8 {
        /// The 1-based line.
        line: usize,
    },
    /// Lines that are not valid rules: every one, in file order.
    Rules(Vec<RulesFileError>),
}

impl fmt::Display for ReadRulesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadRulesError::Io(e) => write!(f, "cannot read the rules: {e}"),
            ReadRulesError::InvalidUtf8 { line } => write!(f, "rule {line}, invalid UTF-8"),
            ReadRulesError::Rules(errors) => {
                match errors.first() {
                    Some(first) => write!(f, "{first}")?,
                    None => write!(f, "invalid rules")?,
                }
                if errors.len() > 1 {
                    write!(f, " (and {} more invalid rules)", errors.len() - 1)?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ReadRulesError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ReadRulesError::Io(e) => Some(e),
            ReadRulesError::Rules(errors) => {
                errors.first().map(|e| e as &(dyn std::error::Error + 'static))
            }
            ReadRulesError::InvalidUtf8 { .. } => None,
        }
    }
}

impl From<io::Error> for ReadRulesError {
    fn from(e: io::Error) -> Self {
        ReadRulesError::Io(e)
    }
}

impl From<ReadRulesError> for io::Error {
    fn from(e: ReadRulesError) -> Self {
        match e {
            ReadRulesError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
        }
    }
}

/// A rules file read whole: its rules, and what looked like a mistake on valid lines.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct RulesFile {
    /// The rules, in file order.
    pub entries: Vec<RuleEntry>,
    /// Warnings about valid lines (e.g. a comma between words of a rule read in the rule
    /// dialect by default, where it is not an OR).
    pub warnings: Vec<RulesFileError>,
}

/// Reads a rules file from `reader`: `{` lines are rule objects ([`crate::rules_file`]), any
/// other non-blank line one rule in `default_dialect` with its line number as id. Unknown
/// keys, repeated keys, repeated ids, lines over [`MAX_LINE_BYTES`] and invalid rules are
/// errors; every bad line is listed.
pub fn read_rules_from<R: Read>(
    reader: R,
    default_dialect: Dialect,
    parser: &Parser,
) -> Result<RulesFile, ReadRulesError> {
    let mut out = RulesFile::default();
    let mut errors = Vec::new();
    let mut first_line: HashMap<String, usize, foldhash::fast::RandomState> = HashMap::default();
    let mut lines = LineReader::new(reader);
    while let Some((number, line)) = lines.next_line()? {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                errors.push(RulesFileError::new(number, e.column, None, e.message));
                continue;
            }
        };
        if is_blank(line) {
            continue;
        }
        let text =
            std::str::from_utf8(line).map_err(|_| ReadRulesError::InvalidUtf8 { line: number })?;
        match parse_rule_line_checked(text, number, default_dialect, parser, &mut out.warnings) {
            Ok(entry) => match first_line.get(&entry.id) {
                Some(&first) => {
                    let column = crate::rules_file::id_column(text);
                    let message = format!("duplicate id (first used on line {first})");
                    errors.push(RulesFileError::new(number, column, Some(entry.id), message));
                }
                None => {
                    first_line.insert(entry.id.clone(), number);
                    out.entries.push(entry);
                }
            },
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(ReadRulesError::Rules(errors))
    }
}

/// Parses a rules file held in memory (see [`read_rules_from`]), rule dialect unless a line
/// says otherwise.
pub fn parse_rules(bytes: &[u8]) -> Result<Vec<RuleEntry>, ReadRulesError> {
    Ok(read_rules_from(bytes, Dialect::Rule, &Parser::new())?.entries)
}

/// Reads a rules file (see [`parse_rules`]).
pub fn read_rules(path: &Path) -> Result<Vec<RuleEntry>, ReadRulesError> {
    Ok(read_rules_from(File::open(path)?, Dialect::Rule, &Parser::new())?.entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(input: &[u8], cap: usize) -> Vec<Result<Vec<u8>, usize>> {
        let mut r = LineReader::new(input).max_line_bytes(cap);
        let mut out = Vec::new();
        while let Some((_, l)) = r.next_line().unwrap() {
            out.push(l.map(<[u8]>::to_vec).map_err(|e| e.line));
        }
        assert_eq!(r.bytes_read(), input.len() as u64);
        out
    }

    #[test]
    fn lines_split_on_lf_and_crlf_and_drop_a_leading_bom() {
        let got = lines_of(b"\xEF\xBB\xBFa\r\nb\n\nc", 100);
        assert_eq!(got, [Ok(b"a".to_vec()), Ok(b"b".to_vec()), Ok(vec![]), Ok(b"c".to_vec())]);
    }

    #[test]
    fn overlong_lines_are_skipped_whole_and_numbered() {
        let input = format!("{}\nshort\n{}", "x".repeat(20), "y".repeat(11));
        let got = lines_of(input.as_bytes(), 10);
        assert_eq!(got, [Err(1), Ok(b"short".to_vec()), Err(3)]);
        // Exactly at the cap is accepted, with or without the line feed.
        assert_eq!(lines_of(b"0123456789\n0123456789", 10).len(), 2);
        assert!(lines_of(b"0123456789\n0123456789", 10).iter().all(Result::is_ok));
    }

    #[test]
    fn message_lines_are_json_or_text_and_errors_carry_columns() {
        let m = parse_message_line(b"hello world", 4, MessageFormat::Auto).unwrap().unwrap();
        assert_eq!((m.id.as_str(), m.text.as_str()), ("4", "hello world"));
        assert_eq!(parse_message_line(b"  ", 1, MessageFormat::Auto), Ok(None));
        let e = parse_message_line(b"{\"id\":1,\"text\":}", 3, MessageFormat::Auto).unwrap_err();
        assert_eq!((e.line, e.column), (3, Some(16)));
        assert_eq!(
            e.in_file("in.jsonl").to_string(),
            "in.jsonl:3:16: invalid JSON: expected value"
        );
        let e = parse_message_line("é\u{1}x\u{ff}".as_bytes(), 2, MessageFormat::Auto);
        assert!(e.is_ok());
        let e = parse_message_line(b"ab\xffc", 2, MessageFormat::Auto).unwrap_err();
        assert_eq!(e.to_string(), "line 2, column 3: invalid UTF-8");
    }

    #[test]
    fn bad_lines_print_at_most_the_cap_and_sum_up() {
        let printed = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = printed.clone();
        let bad = BadLines::new("in", 2, move |l| sink.lock().unwrap().push(l.to_string()));
        assert_eq!(bad.summary(5), None);
        for line in 1..=5 {
            bad.clone().report(&LineError::new(line, Some(1), "bad"));
        }
        assert_eq!(*printed.lock().unwrap(), ["in:1:1: bad", "in:2:1: bad"]);
        assert_eq!(
            bad.summary(6).unwrap(),
            "... 3 more bad lines not shown\n\
             in: 5 of 6 lines were bad and skipped (more than half the input: is it JSON Lines or text?)"
        );
        assert_eq!(
            bad.summary(100).unwrap().lines().last(),
            Some("in: 5 of 100 lines were bad and skipped")
        );
    }
}
