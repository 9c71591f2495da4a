//! `streamtrack dry-run`: what rules would match over a file of messages, without running
//! anything (the compiled matcher, one pass over the messages).

use crate::format::{group, DialectArg};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;
use streamtrack::dry_run::DryRun;
use streamtrack::rule::Parser;
use streamtrack::rules_file::parse_rules_file;
use streamtrack::Message;

#[derive(Args)]
pub struct DryRunArgs {
    /// Rules, one JSON object per line: {"id": …, "value": …, "dialect": "track"|"rule"}.
    /// Every invalid rule is reported (line and column); nothing runs then.
    #[arg(long)]
    rules: PathBuf,
    /// Dialect of rules that do not name one.
    #[arg(long, value_enum, default_value = "rule")]
    dialect: DialectArg,
    /// Messages as JSON Lines (`-` for standard input).
    #[arg(long)]
    input: PathBuf,
    /// Message ids kept as a sample per rule.
    #[arg(long, default_value_t = 3)]
    sample: usize,
    /// Print one JSON object: {"messages": N, "seconds": S, "rules": [{"id", "would_match",
    /// "share", "sample"}]}.
    #[arg(long)]
    json: bool,
}

pub fn run(args: DryRunArgs) -> ExitCode {
    let text = match std::fs::read_to_string(&args.rules) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read rules {}: {e}", args.rules.display());
            return ExitCode::from(2);
        }
    };
    let entries = match parse_rules_file(&text, args.dialect.into(), &Parser::new()) {
        Ok(e) => e,
        Err(errors) => {
            for e in &errors {
                eprintln!("error: {}: {e}", args.rules.display());
            }
            eprintln!("{} invalid rule(s); nothing was run", errors.len());
            return ExitCode::from(2);
        }
    };
    let rules: Vec<_> = entries.iter().map(|e| e.rule.clone()).collect();
    let (reader, total): (Box<dyn BufRead>, Option<u64>) = if args.input.as_os_str() == "-" {
        (Box::new(io::stdin().lock()), None)
    } else {
        match std::fs::File::open(&args.input) {
            Ok(f) => {
                let len = f.metadata().map(|m| m.len()).ok();
                (Box::new(io::BufReader::with_capacity(1 << 16, f)), len)
            }
            Err(e) => {
                eprintln!("error: cannot read {}: {e}", args.input.display());
                return ExitCode::from(1);
            }
        }
    };
    let bar = if io::stderr().is_terminal() {
        let b = ProgressBar::new(total.unwrap_or(0));
        let style = if total.is_some() {
            "{bar:30} {bytes}/{total_bytes} {msg}"
        } else {
            "{spinner} {bytes} {msg}"
        };
        b.set_style(ProgressStyle::with_template(style).expect("a valid template"));
        Some(b)
    } else {
        None
    };
    let start = Instant::now();
    let mut run = DryRun::new(&rules, args.sample);
    let (mut bad, mut n) = (0u64, 0u64);
    for line in reader.split(b'\n') {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: reading {}: {e}", args.input.display());
                return ExitCode::from(1);
            }
        };
        n += 1;
        if let Some(b) = &bar {
            b.inc(line.len() as u64 + 1);
            if n.is_multiple_of(65_536) {
                b.set_message(format!("{} messages", group(n)));
            }
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match Message::from_json_bytes(&line) {
            Ok(m) => run.feed(&m),
            Err(_) => bad += 1,
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let seconds = start.elapsed().as_secs_f64();
    let report = run.report();
    if bad > 0 {
        eprintln!("warning: {bad} line(s) were not messages; skipped");
    }
    let mut out = io::stdout().lock();
    let written = if args.json {
        let rules: Vec<serde_json::Value> = entries
            .iter()
            .zip(&report.rules)
            .map(|(e, r)| {
                serde_json::json!({
                    "id": e.id, "value": e.value, "would_match": r.matches,
                    "share": r.share, "sample": r.sample,
                })
            })
            .collect();
        let o =
            serde_json::json!({"messages": report.messages, "seconds": seconds, "rules": rules});
        writeln!(out, "{o}")
    } else {
        let mut s = format!(
            "{} messages, {} rules, {seconds:.2} s\n",
            group(report.messages),
            group(rules.len() as u64)
        );
        for (e, r) in entries.iter().zip(&report.rules) {
            s += &format!(
                "{:>12}  {:>6.2}%  {}  {}  sample: {}\n",
                group(r.matches),
                r.share * 100.0,
                e.id,
                e.value,
                r.sample.join(", ")
            );
        }
        out.write_all(s.as_bytes())
    };
    if written.is_err() {
        return ExitCode::from(4);
    }
    ExitCode::SUCCESS
}
