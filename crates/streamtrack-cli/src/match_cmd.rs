//! `streamtrack match`: a stable, scriptable contract (see README).

use crate::format::{self, BadLineArgs, DialectArg};
use clap::{Args, ValueEnum};
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use streamtrack::matcher::{Matcher, Scratch};
use streamtrack::message::MessageFormat;
use streamtrack::normalize::NormalizedMessage;
use streamtrack::read::{parse_message_line, BadLines, LineReader};
use streamtrack::reference::ReferenceMatcher;
use streamtrack::rule::{Dialect, Parser};
use streamtrack::rules_file::RuleEntry;
use streamtrack::Message;

#[derive(Clone, Copy, ValueEnum, Default)]
pub enum EngineArg {
    /// The compiled matcher (presearch index and verification).
    #[default]
    Compiled,
    /// The reference matcher (the rule-language reference, rule by rule).
    Reference,
}

/// The options of `match` (its exit statuses are in `main.rs`'s `INPUT_HELP`).
#[derive(Args)]
pub struct MatchArgs {
    /// Rules, one per line: {"id": …, "value": …, "tag": …, "dialect": "track"|"rule"} (any other
    /// key is an error; ids must be unique), or a bare rule whose id is its line number.
    #[arg(long)]
    rules: Option<PathBuf>,
    /// A track value to add as one rule with id `track` (e.g. "nintendo,wii fit").
    #[arg(long)]
    track: Option<String>,
    /// Dialect of rules that do not name one. In the default, `rule`, a comma is not an OR:
    /// `nintendo,wii fit` needs all three words (a warning says so); use `track` for OR lists.
    #[arg(long, value_enum, default_value = "rule")]
    dialect: DialectArg,
    /// Also print messages that match nothing (with an empty list).
    #[arg(long)]
    all: bool,
    /// Which matcher to use.
    #[arg(long, value_enum, default_value = "compiled")]
    engine: EngineArg,
    /// Write each matching message out at once, even to a file or pipe. This is already the
    /// default when the input is a pipe, FIFO, socket or terminal (a live filter such as
    /// `tail -f posts | streamtrack match …`); a regular input file is written in blocks.
    #[arg(long)]
    line_buffered: bool,
    #[command(flatten)]
    bad_lines: BadLineArgs,
    /// Messages, one per line: JSON (any line starting with `{`) or plain text (id: the line
    /// number); standard input when omitted or `-`.
    input: Option<PathBuf>,
}

fn load_rules(args: &MatchArgs) -> Result<Vec<RuleEntry>, ExitCode> {
    let mut entries = Vec::new();
    if let Some(path) = &args.rules {
        entries = format::load_rules(path, args.dialect.into())?;
    }
    if let Some(track) = &args.track {
        if let Some(e) = entries.iter().find(|e| e.id == "track") {
            let file = args.rules.as_deref().unwrap_or(std::path::Path::new("")).display();
            eprintln!("error: --track adds the id \"track\", already used on {file}:{}", e.line);
            return Err(ExitCode::from(2));
        }
        match Parser::new().parse(track, Dialect::Track) {
            Ok(rule) => entries.push(RuleEntry::new("track", None, None, track.clone(), rule, 0)),
            Err(e) => {
                eprintln!("error: --track: {e}");
                return Err(ExitCode::from(2));
            }
        }
    }
    if entries.is_empty() {
        eprintln!("error: no rules: give --rules FILE or --track VALUE");
        return Err(ExitCode::from(2));
    }
    Ok(entries)
}

/// The output line for a matched message: a JSON input line with `"matching_rules"` appended,
/// leaving every input byte as it was; a plain-text line as a JSON object.
fn with_matching_rules(line: &str, msg: &Message, rules: &[&RuleEntry]) -> String {
    let list: Vec<serde_json::Value> = rules
        .iter()
        .map(|r| {
            let mut o = serde_json::Map::new();
            o.insert("id".into(), r.id.clone().into());
            if let Some(tag) = &r.tag {
                o.insert("tag".into(), tag.clone().into());
            }
            serde_json::Value::Object(o)
        })
        .collect();
    let list_text = serde_json::Value::Array(list.clone()).to_string();
    if let Some(source) = &msg.source {
        let trimmed = line.trim_end();
        if !source.contains_key("matching_rules") {
            if let Some(body) = trimmed.strip_suffix('}') {
                let body_trim = body.trim_end();
                let sep = if body_trim.ends_with('{') { "" } else { "," };
                return format!("{body_trim}{sep}\"matching_rules\":{list_text}}}");
            }
        }
    }
    let mut obj = match &msg.source {
        Some(source) => (**source).clone(),
        None => match msg.to_json_value() {
            serde_json::Value::Object(o) => o,
            _ => serde_json::Map::new(),
        },
    };
    obj.insert("matching_rules".into(), serde_json::Value::Array(list));
    serde_json::Value::Object(obj).to_string()
}

pub fn run(args: MatchArgs) -> ExitCode {
    let entries = match load_rules(&args) {
        Ok(e) => e,
        Err(code) => return code,
    };
    let input = match format::open_input(args.input.as_deref()) {
        Ok(i) => i,
        Err(code) => return code,
    };
    let line_buffered = args.line_buffered || input.live;
    let bad = BadLines::to_stderr(input.name.clone());
    let rules: Vec<_> = entries.iter().map(|e| e.rule.clone()).collect();
    let compiled = matches!(args.engine, EngineArg::Compiled).then(|| Matcher::new(&rules));
    let reference = ReferenceMatcher::new(rules);
    let mut scratch = Scratch::new();
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut norm = NormalizedMessage::new();
    let mut lines = LineReader::new(input.reader);
    let mut good = 0u64;
    loop {
        let (number, line) = match lines.next_line() {
            Ok(Some(l)) => l,
            Ok(None) => break,
            Err(e) => {
                let _ = out.flush();
                eprintln!("error: reading {}: {e}", input.name);
                return ExitCode::from(1);
            }
        };
        let parsed =
            line.and_then(|l| Ok((l, parse_message_line(l, number, MessageFormat::Auto)?)));
        let (line, msg) = match parsed {
            Ok((l, Some(m))) => (l, m),
            Ok((_, None)) => continue,
            Err(e) => {
                bad.report(&e);
                continue;
            }
        };
        good += 1;
        let hits: Vec<&RuleEntry> = match &compiled {
            Some(m) => m.find(&msg, &mut scratch).iter().map(|&i| &entries[i as usize]).collect(),
            None => {
                norm.prepare_reference(&msg);
                reference.matching_prepared(&norm).into_iter().map(|i| &entries[i]).collect()
            }
        };
        if hits.is_empty() && !args.all {
            continue;
        }
        // The line was UTF-8 (the message was read from it).
        let text = std::str::from_utf8(line).unwrap_or_default();
        let written = writeln!(out, "{}", with_matching_rules(text, &msg, &hits));
        if written.and_then(|()| if line_buffered { out.flush() } else { Ok(()) }).is_err() {
            // A closed pipe (e.g. `| head`) ends the run quietly.
            return ExitCode::SUCCESS;
        }
    }
    if out.flush().is_err() {
        return ExitCode::SUCCESS;
    }
    if let Some(summary) = bad.summary(good + bad.count()) {
        eprintln!("{summary}");
    }
    if args.bad_lines.strict && bad.count() > 0 {
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
