//! `streamtrack match`: a stable, scriptable contract (see README).

use crate::format::DialectArg;
use clap::{Args, ValueEnum};
use std::io::{self, BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use streamtrack::matcher::{Matcher, Scratch};
use streamtrack::normalize::NormalizedMessage;
use streamtrack::reference::ReferenceMatcher;
use streamtrack::rule::{Dialect, Parser};
use streamtrack::rules_file::{parse_rules_file, RuleEntry};
use streamtrack::Message;

#[derive(Clone, Copy, ValueEnum, Default)]
pub enum EngineArg {
    /// The compiled matcher (presearch index and verification).
    #[default]
    Compiled,
    /// The reference matcher (the rule-language reference, rule by rule).
    Reference,
}

#[derive(Args)]
pub struct MatchArgs {
    /// Rules, one JSON object per line: {"id": …, "value": …, "tag": …, "dialect": "track"|"rule"}.
    #[arg(long)]
    rules: Option<PathBuf>,
    /// A track value to add as one rule with id `track` (e.g. "nintendo,wii fit").
    #[arg(long)]
    track: Option<String>,
    /// Dialect of rules that do not name one.
    #[arg(long, value_enum, default_value = "rule")]
    dialect: DialectArg,
    /// Also print messages that match nothing (with an empty list).
    #[arg(long)]
    all: bool,
    /// Which matcher to use.
    #[arg(long, value_enum, default_value = "compiled")]
    engine: EngineArg,
    /// Messages as JSON Lines; standard input when omitted or `-`.
    input: Option<PathBuf>,
}

fn load_rules(args: &MatchArgs) -> Result<Vec<RuleEntry>, ExitCode> {
    let parser = Parser::new();
    let default_dialect = match args.dialect {
        DialectArg::Track => Dialect::Track,
        DialectArg::Rule => Dialect::Rule,
    };
    let mut entries = Vec::new();
    if let Some(path) = &args.rules {
        let text = std::fs::read_to_string(path).map_err(|e| {
            eprintln!("error: cannot read rules {}: {e}", path.display());
            ExitCode::from(2)
        })?;
        match parse_rules_file(&text, default_dialect, &parser) {
            Ok(e) => entries = e,
            Err(errors) => {
                for e in &errors {
                    eprintln!("error: {}: {e}", path.display());
                }
                eprintln!("{} invalid rule(s); nothing was matched", errors.len());
                return Err(ExitCode::from(2));
            }
        }
    }
    if let Some(track) = &args.track {
        match parser.parse(track, Dialect::Track) {
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

/// The input line with `"matching_rules"` appended, leaving every input byte as it was.
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
    let has_key = msg.source.as_ref().is_some_and(|m| m.contains_key("matching_rules"));
    let trimmed = line.trim_end();
    if !has_key {
        if let Some(body) = trimmed.strip_suffix('}') {
            let body_trim = body.trim_end();
            let sep = if body_trim.ends_with('{') { "" } else { "," };
            return format!("{body_trim}{sep}\"matching_rules\":{list_text}}}");
        }
    }
    let mut obj = msg.source.as_deref().cloned().unwrap_or_default();
    obj.insert("matching_rules".into(), serde_json::Value::Array(list));
    serde_json::Value::Object(obj).to_string()
}

pub fn run(args: MatchArgs) -> ExitCode {
    let entries = match load_rules(&args) {
        Ok(e) => e,
        Err(code) => return code,
    };
    let reader: Box<dyn BufRead> = match &args.input {
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
    let rules: Vec<_> = entries.iter().map(|e| e.rule.clone()).collect();
    let compiled = matches!(args.engine, EngineArg::Compiled).then(|| Matcher::new(&rules));
    let reference = ReferenceMatcher::new(rules);
    let mut scratch = Scratch::new();
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut norm = NormalizedMessage::new();
    let mut skipped = 0usize;
    let mut buf = Vec::new();
    let mut reader = reader;
    let mut line_no = 0usize;
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
        if writeln!(out, "{}", with_matching_rules(line, &msg, &hits)).is_err() {
            // A closed pipe (e.g. `| head`) ends the run quietly.
            return ExitCode::SUCCESS;
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
