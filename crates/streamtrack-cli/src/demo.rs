//! `streamtrack demo`: the live view on a built-in story.
//!
//! A replayed stream of short posts (generated here, deterministic, no network) tells a
//! product launch: the Nimbus X phone launches (a positive burst), its competitor Stratus 5
//! answers (a burst of its own), then a battery mishap turns the reactions negative (a
//! negative burst). Rules change while it runs: one is added when the mishap starts, one is
//! removed near the end. The page (`serve`'s) shows it live; the terminal gets the URL, a
//! line every few seconds and a summary; `--seconds N` bounds it.

use crate::format::group;
use clap::Args;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use streamtrack::registry::Registry;
use streamtrack::Message;
use streamtrack_web::{NewViewRule, ServerConfig, View, ViewConfig, ViewRules};

/// Writes a line to standard output, ignoring a closed pipe (`demo | head` must not panic:
/// the story and the page go on when nobody reads the terminal).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

#[derive(Args)]
pub struct DemoArgs {
    /// How long the story runs, in seconds (the page keeps serving for --linger seconds after).
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// Seconds the page stays up after the story ends.
    #[arg(long, default_value_t = 0)]
    linger: u64,
    /// Address of the page (if 127.0.0.1:8080 is taken, a free port is used instead).
    #[arg(long, default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// Posts per second of background chatter (the story's own posts come on top).
    #[arg(long, default_value_t = 40)]
    rate: u32,
    /// Matcher threads (default: the number of cores).
    #[arg(long)]
    threads: Option<usize>,
}

/// The rules at the start: (id, rule, tag).
const RULES: [(&str, &str, &str); 4] = [
    ("nimbus", "nimbus OR #nimbusx", "launch"),
    ("stratus", "stratus OR #stratus5", "competitor"),
    ("launch-event", "\"launch event\" OR #auroralaunch OR keynote", "launch"),
    ("phones", "phone OR phones OR smartphone", "market"),
];
/// Added when the mishap starts.
const MISHAP_RULE: (&str, &str, &str) =
    ("battery", "nimbus (battery OR overheating OR recall OR fire)", "mishap");

/// A small deterministic generator (xorshift).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[(self.next() % v.len() as u64) as usize]
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() % 10_000) as f64 / 10_000.0 < p
    }
}

const USERS: [&str; 12] = [
    "maya_k",
    "devon",
    "techjules",
    "ola",
    "pixelpete",
    "rin",
    "samir",
    "lowbatt",
    "ana.b",
    "gadgetguy",
    "wren",
    "kofi",
];
const CHATTER: [&str; 10] = [
    "Coffee first, then the commute.",
    "Anyone watching the match tonight?",
    "Rain again. Of course.",
    "My phone is at 3% and I forgot the charger",
    "New playlist for the weekend, recommendations welcome",
    "Lunch: the usual noodles, still great",
    "Traffic on the bridge is terrible this morning",
    "Finally finished that book, what an ending",
    "Thinking about switching phones this year",
    "The smartphone market feels so boring lately",
];
const LAUNCH: [&str; 8] = [
    "The Nimbus X keynote was amazing, that camera! #AuroraLaunch",
    "Just preordered the Nimbus X, so excited #NimbusX",
    "Nimbus X looks gorgeous, love the new colours",
    "Watching the Aurora launch event live, the Nimbus X is impressive",
    "Nimbus X battery life claims are wild, can't wait to try it",
    "Best launch event in years. Nimbus X wins. #AuroraLaunch",
    "Hands-on with the Nimbus X: fast, bright, beautiful #NimbusX",
    "Great keynote today, the Nimbus X is a real upgrade",
];
const COMPETITOR: [&str; 6] = [
    "Helio answers with the Stratus 5, and it's cheaper than the Nimbus X",
    "Stratus 5 announced: great price, good camera #Stratus5",
    "Honestly the Stratus 5 looks like the better deal",
    "Stratus 5 vs Nimbus X, I'm torn",
    "Helio's Stratus 5 event was fun, nice surprise #Stratus5",
    "The Stratus 5 screen is stunning, well played Helio",
];
const MISHAP: [&str; 8] = [
    "My Nimbus X battery is overheating, this is terrible",
    "Nimbus X caught fire on my desk?! Awful. #NimbusX",
    "Aurora recall incoming? Nimbus X battery problems everywhere",
    "Returning my Nimbus X, battery swelling, so disappointed",
    "Nimbus X overheating while charging, scary and bad",
    "Worst launch ever. Nimbus X recall now please",
    "Nimbus X battery died in two hours. Horrible.",
    "Aurora says they are investigating the Nimbus X battery reports. Not good.",
];
/// Hostile texts: shown as text by the page, never as HTML.
const HOSTILE: [&str; 3] = [
    "<script>alert('nimbus')</script> lol the Nimbus X",
    "<img src=x onerror=alert(1)> Nimbus X review",
    "Nimbus X \u{202E}gnirob si\u{202C} [javascript:alert(1)]",
];

/// Expected posts per second of each stream at story time `f` (0..1): (launch, competitor,
/// mishap).
fn intensity(f: f64) -> (f64, f64, f64) {
    let bump = |f: f64, start: f64, peak: f64, end: f64, top: f64| {
        if f < start || f > end {
            0.0
        } else if f < peak {
            top * (f - start) / (peak - start)
        } else {
            top * (end - f) / (end - peak)
        }
    };
    (
        0.8 + bump(f, 0.12, 0.18, 0.40, 14.0),
        0.6 + bump(f, 0.35, 0.42, 0.55, 10.0),
        bump(f, 0.58, 0.66, 0.92, 14.0),
    )
}

