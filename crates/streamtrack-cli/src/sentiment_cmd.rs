//! `streamtrack sentiment`: each JSON Lines message out unchanged plus its `"reaction"`.

use clap::Args;
use std::io::{self, BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use streamtrack::analytics::{LanguageScorers, Lexicon, Reaction, SentimentScorer};
use streamtrack::Message;

#[derive(Args)]
pub struct SentimentArgs {
    /// A lexicon to use instead of the built-in VADER one: VADER's format (`token TAB valence`)
    /// or Pattern's TSV (with its `form pos polarity ...` header).
    #[arg(long)]
    lexicon: Option<PathBuf>,
    /// A lexicon for the messages of one language, as `LANG=FILE` (e.g.
    /// `fr=pattern_sentiment_fr.tsv`); repeatable. Chosen by the primary subtag of `lang`.
    #[arg(long = "lang-lexicon", value_name = "LANG=FILE")]
    lang_lexicons: Vec<String>,
    /// Score exactly as the Python package vaderSentiment 3.3.2 (none of the documented fixes).
    #[arg(long)]
    python_compatible: bool,
    /// Messages as JSON Lines (any message shape); standard input when omitted or `-`.
    input: Option<PathBuf>,
}

fn load(path: &Path, python_compatible: bool) -> Result<SentimentScorer, ExitCode> {
    match Lexicon::from_file(path) {
        Ok(l) => {
            let s = SentimentScorer::with_lexicon(Arc::new(l));
            Ok(if python_compatible {
                s.with_fixes(SentimentScorer::python_compatible().fixes())
            } else {
                s
            })
        }
        Err(e) => {
            eprintln!("error: lexicon {}: {e}", path.display());
            Err(ExitCode::from(2))
        }
    }
}

fn scorers(args: &SentimentArgs) -> Result<LanguageScorers, ExitCode> {
    let default = match &args.lexicon {
        Some(p) => load(p, args.python_compatible)?,
        None if args.python_compatible => SentimentScorer::python_compatible(),
        None => SentimentScorer::new(),
    };
    let mut s = LanguageScorers::new(default);
    for spec in &args.lang_lexicons {
        let Some((lang, file)) =
            spec.split_once('=').filter(|(l, f)| !l.is_empty() && !f.is_empty())
        else {
            eprintln!("error: --lang-lexicon {spec:?}: expected LANG=FILE");
            return Err(ExitCode::from(2));
        };
        s = s.with_language(lang, load(Path::new(file), args.python_compatible)?);
    }
    Ok(s)
}

/// The input line with `"reaction"` appended, every input byte kept as it was (the object is
/// rebuilt only when it already has a `reaction` key, which is then replaced).
pub fn with_reaction(line: &str, msg: &Message, r: &Reaction) -> String {
    let json = r.to_json();
    let has_key = msg.source.as_ref().is_some_and(|m| m.contains_key("reaction"));
    let trimmed = line.trim_end();
    if !has_key {
        if let Some(body) = trimmed.strip_suffix('}') {
            let body_trim = body.trim_end();
            let sep = if body_trim.ends_with('{') { "" } else { "," };
            return format!("{body_trim}{sep}\"reaction\":{json}}}");
        }
    }
    let mut obj = msg.source.as_deref().cloned().unwrap_or_default();
    obj.insert("reaction".into(), json);
    serde_json::Value::Object(obj).to_string()
}

pub fn run(args: SentimentArgs) -> ExitCode {
    let scorers = match scorers(&args) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let mut reader: Box<dyn BufRead> = match &args.input {
        None => Box::new(io::stdin().lock()),
        Some(p) if p.as_os_str() == "-" => Box::new(io::stdin().lock()),
        Some(p) => match std::fs::File::open(p) {
            Ok(f) => Box::new(io::BufReader::new(f)),
            Err(e) => {
                eprintln!("error: cannot read {}: {e}", p.display());
                return ExitCode::from(1);
            }
        },
    };
    let mut out = BufWriter::new(io::stdout().lock());
    let (mut buf, mut line_no, mut skipped) = (Vec::new(), 0usize, 0usize);
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                eprintln!("error: reading input: {e}");
                return ExitCode::from(1);
            }
        }
        line_no += 1;
        let line = match std::str::from_utf8(&buf) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("input line {line_no}: invalid UTF-8 ({e}); skipped");
                skipped += 1;
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        let msg = match Message::from_json(line) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("input line {line_no}: {e}; skipped");
                skipped += 1;
                continue;
            }
        };
        let r = scorers.score_message(&msg);
        if writeln!(out, "{}", with_reaction(line, &msg, &r)).is_err() {
            return ExitCode::SUCCESS; // closed pipe
        }
    }
    if out.flush().is_err() {
        return ExitCode::SUCCESS;
    }
    if skipped > 0 {
        eprintln!("{skipped} malformed input line(s) skipped");
    }
    ExitCode::SUCCESS
}
