//! Small pieces shared by the commands: number formats, sizes, the dialect option, and the
//! input side of `match` and `run` (opening the input, reading rules, the bad-line option).

use std::io::{self, IsTerminal, Read};
use std::path::Path;
use std::process::ExitCode;
use streamtrack::read::{read_rules_from, ReadRulesError, MAX_REPORTED_LINES, STDIN_NAME};
use streamtrack::rule::{Dialect, Parser};
use streamtrack::rules_file::RuleEntry;

/// `1234567` as `1,234,567`.
pub fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A count such as `100k` or `1m` (also `2.5k`); `None` for anything else or zero.
pub fn parse_count(s: &str) -> Option<usize> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mul) = if let Some(n) = s.strip_suffix('k') {
        (n, 1_000.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 1_000_000.0)
    } else {
        (s.as_str(), 1.0)
    };
    num.parse::<f64>().ok().filter(|n| *n > 0.0).map(|n| (n * mul) as usize)
}

/// The `--dialect` option of the commands that read rules files.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum DialectArg {
    /// Twitter v1.1 `track` values: `a b,c` is (a AND b) OR c.
    Track,
    /// PowerTrack / API v2 rules (the default): `a b OR c`; a comma is not an operator.
    Rule,
}

impl From<DialectArg> for streamtrack::Dialect {
    fn from(d: DialectArg) -> Self {
        match d {
            DialectArg::Track => streamtrack::Dialect::Track,
            DialectArg::Rule => streamtrack::Dialect::Rule,
        }
    }
}

/// The bad-input options `match` and `run` share (one policy for both).
#[derive(clap::Args, Clone, Copy, Debug, Default)]
pub struct BadLineArgs {
    /// Exit with status 1 if any input line was bad (invalid JSON or UTF-8, no text, longer
    /// than 16 MiB). Without it bad lines are reported (the first 10), counted, skipped.
    #[arg(long)]
    pub strict: bool,
}

/// An input opened for reading: standard input or a file.
pub struct Input {
    /// The raw reader (the line reader buffers it).
    pub reader: Box<dyn Read + Send>,
    /// The name reports give it: the path, or `<stdin>`.
    pub name: String,
    /// Whether it is a stream (a pipe, FIFO, socket or terminal) rather than a regular file:
    /// output then goes out message by message.
    pub live: bool,
    /// Its length when it is a regular file.
    pub len: Option<u64>,
}

/// Whether a file type is a stream rather than a regular file.
fn is_stream(meta: &std::fs::Metadata) -> bool {
    !meta.file_type().is_file()
}

/// Whether standard input is a terminal, pipe, FIFO or socket.
fn stdin_is_stream() -> bool {
    if io::stdin().is_terminal() {
        return true;
    }
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        if let Ok(fd) = io::stdin().as_fd().try_clone_to_owned() {
            if let Ok(meta) = std::fs::File::from(fd).metadata() {
                return is_stream(&meta);
            }
        }
    }
    // Unknown: flushing per message is the safe choice for a live filter.
    true
}

/// Opens the input named on the command line (standard input when absent or `-`); an input
/// that cannot be opened is reported and gives exit status 1.
pub fn open_input(path: Option<&Path>) -> Result<Input, ExitCode> {
    match path {
        None => Ok(stdin_input()),
        Some(p) if p.as_os_str() == "-" => Ok(stdin_input()),
        Some(p) => {
            let file = std::fs::File::open(p).map_err(|e| {
                eprintln!("error: cannot read {}: {e}", p.display());
                ExitCode::from(1)
            })?;
            let meta = file.metadata().ok();
            Ok(Input {
                reader: Box::new(file),
                name: p.display().to_string(),
                live: meta.as_ref().is_none_or(is_stream),
                len: meta.filter(|m| m.is_file()).map(|m| m.len()),
            })
        }
    }
}

fn stdin_input() -> Input {
    Input {
        reader: Box::new(io::stdin()),
        name: STDIN_NAME.to_string(),
        live: stdin_is_stream(),
        len: None,
    }
}

/// Reads a rules file with the one policy of every command: every bad line is reported as
/// `FILE:LINE:COLUMN: …` (the first 10) and the file is refused with exit status 2, as is a
/// file that cannot be read or holds no rules; warnings are printed and the rules used.
pub fn load_rules(path: &Path, dialect: Dialect) -> Result<Vec<RuleEntry>, ExitCode> {
    load_rules_with_progress(path, dialect, &mut |_, _| {})
}

/// [`load_rules`], calling `progress(bytes read, file length)` as the file is read.
pub fn load_rules_with_progress(
    path: &Path,
    dialect: Dialect,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Vec<RuleEntry>, ExitCode> {
    let name = path.display().to_string();
    let fail = |message: String| {
        eprintln!("{message}");
        ExitCode::from(2)
    };
    let file = std::fs::File::open(path)
        .map_err(|e| fail(format!("error: cannot read rules {name}: {e}")))?;
    let len = file.metadata().map_or(0, |m| m.len());
    let file = CountingReader { inner: file, read: 0, len, progress };
    match read_rules_from(file, dialect, &Parser::new()) {
        Ok(rules) => {
            for w in &rules.warnings {
                eprintln!("{}", w.in_file(&name));
            }
            if rules.entries.is_empty() {
                return Err(fail(format!("error: {name} holds no rules")));
            }
            Ok(rules.entries)
        }
        Err(ReadRulesError::Rules(errors)) => {
            for e in errors.iter().take(MAX_REPORTED_LINES as usize) {
                eprintln!("{}", e.in_file(&name));
            }
            let n = errors.len();
            if n > MAX_REPORTED_LINES as usize {
                eprintln!("... {} more bad rule lines not shown", n - MAX_REPORTED_LINES as usize);
            }
            let s = if n == 1 { "" } else { "s" };
            Err(fail(format!("{name}: {n} bad rule line{s}; no input was read")))
        }
        Err(ReadRulesError::InvalidUtf8 { line }) => {
            Err(fail(format!("{name}:{line}: invalid UTF-8; no input was read")))
        }
        Err(e) => Err(fail(format!("error: cannot read rules {name}: {e}"))),
    }
}

/// A reader that reports how much of it was read.
struct CountingReader<'a, R> {
    inner: R,
    read: u64,
    len: u64,
    progress: &'a mut dyn FnMut(u64, u64),
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        (self.progress)(self.read, self.len.max(self.read));
        Ok(n)
    }
}
