//! The input of `serve`: JSON Lines from a file or standard input, replayed at the messages'
//! own timestamps times a speed, or as fast as possible, or live as lines arrive.

use crate::view::View;
use crossbeam_channel::Sender;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use streamtrack::message::MessageFormat;
use streamtrack::read::{parse_message_line, LineReader};
use streamtrack::Message;

/// Where messages come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Input {
    /// Standard input, read live (each line as it arrives).
    Stdin,
    /// A JSON Lines file.
    File(PathBuf),
}

/// What the reader did, once the input ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FeedReport {
    /// Messages handed to the engine.
    pub messages: u64,
    /// Lines skipped as malformed.
    pub bad_lines: u64,
}

/// Paces messages by their timestamps: message `t` is due at `start + (t - t0) / speed`.
#[derive(Debug)]
pub struct Pacer {
    speed: Option<f64>,
    origin: Option<(i64, Instant)>,
}

impl Pacer {
    /// A pacer at `speed` (`None`: no waiting).
    pub fn new(speed: Option<f64>) -> Pacer {
        Pacer { speed: speed.filter(|s| s.is_finite() && *s > 0.0), origin: None }
    }

    /// How long to wait before handing over a message with timestamp `t` (ms).
    pub fn delay(&mut self, t: Option<i64>, now: Instant) -> Duration {
        let (Some(speed), Some(t)) = (self.speed, t) else { return Duration::ZERO };
        let (t0, w0) = *self.origin.get_or_insert((t, now));
        let due_ms = ((t - t0).max(0) as f64 / speed).min(1e12);
        let due = w0 + Duration::from_secs_f64(due_ms / 1000.0);
        due.saturating_duration_since(now)
    }
}

/// Starts a thread reading `input` into `tx` (each message first noted by the view, for dry
/// runs and its clock; the view is told when the input ends); bad lines are reported on standard error (the first 10) and counted.
pub fn spawn_feed(
    input: Input,
    replay_speed: Option<f64>,
    view: View,
    tx: Sender<Message>,
) -> std::io::Result<std::thread::JoinHandle<FeedReport>> {
    let (name, reader): (String, Box<dyn Read + Send>) = match &input {
        Input::Stdin => ("<stdin>".into(), Box::new(std::io::stdin())),
        Input::File(p) => (p.display().to_string(), Box::new(std::fs::File::open(p)?)),
    };
    std::thread::Builder::new().name("streamtrack-web-feed".into()).spawn(move || {
        let mut lines = LineReader::new(reader);
        let mut pacer = Pacer::new(replay_speed);
        let mut report = FeedReport::default();
        let bad = |report: &mut FeedReport, e: &streamtrack::read::LineError| {
            report.bad_lines += 1;
            if report.bad_lines <= 10 {
                eprintln!("{}", e.in_file(&name));
            }
        };
        loop {
            let msg = match lines.next_line() {
                Ok(None) => break,
                Err(e) => {
                    eprintln!("error: reading {name}: {e}");
                    break;
                }
                Ok(Some((_, Err(e)))) => {
                    bad(&mut report, &e);
                    continue;
                }
                Ok(Some((n, Ok(line)))) => match parse_message_line(line, n, MessageFormat::Auto) {
                    Ok(Some(m)) => m,
                    Ok(None) => continue,
                    Err(e) => {
                        bad(&mut report, &e);
                        continue;
                    }
                },
            };
            let wait = pacer.delay(msg.timestamp, Instant::now());
            if !wait.is_zero() {
                std::thread::sleep(wait);
            }
            let shared = Arc::new(msg);
            view.note_input(&shared);
            let msg = Arc::try_unwrap(shared).unwrap_or_else(|a| (*a).clone());
            if tx.send(msg).is_err() {
                break;
            }
            report.messages += 1;
        }
        if report.bad_lines > 10 {
            eprintln!("{name}: {} bad lines skipped in all", report.bad_lines);
        }
        // What was read stays in view (the window no longer follows the wall clock).
        view.input_ended();
        report
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pacer_spaces_messages_by_their_timestamps_over_the_speed() {
        let now = Instant::now();
        let mut p = Pacer::new(Some(10.0));
        assert_eq!(p.delay(Some(1_000_000), now), Duration::ZERO);
        assert_eq!(p.delay(Some(1_010_000), now), Duration::from_secs(1));
        assert_eq!(p.delay(None, now), Duration::ZERO);
        let mut fast = Pacer::new(None);
        assert_eq!(fast.delay(Some(5), now), Duration::ZERO);
        assert_eq!(fast.delay(Some(5_000_000), now), Duration::ZERO);
    }
}
