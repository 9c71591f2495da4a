//! `streamtrack watch` driven as a user would: in a real terminal (a tmux server of its own,
//! on a socket of its own), keys sent with `send-keys`, the screen read with `capture-pane`
//! (issue 16, item 4). Skips with a message when tmux is missing, unless `CI` is set.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_streamtrack");

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("streamtrack-watch-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Whether tmux can be run; without it (and without `CI`) the test is skipped.
fn have_tmux() -> bool {
    let ok = Command::new("tmux")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "tmux is missing and CI is set: install it (apt-get install -y tmux)"
        );
        eprintln!("skipped: tmux is not installed (apt-get install -y tmux)");
    }
    ok
}

/// A tmux server of our own, killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(name: &str, width: u16, height: u16, shell_command: &str) -> Tmux {
        let socket = format!("streamtrack-watch-{}-{name}", std::process::id());
        let t = Tmux { socket };
        let w = width.to_string();
        let h = height.to_string();
        t.run(
            &["-f", "/dev/null", "new-session", "-d", "-x", &w, "-y", &h, "-s", "w"],
            Some(shell_command),
        );
        t
    }

    fn run(&self, args: &[&str], last: Option<&str>) -> String {
        let mut c = Command::new("tmux");
        c.arg("-L").arg(&self.socket).args(args);
        if let Some(l) = last {
            c.arg(l);
        }
        let o = c.output().expect("tmux runs");
        assert!(o.status.success(), "tmux {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "w"], None)
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "w"];
        args.extend_from_slice(keys);
        self.run(&args, None);
    }

    fn format(&self, f: &str) -> String {
        self.run(&["display-message", "-p", "-t", "w", f], None).trim().to_string()
    }

    /// Waits until the screen satisfies `ok`; panics with the screen after 20 s.
    fn wait(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; screen:\n{s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .stderr(Stdio::null())
            .status();
    }
}

const RULES: &str = concat!(
    r#"{"id": "launch", "value": "launch", "tag": "space"}"#,
    "\n",
    r#"{"id": "rocket", "value": "rocket OR booster", "tag": "space"}"#,
    "\n",
);

/// 100 s of messages: "rocket" steady, "launch" once a second with 40 more in second 70 (a
/// burst); the last one carries escape sequences and a bidi override. Returns the number of
/// messages matching "launch".
fn write_input(path: &Path) -> usize {
    let t0 = 1_700_000_000_000i64;
    let mut s = String::new();
    let mut n = 0;
    let mut launch = 0;
    let mut push = |t: i64, text: &str| {
        n += 1;
        let line = serde_json::json!({"id": n.to_string(), "text": text, "timestamp": t});
        s.push_str(&format!("{line}\n"));
    };
    for sec in 0..100 {
        let t = t0 + sec * 1000;
        push(t, "the rocket looks great");
        let k = if sec == 70 { 41 } else { 1 };
        for j in 0..k {
            push(t + 1 + j, &format!("launch {sec} went well, love the launch"));
            launch += 1;
        }
    }
    push(t0 + 100_500, "evil \u{1b}]0;PWNED\u{7}\u{1b}[2J\u{202E}gnp.exe launch");
    launch += 1;
    std::fs::write(path, s).unwrap();
    launch
}

/// A folder of its own with the rules and the input; the number of "launch" messages.
fn files(name: &str) -> (PathBuf, PathBuf, PathBuf, usize) {
    let dir = temp_dir(name);
    let rules = dir.join("rules.jsonl");
    std::fs::write(&rules, RULES).unwrap();
    let input = dir.join("in.jsonl");
    let launch = write_input(&input);
    (dir, rules, input, launch)
}

fn row<'a>(screen: &'a str, name: &str) -> (usize, &'a str) {
    screen
        .lines()
        .enumerate()
        .find(|(_, l)| l.get(3..).is_some_and(|r| r.starts_with(&format!("{name} "))))
        .unwrap_or_else(|| panic!("no row {name}; screen:\n{screen}"))
}

