//! `streamtrack bursts`: the online burst detector over a `timestamp,value` counts series.

use clap::Args;
use std::io::{self, BufRead, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use streamtrack::analytics::{BurstConfig, BurstDetector, BurstEvent, Sensitivity};
use streamtrack::message::time::parse_timestamp;

#[derive(Args)]
pub struct BurstsArgs {
    /// low, medium, high, or a number in (0, 1) (higher is more sensitive; 0.5 is medium).
    #[arg(long, default_value = "medium")]
    sensitivity: String,
    /// Seasonal baseline: the period in rows (e.g. 24 for hourly rows and daily seasons).
    #[arg(long)]
    season: Option<u32>,
    /// One JSON object per row: {"timestamp", "value", "score", "burst"}.
    #[arg(long)]
    json: bool,
    /// CSV with the header `timestamp,value`, one row per bucket (RFC 3339 or
    /// `YYYY-MM-DD HH:MM:SS`, UTC); `-` for standard input.
    input: PathBuf,
}

/// One data row, or why it is bad.
fn parse_row(line: &str) -> Result<(&str, f64), String> {
    let (ts, value) =
        line.split_once(',').ok_or("expected two fields, `timestamp,value`".to_string())?;
    if value.contains(',') {
        return Err("expected two fields, `timestamp,value`, found more".into());
    }
    let ts = ts.trim().trim_matches('"');
    parse_timestamp(ts).map_err(|e| format!("timestamp {ts:?}: {e}"))?;
    let v = value.trim().trim_matches('"');
    match v.parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 => Ok((ts, x)),
        _ => Err(format!("value {v:?}: expected a count (a number >= 0)")),
    }
}

pub fn run(args: BurstsArgs) -> ExitCode {
    let sensitivity: Sensitivity = match args.sensitivity.parse() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: --sensitivity: {e}");
            return ExitCode::from(2);
        }
    };
    let name = args.input.display().to_string();
    let reader: Box<dyn BufRead> = if args.input.as_os_str() == "-" {
        Box::new(io::stdin().lock())
    } else {
        match std::fs::File::open(&args.input) {
            Ok(f) => Box::new(io::BufReader::new(f)),
            Err(e) => {
                eprintln!("error: cannot read {name}: {e}");
                return ExitCode::from(1);
            }
        }
    };
    let mut cfg = BurstConfig::default().with_sensitivity(sensitivity);
    if let Some(p) = args.season {
        cfg = cfg.with_season(p);
    }
    let mut det = BurstDetector::new(cfg);
    let mut out = BufWriter::new(io::stdout().lock());
    let mut header_seen = false;
    let mut last_ts: Option<i64> = None;
    for (n, line) in reader.lines().enumerate() {
        let line_no = n + 1;
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: {name} line {line_no}: {e}");
                return ExitCode::from(2);
            }
        };
        let line = line.strip_prefix('\u{feff}').unwrap_or(&line).trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        if !header_seen {
            let h: Vec<String> =
                line.split(',').map(|f| f.trim().trim_matches('"').to_ascii_lowercase()).collect();
            if h != ["timestamp", "value"] {
                eprintln!("error: {name} line {line_no}: expected the header `timestamp,value`, found {line:?}");
                return ExitCode::from(2);
            }
            header_seen = true;
            // The table's header once the input's is known good: a refused input prints
            // nothing on standard output.
            if !args.json {
                let _ = writeln!(
                    out,
                    "{:<26} {:>10} {:>10} {:>6}  burst",
                    "timestamp", "value", "expected", "score"
                );
            }
            continue;
        }
        let (ts, value) = match parse_row(line) {
            Ok(r) => r,
            Err(e) => {
                let _ = out.flush();
                eprintln!("error: {name} line {line_no}: {e}");
                return ExitCode::from(2);
            }
        };
        let ms = parse_timestamp(ts).unwrap_or_default();
        // One row per bucket, in time order: a row at or before the last one is refused
        // (read as the next bucket, a repeated time would shift every later bucket by one).
        if let Some(t) = last_ts.filter(|&t| ms <= t) {
            let _ = out.flush();
            let what = if ms == t { "repeats the time of" } else { "is earlier than" };
            eprintln!("error: {name} line {line_no}: timestamp {ts:?} {what} the row before (one row per bucket)");
            return ExitCode::from(2);
        }
        last_ts = Some(ms);
        let step = det.push(value);
        let score = (step.score * 1e4).round() / 1e4;
        let ok = if args.json {
            let v = if value.fract() == 0.0 && value < 9.0e15 {
                serde_json::Value::from(value as u64)
            } else {
                serde_json::Value::from(value)
            };
            let o = serde_json::json!({"timestamp": ts, "value": v, "score": score, "burst": step.burst});
            writeln!(out, "{o}")
        } else {
            let mark = match step.event {
                Some(BurstEvent::Start) => "START",
                Some(BurstEvent::End) => "end",
                None if step.burst => "*",
                None => "",
            };
            writeln!(out, "{ts:<26} {value:>10} {:>10.1} {score:>6.3}  {mark}", step.expected)
        };
        if ok.is_err() {
            return ExitCode::SUCCESS; // closed pipe
        }
    }
    if !header_seen {
        eprintln!("error: {name} line 1: expected the header `timestamp,value`, found nothing");
        return ExitCode::from(2);
    }
    let _ = out.flush();
    ExitCode::SUCCESS
}
