//! The bot against a real prosody started on loopback (skipped with a message when prosody is
//! not installed and `CI` is unset; under `CI` a missing prosody fails). Users alice and bob are
//! XMPP clients too (this crate's client); posts are replayed through a channel source and each
//! user must receive exactly what the reference matcher predicts for its phrases.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use streamtrack::engine::channel_source;
use streamtrack::reference::ReferenceMatcher;
use streamtrack::{Message, Rule};
use streamtrack_xmpp::client::{chat, login_with, presence, split_jid, Tls};
use streamtrack_xmpp::server::ProsodyServer;
use streamtrack_xmpp::{render_post, Bot, RunReport};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::time::timeout;

const BOT: &str = "bot@localhost";

fn have(bin: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
}

/// A chat user: its messages from the bot in `inbox`, the bot's presences in `bot_online`.
struct User {
    out: UnboundedSender<String>,
    inbox: UnboundedReceiver<String>,
    bot_online: UnboundedReceiver<bool>,
    iqs: UnboundedReceiver<(String, String)>,
}

impl User {
    async fn connect(port: u16, name: &str) -> User {
        User::connect_with(port, name, &Tls::Off).await
    }

    async fn connect_with(port: u16, name: &str, tls: &Tls) -> User {
        let s = login_with(
            &format!("127.0.0.1:{port}"),
            &format!("{name}@localhost"),
            &format!("pw-{name}"),
            "test",
            tls,
        )
        .await
        .expect("user logs in");
        let (out, mut rx) = unbounded_channel::<String>();
        let (in_tx, inbox) = unbounded_channel();
        let (on_tx, bot_online) = unbounded_channel();
        let (iq_tx, iqs) = unbounded_channel();
        let mut reader = s.reader;
        let mut writer = s.writer;
        let replies = out.clone();
        tokio::spawn(async move {
            while let Some(x) = rx.recv().await {
                if writer.send(&x).await.is_err() {
                    break;
                }
            }
        });
        tokio::spawn(async move {
            while let Ok(Some(st)) = reader.next().await {
                let from = st.attr("from").and_then(split_jid).map(|(b, _)| b.to_string());
                match (st.name.as_str(), st.attr("type")) {
                    ("message", Some("chat")) => {
                        if let Some(b) = st.child("body") {
                            let _ = in_tx.send(b.text.clone());
                        }
                    }
                    // Accept the bot's subscription request and ask for its presence back.
                    ("presence", Some("subscribe")) => {
                        let to = from.unwrap_or_default();
                        let _ = replies.send(presence(Some(&to), Some("subscribed"), None));
                        let _ = replies.send(presence(Some(&to), Some("subscribe"), None));
                    }
                    ("iq", Some(kind)) if kind == "result" || kind == "error" => {
                        let id = st.attr("id").unwrap_or("").to_string();
                        let _ = iq_tx.send((id, kind.to_string()));
                    }
                    ("presence", kind) if from.as_deref() == Some(BOT) => {
                        let _ = on_tx.send(kind.is_none());
                    }
                    _ => {}
                }
            }
        });
        let u = User { out, inbox, bot_online, iqs };
        u.send(presence(None, None, None));
        u
    }

    fn send(&self, stanza: String) {
        self.out.send(stanza).unwrap();
    }

    fn say(&self, body: &str) {
        self.send(chat(BOT, body, None));
    }

    /// The next message, within 20 s (a loaded CI machine).
    async fn next(&mut self, after: &str) -> String {
        timeout(Duration::from_secs(20), self.inbox.recv())
            .await
            .unwrap_or_else(|_| panic!("no reply within 20 s to {after:?}"))
            .expect("connection open")
    }

    async fn ask(&mut self, body: &str) -> String {
        self.say(body);
        self.next(body).await
    }

    /// The next IQ reply (id, type), within 20 s.
    async fn next_iq(&mut self) -> (String, String) {
        timeout(Duration::from_secs(20), self.iqs.recv()).await.expect("an IQ reply").expect("open")
    }