#[test]
fn watch_shows_rows_opens_a_rule_and_restores_the_terminal() {
    if !have_tmux() {
        return;
    }
    let (_, rules, input, launch) = files("keys");
    let cmd = format!(
        "'{BIN}' watch --rules '{}' --input '{}'; echo WATCH-EXIT=$?; stty -a; echo STTY-DONE; sleep 60",
        rules.display(),
        input.display()
    );
    let t = Tmux::start("keys", 220, 48, &cmd);
    let s = t.wait("the whole input", |s| s.contains("input ended"));
    assert!(s.contains(&format!("2 rules, {} read", 201 + 40)), "{s}");
    assert_eq!(t.format("#{alternate_on}"), "1", "the view is on the alternate screen");
    // A row per rule, with its total, a sparkline, and the burst mark under its bucket.
    let (i, launch_row) = row(&s, "launch");
    assert!(launch_row.contains(&format!(" {launch} +")), "total {launch}: {launch_row}");
    assert!(launch_row.contains('█') && launch_row.contains('▁'), "sparkline: {launch_row}");
    let marks = s.lines().nth(i + 1).unwrap();
    assert!(marks.contains('^'), "burst mark:\n{s}");
    // The latest message, cleaned: no escape sequence reached the terminal.
    assert!(marks.contains("evil ]0;PWNED[2Jgnp.exe launch"), "{marks}");
    assert_ne!(t.format("#{pane_title}"), "PWNED");
    let (_, rocket_row) = row(&s, "rocket");
    assert!(rocket_row.contains(" 100 +100 "), "{rocket_row}");

    // Sort by name, select the first row (launch), open its messages.
    t.keys(&["s", "s"]);
    t.wait("sort by name", |s| s.contains("sort: name"));
    t.keys(&["j", "Enter"]);
    let s = t.wait("the detail view", |s| s.contains("recent messages, newest first"));
    let lines: Vec<&str> = s.lines().collect();
    assert!(lines[1].starts_with("launch: 100 recent messages"), "{s}");
    assert!(lines[2].contains("evil ]0;PWNED[2Jgnp.exe launch"), "newest first:\n{s}");
    assert!(lines[3].contains("launch 99 went well, love the launch"), "{s}");
    // Scrolling stops at the oldest kept message; one step back shows two again.
    t.keys(&["-N", "150", "j"]);
    let s =
        t.wait("the end of the scroll", |s| s.lines().nth(3).is_some_and(|l| l.trim().is_empty()));
    assert!(s.lines().nth(2).is_some_and(|l| l.contains("launch")), "{s}");
    t.keys(&["k"]);
    t.wait("one step back", |s| s.lines().nth(3).is_some_and(|l| l.contains("launch")));
    // Back to the list; pin the selected row.
    t.keys(&["Escape"]);
    t.wait("the list", |s| s.contains("matches per second"));
    t.keys(&["p"]);
    let s = t.wait("the pin", |s| s.lines().any(|l| l.starts_with(">* launch")));
    assert!(s.lines().any(|l| l.starts_with("   rocket")), "{s}");

    // q: the terminal is restored (main screen, cooked mode) and the summary printed.
    t.keys(&["q"]);
    // `stty -a` runs after the exit line: wait for its end, not for the exit line alone.
    let s = t.wait("the exit and stty", |s| s.contains("STTY-DONE"));
    assert!(s.contains("WATCH-EXIT=0"), "{s}");
    assert!(s.contains(&format!("streamtrack watch: {} messages read", 201 + 40)), "{s}");
    assert!(!s.contains("sort: name"), "the view's screen is gone:\n{s}");
    assert_eq!(t.format("#{alternate_on}"), "0");
    assert_eq!(t.format("#{cursor_flag}"), "1", "cursor shown again");
    assert!(s.contains(" icanon") && s.contains(" echo"), "raw mode left:\n{s}");
}