fn post(rng: &mut Rng, n: u64, text: &str) -> Message {
    let mut m = Message::new(n.to_string(), text);
    m.user = Some(rng.pick(&USERS).to_string());
    if rng.chance(0.2) {
        m.urls =
            Some(vec![streamtrack::message::UrlEntity::new(format!("https://example.com/p/{n}"))]);
    }
    m
}

fn add(view: &View, (id, value, tag): (&str, &str, &str)) {
    let reply = view.add_rule(NewViewRule::new(value).id(id).tag(Some(tag.into())), false);
    if reply.status != 201 {
        eprintln!("warning: built-in rule {id}: {}", reply.body);
    }
}

pub fn run(args: DemoArgs) -> ExitCode {
    let seconds = args.seconds.max(5);
    let view = View::new(ViewRules::Plain(Registry::new()), ViewConfig::default());
    for r in RULES {
        add(&view, r);
    }
    let started =
        crate::serve_cmd::start_live(&view, args.bind, ServerConfig::default(), true, args.threads);
    let (server, engine, tx) = match started {
        Ok(s) => s,
        Err(code) => return code,
    };
    say!("streamtrack demo: open http://{}/", server.local_addr());
    say!(
        "A {seconds} s story: the Nimbus X launches, the Stratus 5 answers, then a battery \
         mishap turns the reactions; rules change while it runs. It ends by itself (Ctrl-C \
         stops it earlier)."
    );
    say!();
    say!("{:>5}  {:>8}  {:>8}  {:>6}  now", "time", "posts", "matched", "bursts");

    let start = Instant::now();
    let tick = Duration::from_millis(100);
    let mut rng = Rng(0x5eed_cafe_f00d_u64);
    let mut n = 0u64;
    let mut carry = [0.0f64; 4];
    let (mut added, mut removed) = (false, false);
    let mut next_print = 5u64;
    let mut step = 0u64;
    loop {
        step += 1;
        let due = start + tick * step as u32;
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let elapsed = start.elapsed().as_secs_f64();
        if elapsed >= seconds as f64 {
            break;
        }
        let f = elapsed / seconds as f64;
        let (l, c, m) = intensity(f);
        let rates = [f64::from(args.rate), l, c, m];
        let mut note = String::new();
        if !added && f >= 0.58 {
            add(&view, MISHAP_RULE);
            added = true;
            note = format!("+ rule {:?}: {}", MISHAP_RULE.0, MISHAP_RULE.1);
        }
        if !removed && f >= 0.85 {
            let _ = view.remove_rule("launch-event");
            removed = true;
            note = "- rule \"launch-event\" removed".into();
        }
        for (k, rate) in rates.iter().enumerate() {
            carry[k] += rate * tick.as_secs_f64();
            while carry[k] >= 1.0 {
                carry[k] -= 1.0;
                n += 1;
                let text = match k {
                    0 => rng.pick(&CHATTER),
                    1 => rng.pick(&LAUNCH),
                    2 => rng.pick(&COMPETITOR),
                    _ if rng.chance(0.03) => rng.pick(&HOSTILE),
                    _ => rng.pick(&MISHAP),
                };
                let msg = post(&mut rng, n, text);
                view.note_input(&std::sync::Arc::new(msg.clone()));
                if tx.send(msg).is_err() {
                    break;
                }
            }
        }
        if !note.is_empty() {
            say!("{:>4}s  {note}", elapsed as u64);
        }
        if elapsed as u64 >= next_print {
            next_print += 5;
            let s = view.status().body;
            let phase = if f < 0.12 {
                "quiet chatter"
            } else if f < 0.35 {
                "the Nimbus X launches"
            } else if f < 0.56 {
                "the Stratus 5 answers"
            } else if f < 0.92 {
                "battery mishap"
            } else {
                "calming down"
            };
            say!(
                "{:>4}s  {:>8}  {:>8}  {:>6}  {phase}",
                elapsed as u64,
                group(s["messages_in"].as_u64().unwrap_or(0)),
                group(s["deliveries"].as_u64().unwrap_or(0)),
                s["burst_starts"].as_u64().unwrap_or(0)
            );
        }
    }
    drop(tx);
    // The story is over: the page stays on its last seconds (its clock stops following the
    // wall clock).
    view.input_ended();
    let finished = engine.join();
    if args.linger > 0 {
        say!("story over; the page stays up {} s more.", args.linger);
        std::thread::sleep(Duration::from_secs(args.linger));
    }
    let s = view.status().body;
    server.stop();
    let st = &finished.stats;
    let secs = start.elapsed().as_secs_f64();
    say!();
    say!(
        "done: {} posts in {secs:.0} s; {} matched a rule; {} burst starts; {} rules at the end.",
        group(st.processed),
        group(st.matched),
        s["burst_starts"].as_u64().unwrap_or(0),
        s["rules"].as_u64().unwrap_or(0),
    );
    say!("For your own stream: streamtrack serve --rules RULES.jsonl --input FILE|- (README, \"Live view\").");
    ExitCode::SUCCESS
}