    /// `n` messages (each within 20 s), then any more that come within half a second.
    async fn take(&mut self, n: usize) -> Vec<String> {
        let mut got = Vec::new();
        for i in 0..n {
            match timeout(Duration::from_secs(20), self.inbox.recv()).await {
                Ok(Some(m)) => got.push(m),
                _ => panic!("only {i} of {n} messages within 20 s: {got:?}"),
            }
        }
        got.extend(self.drain(Duration::from_millis(500)).await);
        got
    }

    /// Messages until none came for `quiet`.
    async fn drain(&mut self, quiet: Duration) -> Vec<String> {
        let mut got = Vec::new();
        while let Ok(Some(m)) = timeout(quiet, self.inbox.recv()).await {
            got.push(m);
        }
        got
    }

    /// Waits until the bot answers (a message to it before it is online bounces).
    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            self.say("help");
            if timeout(Duration::from_millis(500), self.inbox.recv()).await.is_ok() {
                // Swallow the answers to earlier tries.
                self.drain(Duration::from_millis(700)).await;
                return;
            }
            assert!(Instant::now() < deadline, "the bot did not answer within 15 s");
        }
    }

    /// Waits until the bot's presence says online (`true`) or offline.
    async fn wait_bot(&mut self, online: bool) {
        loop {
            let v = timeout(Duration::from_secs(15), self.bot_online.recv())
                .await
                .expect("the bot's presence within 15 s")
                .expect("connection open");
            if v == online {
                return;
            }
        }
    }
}

/// Deterministic posts over a small vocabulary where rust, python and snake come in many forms.
fn posts(batch: u64, n: usize) -> Vec<Message> {
    let words = [
        "rust",
        "Rust!",
        "rusty",
        "#rust",
        "python",
        "Python's",
        "PYTHON",
        "snake",
        "snakes",
        "pythonic",
        "crab",
        "the",
        "a",
        "fast",
        "code",
        "love",
        "rust-lang",
        "snake_case",
        "zoo",
        "is",
        "great",
        "😀",
    ];
    let mut x = 0x9e37_79b9_7f4a_7c15u64 ^ batch;
    (0..n)
        .map(|i| {
            let len = 3 + (i % 6);
            let text: Vec<&str> = (0..len)
                .map(|_| {
                    x = x
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    words[(x >> 33) as usize % words.len()]
                })
                .collect();
            let id = format!("{batch}-{i}");
            let m = Message::new(id, text.join(" "));
            if i % 3 == 0 {
                m.with_user(format!("author{i}"))
            } else {
                m
            }
        })
        .collect()
}

/// What `phrases` (a track value) should deliver out of `batch`, as chat bodies.
fn expected(phrases: &[&str], batch: &[Message]) -> Vec<String> {
    let m = ReferenceMatcher::new(phrases.iter().map(|p| Rule::parse_track(p).unwrap()).collect());
    batch.iter().filter(|msg| !m.matching(msg).is_empty()).map(|msg| render_post(msg).0).collect()
}

struct RunningBot {
    stop: tokio::sync::oneshot::Sender<()>,
    posts: Box<dyn Fn(Message) + Send>,
    handle: tokio::task::JoinHandle<Result<RunReport, streamtrack_xmpp::BotError>>,
}

fn start_bot(port: u16, state: &Path) -> RunningBot {
    let (tx, source) = channel_source(10_000);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let bot =
        Bot::builder(BOT, "pw-bot", format!("127.0.0.1:{port}"), state).rate_limit(1000).build();
    let handle = tokio::spawn(bot.run(source, async move {
        let _ = stopped.await;
    }));
    RunningBot { stop, posts: Box::new(move |m| tx.send(m).unwrap()), handle }
}

