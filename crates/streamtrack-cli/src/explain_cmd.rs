//! `streamtrack explain`: why a rule matches a message or not, as a tree mirroring the rule.

use crate::format::DialectArg;
use clap::Args;
use std::io::{self, BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use streamtrack::explain::explain;
use streamtrack::rule::Parser;
use streamtrack::Message;

#[derive(Args)]
pub struct ExplainArgs {
    /// The rule to explain.
    #[arg(long)]
    rule: String,
    /// The rule's dialect.
    #[arg(long, value_enum, default_value = "rule")]
    dialect: DialectArg,
    /// Print each explanation as one JSON object (`matched`, `reason`, `tree`).
    #[arg(long)]
    json: bool,
    /// Messages as JSON Lines, one explanation each (`-` for standard input).
    #[arg(long, conflicts_with = "message")]
    input: Option<PathBuf>,
    /// One message as JSON (e.g. '{"id":"1","text":"I ate apple pie"}').
    message: Option<String>,
}

/// Exit status: 0 when every message matched, 1 when one did not, 2 for invalid arguments.
pub fn run(args: ExplainArgs) -> ExitCode {
    let rule = match Parser::new().parse(&args.rule, args.dialect.into()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: --rule: {e}");
            return ExitCode::from(2);
        }
    };
    let lines: Vec<String> = match (&args.message, &args.input) {
        (Some(m), _) => vec![m.clone()],
        (None, input) => {
            let reader: Box<dyn BufRead> = match input {
                Some(p) if p.as_os_str() != "-" => match std::fs::File::open(p) {
                    Ok(f) => Box::new(io::BufReader::new(f)),
                    Err(e) => {
                        eprintln!("error: cannot read {}: {e}", p.display());
                        return ExitCode::from(2);
                    }
                },
                _ => Box::new(io::stdin().lock()),
            };
            match reader.lines().collect() {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("error: reading the messages: {e}");
                    return ExitCode::from(2);
                }
            }
        }
    };
    let mut out = io::stdout().lock();
    let mut all = true;
    for (i, line) in lines.iter().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let msg = match Message::from_json(line) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("error: message {}: {e}", i + 1);
                return ExitCode::from(2);
            }
        };
        let e = explain(&rule, &msg);
        all &= e.matched;
        let written = if args.json {
            serde_json::to_string(&e).map_err(io::Error::other).and_then(|s| writeln!(out, "{s}"))
        } else {
            writeln!(out, "message {}: {e}", msg.id)
        };
        if written.is_err() {
            return ExitCode::from(4);
        }
    }
    if all {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