#[test]
fn watch_restores_the_terminal_on_sigterm() {
    if !have_tmux() {
        return;
    }
    let (dir, rules, input, _) = files("term");
    let pidfile = dir.join("pid");
    // The inner shell writes its pid, then becomes the watch process.
    let cmd = format!(
        "sh -c 'echo $$ > {}; exec {BIN} watch --rules {} --input {}'; echo WATCH-EXIT=$?; stty -a; echo STTY-DONE; sleep 60",
        pidfile.display(),
        rules.display(),
        input.display()
    );
    let t = Tmux::start("term", 160, 40, &cmd);
    t.wait("the view", |s| s.contains("input ended"));
    let pid = std::fs::read_to_string(&pidfile).unwrap().trim().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    // `stty -a` runs after the exit line: wait for its end, not for the exit line alone.
    let s = t.wait("the exit and stty", |s| s.contains("STTY-DONE"));
    assert!(s.contains("WATCH-EXIT=143"), "128 + SIGTERM, as a shell reports it:\n{s}");
    assert_eq!(t.format("#{alternate_on}"), "0");
    assert!(s.contains(" icanon") && s.contains(" echo"), "raw mode left:\n{s}");
}

#[test]
fn watch_refuses_an_output_that_is_not_a_terminal() {
    let dir = temp_dir("pipe");
    let rules = dir.join("rules.jsonl");
    std::fs::write(&rules, RULES).unwrap();
    let o = Command::new(BIN)
        .args(["watch", "--rules", rules.to_str().unwrap(), "--input", "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty(), "nothing written to the pipe");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("standard output is not one"), "{err}");
}

/// 20 s of "rocket" and "launch" once a second, then 41 more "launch" in the last second
/// (the last message 500 ms into it): read at once, the input ends in a burst.
#[test]
fn the_rate_counts_the_last_seconds_and_the_window_stays_once_the_input_ends() {
    if !have_tmux() {
        return;
    }
    let dir = temp_dir("rate");
    let rules = dir.join("rules.jsonl");
    std::fs::write(&rules, RULES).unwrap();
    let t0 = 1_700_000_000_000i64;
    let mut s = String::new();
    let mut n = 0;
    let mut push = |t: i64, text: &str| {
        n += 1;
        let line = serde_json::json!({"id": n.to_string(), "text": text, "timestamp": t});
        s.push_str(&format!("{line}\n"));
    };
    for sec in 0..20 {
        let t = t0 + sec * 1000;
        push(t, "the rocket looks great");
        push(t + 1, "launch went well");
        if sec == 19 {
            for j in 0..40 {
                push(t + 2 + j, "launch, launch, launch");
            }
        }
    }
    push(t0 + 19_500, "the launch ends in a burst");
    let input = dir.join("in.jsonl");
    std::fs::write(&input, s).unwrap();
    let cmd = format!(
        "'{BIN}' watch --rules '{}' --input '{}'; sleep 60",
        rules.display(),
        input.display()
    );
    let t = Tmux::start("rate", 200, 20, &cmd);
    t.wait("the whole input", |s| s.contains("input ended"));
    // The clock stays on the last event time (22:13:39.5), not on the wall clock moved on.
    std::thread::sleep(Duration::from_millis(1500));
    let s = t.wait("the last rows", |s| s.contains("launch") && s.contains("rocket"));
    assert!(s.contains("input ended, 22:13:39 UTC"), "{s}");
    // Over seconds 17, 18 and 19 up to 19.5: launch (1 + 1 + 42) / 2.5 s, rocket 3 / 2.5 s;
    // closed buckets only would give 1.0/s for both.
    let (_, launch) = row(&s, "launch");
    assert!(launch.contains(" 17.6/s "), "{launch}");
    let (_, rocket) = row(&s, "rocket");
    assert!(rocket.contains(" 1.2/s "), "{rocket}");
    // Sorted by rate: the burst first.
    assert!(s.find("   launch").unwrap() < s.find("   rocket").unwrap(), "{s}");
}