impl RunningBot {
    fn replay(&self, batch: &[Message]) {
        for m in batch {
            (self.posts)(m.clone());
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        timeout(Duration::from_secs(20), self.handle)
            .await
            .expect("the bot stops within 20 s")
            .unwrap()
            .expect("the bot ends without error");
    }
}

const QUIET: Duration = Duration::from_millis(1500);

async fn status_until(u: &mut User, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = u.ask("status").await;
        if s.contains(want) || Instant::now() > deadline {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_get_what_the_reference_predicts_through_commands_presence_and_restart() {
    let Some(server) = ProsodyServer::start_or_skip(&["bot", "alice", "bob"]) else { return };
    let state = server.dir().join("bot-state");
    let bot = start_bot(server.port(), &state);
    let mut alice = User::connect(server.port(), "alice").await;
    let mut bob = User::connect(server.port(), "bob").await;
    alice.wait_ready().await;

    // Commands, case insensitive; replies in the same chat.
    assert_eq!(alice.ask("TRACK rust").await, "Tracking rust (1 of 400 phrases)");
    assert_eq!(bob.ask("track python,snake").await, "Tracking python, snake (2 of 400 phrases)");
    assert_eq!(bob.ask("tracking").await, "Tracking 2 phrases: python, snake");
    assert_eq!(alice.ask("track Rust").await, "Already tracking rust");
    // Errors say what is wrong: the column in the message, the limit.
    let long = "x".repeat(61);
    let e = alice.ask(&format!("track {long}")).await;
    assert_eq!(e, "Cannot track that: column 7: phrase 1 ('xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx') is 61 bytes; the limit is 60");
    assert!(alice.ask("frobnicate now").await.starts_with("Unknown command 'frobnicate'"));
    assert!(alice.ask("help track").await.starts_with("track PHRASES:"));
    assert_eq!(alice.ask("tracks").await, "Tracking 1 phrase: rust");
    // IQ requests get answers: a ping a result, anything else an error.
    alice.send(format!(
        "<iq type='get' id='p1' to='{BOT}/streamtrack'><ping xmlns='urn:xmpp:ping'/></iq>"
    ));
    alice.send(format!(
        "<iq type='get' id='v1' to='{BOT}/streamtrack'><query xmlns='jabber:iq:version'/></iq>"
    ));
    assert_eq!(alice.next_iq().await, ("p1".to_string(), "result".to_string()));
    assert_eq!(alice.next_iq().await, ("v1".to_string(), "error".to_string()));

    // Replayed posts reach each user exactly as the reference matcher predicts (once per post,
    // in order), even when a post matches both of bob's phrases.
    let b1 = posts(1, 120);
    bot.replay(&b1);
    let (a_want, b_want) = (expected(&["rust"], &b1), expected(&["python", "snake"], &b1));
    assert!(a_want.len() > 10 && b_want.len() > 10, "{} {}", a_want.len(), b_want.len());
    {
        let want = a_want;
        assert_eq!(alice.take(want.len()).await, want);
    }
    {
        let want = b_want;
        assert_eq!(bob.take(want.len()).await, want);
    }

    // off: nothing for bob, counted; on again: deliveries resume.
    assert!(bob.ask("off").await.starts_with("Deliveries off"));
    let b2 = posts(2, 60);
    bot.replay(&b2);
    {
        let want = expected(&["rust"], &b2);
        assert_eq!(alice.take(want.len()).await, want);
    }
    let dropped = expected(&["python", "snake"], &b2).len();
    let s = status_until(&mut bob, &format!("({dropped} while off")).await;
    assert!(s.contains("deliveries off"), "{s}");
    assert!(s.contains(&format!("({dropped} while off, 0 while dnd/xa/offline")), "{s}");
    assert_eq!(bob.drain(QUIET).await, Vec::<String>::new());
    assert_eq!(bob.ask("on").await, "Deliveries on.");

    // dnd: nothing for alice; back to available: deliveries resume.
    alice.send(presence(None, None, Some("dnd")));
    let s = status_until(&mut alice, "you are dnd").await;
    assert!(s.contains("you are dnd"), "{s}");
    let b3 = posts(3, 60);
    bot.replay(&b3);
    {
        let want = expected(&["python", "snake"], &b3);
        assert_eq!(bob.take(want.len()).await, want);
    }
    let away = expected(&["rust"], &b3).len();
    let s = status_until(&mut alice, &format!("{away} while dnd/xa/offline")).await;
    assert!(s.contains(&format!("0 while off, {away} while dnd/xa/offline")), "{s}");
    assert_eq!(alice.drain(QUIET).await, Vec::<String>::new());
    alice.send(presence(None, None, None));
    let s = status_until(&mut alice, "you are available").await;
    assert!(s.contains("you are available"), "{s}");

    // untrack: bob keeps python only.
    assert_eq!(bob.ask("untrack snake,zebra").await, "Stopped tracking snake; Not tracking zebra");
    let b4 = posts(4, 80);
    bot.replay(&b4);
    {
        let want = expected(&["rust"], &b4);
        assert_eq!(alice.take(want.len()).await, want);
    }
    {
        let want = expected(&["python"], &b4);
        assert_eq!(bob.take(want.len()).await, want);
    }

    // A restart keeps the tracks; deliveries go on without a word from the users (the bot
    // learns their presence from the server).
    bot.stop().await;
    alice.wait_bot(false).await;
    let bot = start_bot(server.port(), &state);
    alice.wait_bot(true).await;
    let s = status_until(&mut bob, "you are available").await;
    assert!(s.starts_with("Tracking 1 of 400 phrases; deliveries on; you are available"), "{s}");
    let b5 = posts(5, 80);
    bot.replay(&b5);
    {
        let want = expected(&["rust"], &b5);
        assert_eq!(alice.take(want.len()).await, want);
    }
    {
        let want = expected(&["python"], &b5);
        assert_eq!(bob.take(want.len()).await, want);
    }
    assert_eq!(alice.ask("tracks").await, "Tracking 1 phrase: rust");
    assert_eq!(bob.ask("untrack all").await, "Stopped tracking all 1 phrase.");
    let b6 = posts(6, 40);
    bot.replay(&b6);
    {
        let want = expected(&["rust"], &b6);
        assert_eq!(alice.take(want.len()).await, want);
    }
    assert_eq!(bob.drain(QUIET).await, Vec::<String>::new());
    bot.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rate_cap_drops_and_says_how_many() {
    let Some(server) = ProsodyServer::start_or_skip(&["bot", "carol"]) else { return };
    let state = server.dir().join("bot-state");
    let (tx, source) = channel_source(10_000);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let bot = Bot::builder(BOT, "pw-bot", format!("127.0.0.1:{}", server.port()), &state)
        .rate_limit(3)
        .build();
    let handle = tokio::spawn(bot.run(source, async move {
        let _ = stopped.await;
    }));
    let mut carol = User::connect(server.port(), "carol").await;
    carol.wait_ready().await;
    assert_eq!(carol.ask("track crab").await, "Tracking crab (1 of 400 phrases)");
    let batch = posts(7, 300);
    let want = expected(&["crab"], &batch);
    assert!(want.len() > 20, "{}", want.len());
    for m in batch {
        tx.send(m).unwrap();
    }
    // Read until every match is accounted for: delivered, or counted by a notice.
    let mut got: Vec<String> = Vec::new();
    let in_all = |m: &String| -> usize {
        m.rsplit_once("; ").and_then(|(_, t)| t.split(' ').next()?.parse().ok()).unwrap_or(0)
    };
    loop {
        let posts = got.iter().filter(|m| !m.starts_with("Rate cap: ")).count();
        let dropped =
            got.iter().filter(|m| m.starts_with("Rate cap: ")).map(in_all).max().unwrap_or(0);
        if posts + dropped >= want.len() {
            break;
        }
        match timeout(Duration::from_secs(20), carol.inbox.recv()).await {
            Ok(Some(m)) => got.push(m),
            _ => panic!("matches unaccounted for after 20 s: {got:?}"),
        }
    }
    got.extend(carol.drain(Duration::from_millis(500)).await);
    let (notices, delivered): (Vec<&String>, Vec<&String>) =
        got.iter().partition(|m| m.starts_with("Rate cap: "));
    // Delivered posts are the stream's matches in order, minus the dropped ones.
    let mut rest = want.iter();
    for d in &delivered {
        assert!(rest.any(|w| w == *d), "{d:?} out of order or not expected");
    }
    assert!(delivered.len() < want.len(), "{} of {}", delivered.len(), want.len());
    let dropped = want.len() - delivered.len();
    let last = notices.last().expect("a rate-cap notice");
    assert!(last.ends_with(&format!("over 3 per second; {dropped} in all).")), "{last}");
    let s = carol.ask("status").await;
    assert!(
        s.contains(&format!("delivered {}, dropped {dropped} (0 while off, 0 while dnd/xa/offline, {dropped} over the rate cap of 3 per second)", delivered.len())),
        "{s}"
    );

    // The per-user limit of 400 phrases: in one command (the dialect's error, with its
    // column), and over several.
    let many: Vec<String> = (0..401).map(|i| format!("w{i}")).collect();
    let e = carol.ask(&format!("track {}", many.join(","))).await;
    assert!(e.starts_with("Cannot track that: column "), "{e}");
    assert!(e.ends_with("401 phrases; the limit is 400"), "{e}");
    let r = carol.ask(&format!("track {}", many[..399].join(","))).await;
    assert_eq!(r, "Tracking ".to_string() + &many[..399].join(", ") + " (400 of 400 phrases)");
    assert_eq!(
        carol.ask("track one more").await,
        "Cannot track that: you track 400 and this adds 1; the limit is 400 phrases. Untrack some first."
    );
    let _ = stop.send(());
    timeout(Duration::from_secs(20), handle).await.unwrap().unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_with_a_self_signed_certificate() {
    if !have("openssl") {
        if std::env::var_os("CI").is_some() {
            panic!("openssl not found and CI is set: .ci/run must install it");
        }
        eprintln!("SKIPPED: openssl is not installed (it makes the test's certificate)");
        return;
    }
    let Some(server) = ProsodyServer::start_or_skip_with(&["bot", "dave"], |dir| {
        let st = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"])
            .args(["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"])
            .args(["-addext", "basicConstraints=critical,CA:FALSE", "-keyout"])
            .arg(dir.join("key.pem"))
            .arg("-out")
            .arg(dir.join("cert.pem"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(st.success(), "openssl req failed");
        format!(
            "c2s_require_encryption = true\nssl = {{ key = \"{0}/key.pem\"; certificate = \"{0}/cert.pem\" }}",
            dir.display()
        )
    }) else {
        return;
    };
    let addr = format!("127.0.0.1:{}", server.port());
    let tls = Tls::StartTls { ca_file: Some(server.dir().join("cert.pem")) };
    // Without TLS the server offers no login, and the error says what to do.
    let e = login_with(&addr, BOT, "pw-bot", "x", &Tls::Off).await.unwrap_err().to_string();
    assert!(e.contains("no PLAIN login before STARTTLS"), "{e}");
    // With TLS but without the certificate, the handshake fails (the Mozilla roots only).
    let e = login_with(&addr, BOT, "pw-bot", "x", &Tls::StartTls { ca_file: None })
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("TLS handshake"), "{e}");
    // With the certificate trusted: the whole bot works over STARTTLS.
    let (tx, source) = channel_source(1000);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let bot =
        Bot::builder(BOT, "pw-bot", &addr, server.dir().join("bot-state")).tls(tls.clone()).build();
    let handle = tokio::spawn(bot.run(source, async move {
        let _ = stopped.await;
    }));
    let mut dave = User::connect_with(server.port(), "dave", &tls).await;
    dave.wait_ready().await;
    assert_eq!(dave.ask("track rust").await, "Tracking rust (1 of 400 phrases)");
    let batch = posts(8, 60);
    for m in &batch {
        tx.send(m.clone()).unwrap();
    }
    {
        let want = expected(&["rust"], &batch);
        assert_eq!(dave.take(want.len()).await, want);
    }
    let _ = stop.send(());
    timeout(Duration::from_secs(20), handle).await.unwrap().unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bot_logs_in_again_after_the_server_restarts() {
    let Some(mut server) = ProsodyServer::start_or_skip(&["bot", "erin"]) else { return };
    let bot = start_bot(server.port(), &server.dir().join("bot-state"));
    let mut erin = User::connect(server.port(), "erin").await;
    erin.wait_ready().await;
    assert_eq!(erin.ask("track rust").await, "Tracking rust (1 of 400 phrases)");
    server.restart();
    // Erin's client has no reconnect of its own: a new session.
    let mut erin = User::connect(server.port(), "erin").await;
    erin.wait_ready().await;
    assert_eq!(erin.ask("tracks").await, "Tracking 1 phrase: rust");
    let batch = posts(9, 60);
    bot.replay(&batch);
    let want = expected(&["rust"], &batch);
    assert_eq!(erin.take(want.len()).await, want);
    bot.stop().await;
}
