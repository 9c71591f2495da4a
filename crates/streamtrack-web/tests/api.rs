//! The HTTP and SSE API of the live view on an ephemeral loopback port: resume by
//! `Last-Event-ID`, the gap event, the client limit, bad parameters, the token, and the
//! path from a message to the series, the messages and the SSE stream.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};
use streamtrack::engine::ChannelSource;
use streamtrack::registry::Registry;
use streamtrack::Message;
use streamtrack_web::{NewViewRule, Server, ServerConfig, View, ViewConfig, ViewRules};

fn view(cfg: ViewConfig) -> View {
    let v = View::new(ViewRules::Plain(Registry::new()), cfg);
    assert_eq!(v.add_rule(NewViewRule::new("love").id("love"), false).status, 201);
    v
}

fn start(v: &View, cfg: ServerConfig) -> Server {
    Server::start("127.0.0.1:0".parse().unwrap(), v.clone(), cfg).expect("bind")
}

/// One request with `Connection: close`: (status, body).
fn http(addr: SocketAddr, method: &str, path: &str, headers: &[&str], body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out.split_once("\r\n\r\n").map(|x| x.1.to_string()).unwrap_or_default();
    (status, body)
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// An open SSE stream.
struct Sse {
    r: BufReader<TcpStream>,
    status: u16,
}

/// An SSE event: (id, name, data).
type Ev = (Option<String>, String, String);

impl Sse {
    fn open(addr: SocketAddr, headers: &[&str]) -> Sse {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut req =
            "GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n".to_string();
        for h in headers {
            req.push_str(h);
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let status = line[9..12].parse().unwrap();
        loop {
            line.clear();
            r.read_line(&mut line).unwrap();
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }
        Sse { r, status }
    }

    /// The next event (chunked transfer framing lines are skipped: they are hex sizes).
    fn next(&mut self) -> Ev {
        let (mut id, mut name, mut data) = (None, String::new(), String::new());
        let mut line = String::new();
        loop {
            line.clear();
            if self.r.read_line(&mut line).unwrap() == 0 {
                panic!("stream ended");
            }
            let l = line.trim_end_matches(['\r', '\n']);
            if let Some(v) = l.strip_prefix("id: ").or_else(|| l.strip_prefix("id:")) {
                id = Some(v.to_string());
            } else if let Some(v) = l.strip_prefix("event: ").or_else(|| l.strip_prefix("event:")) {
                name = v.to_string();
            } else if let Some(v) = l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")) {
                data = v.to_string();
            } else if l.is_empty() && !name.is_empty() {
                return (id, name, data);
            }
        }
    }
}

#[test]
fn a_client_resumes_after_its_last_event_id() {
    let v = view(ViewConfig::default());
    let server = start(&v, ServerConfig::default());
    for i in 1..=6 {
        v.hub().publish("tick", format!("{{\"n\":{i}}}"));
    }
    let base = v.hub().last_id() - 6;
    let mut s = Sse::open(server.local_addr(), &[&format!("Last-Event-ID: {}", base + 3)]);
    assert_eq!(s.status, 200);
    let hello = s.next();
    assert_eq!(hello.1, "hello");
    assert!(hello.2.contains("\"resumed\":true"), "{hello:?}");
    for i in 4..=6 {
        let e = s.next();
        assert_eq!((e.0.as_deref(), e.1.as_str()), (Some(&*(base + i).to_string()), "tick"));
        assert_eq!(e.2, format!("{{\"n\":{i}}}"));
    }
    // Live events follow.
    v.hub().publish("tick", "{\"n\":7}".into());
    assert_eq!(s.next().2, "{\"n\":7}");
    server.stop();
}

#[test]
fn a_client_that_resumes_too_late_is_told_what_it_missed() {
    let v = view(ViewConfig::default().hub_capacity(4));
    let server = start(&v, ServerConfig::default());
    // Ids 1 (the rule added) and 2..=11 below; the ring keeps 8..=11.
    for i in 0..10 {
        v.hub().publish("tick", format!("{{\"n\":{i}}}"));
    }
    assert_eq!(v.hub().last_id(), 11);
    let mut s = Sse::open(server.local_addr(), &["Last-Event-ID: 2"]);
    assert_eq!(s.next().1, "hello");
    let gap = s.next();
    assert_eq!(gap.1, "gap");
    assert_eq!(json(&gap.2)["missed"], 5, "{gap:?}");
    assert_eq!(s.next().0.as_deref(), Some("8"));
    server.stop();
}

#[test]
fn a_slow_client_gets_a_gap_event_and_publishing_never_waits_for_it() {
    let v = view(ViewConfig::default().hub_capacity(64));
    let server = start(&v, ServerConfig::default());
    let mut s = Sse::open(server.local_addr(), &[]);
    assert_eq!(s.next().1, "hello");
    // The client reads nothing while 20 MB of events are published: far more than the
    // socket buffers hold, so the ring moves past its cursor.
    let payload = format!("\"{}\"", "x".repeat(1000));
    let t = Instant::now();
    for _ in 0..20_000 {
        v.hub().publish("tick", payload.clone());
    }
    let publish = t.elapsed();
    assert!(publish < Duration::from_secs(5), "publishing waited: {publish:?}");
    let mut gap = None;
    for _ in 0..30_000 {
        let e = s.next();
        if e.1 == "gap" {
            gap = Some(e);
            break;
        }
    }
    let gap = gap.expect("no gap event");
    assert!(json(&gap.2)["missed"].as_u64().unwrap() > 0, "{gap:?}");
    server.stop();
}

#[test]
fn clients_beyond_the_limit_get_503_and_a_closed_stream_frees_its_place() {
    let v = view(ViewConfig::default());
    let cfg = ServerConfig::default().max_clients(2).heartbeat(Duration::from_millis(100));
    let server = start(&v, cfg);
    let a = Sse::open(server.local_addr(), &[]);
    let mut b = Sse::open(server.local_addr(), &[]);
    assert_eq!((a.status, b.status), (200, 200));
    assert_eq!(b.next().1, "hello");
    let c = Sse::open(server.local_addr(), &[]);
    assert_eq!(c.status, 503);
    drop(a);
    drop(c);
    // The server notices the closed stream at its next heartbeat.
    let t = Instant::now();
    loop {
        let d = Sse::open(server.local_addr(), &[]);
        if d.status == 200 {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(5), "the closed stream kept its place");
        std::thread::sleep(Duration::from_millis(100));
    }
    server.stop();
}

#[test]
fn bad_parameters_get_400_with_a_reason() {
    let v = view(ViewConfig::default());
    let server = start(&v, ServerConfig::default());
    let a = server.local_addr();
    for path in [
        "/api/series",
        "/api/series?rule=love&resolution=5s",
        "/api/series?rule=love&from=yesterday",
        "/api/series?rule=love&from=10&to=5",
        "/api/series?rule=love&from=0&to=99999999999999",
        "/api/messages?rule=love&limit=-1",
        "/api/messages?rule=love&to=1e3",
        "/api/rules?sort=size",
        "/api/rules?limit=many",
    ] {
        let (status, body) = http(a, "GET", path, &[], "");
        assert_eq!(status, 400, "{path}: {body}");
        assert!(json(&body)["error"].as_str().is_some_and(|e| !e.is_empty()), "{path}: {body}");
    }
    assert_eq!(http(a, "GET", "/api/series?rule=nope", &[], "").0, 404);
    assert_eq!(http(a, "DELETE", "/api/rules/nope", &[], "").0, 404);
    // A rule with an error: 400 with its column.
    let (status, body) = http(a, "POST", "/api/rules", &[], r#"{"value":"a (b"}"#);
    assert_eq!(status, 400);
    assert_eq!(json(&body)["column"], 3, "{body}");
    // A body that is not JSON: 400 with the column too.
    let (status, body) = http(a, "POST", "/api/rules", &[], r#"{"value": nope}"#);
    assert_eq!(status, 400);
    // serde stops at the `o` of `nope` (it expected `null`).
    assert_eq!(json(&body)["column"], 12, "{body}");
    let (status, _) = http(a, "POST", "/api/rules", &[], r#"{"value":"x","colour":"red"}"#);
    assert_eq!(status, 400);
    let (status, _) = http(a, "POST", "/api/rules?dry_run=maybe", &[], r#"{"value":"x"}"#);
    assert_eq!(status, 400);
    let (status, _) = http(a, "POST", "/api/rules", &[], r#"{"value":"x","dialect":"regex"}"#);
    assert_eq!(status, 400);
    // Duplicate ids: 409.
    assert_eq!(http(a, "POST", "/api/rules", &[], r#"{"id":"love","value":"x"}"#).0, 409);
    // Request size limit.
    let big = format!("{{\"value\":\"{}\"}}", "a ".repeat(100_000));
    assert_eq!(http(a, "POST", "/api/rules", &[], &big).0, 413);
    // A bad Last-Event-ID.
    assert_eq!(Sse::open(a, &["Last-Event-ID: yesterday"]).status, 400);
    // The server still answers.
    assert_eq!(http(a, "GET", "/api/rules", &[], "").0, 200);
    server.stop();
}

#[test]
fn the_token_guards_rule_changes_and_optionally_reads() {
    let v = view(ViewConfig::default());
    let server = start(&v, ServerConfig::default().token(Some("s3cret".into()), false));
    let a = server.local_addr();
    let body = r#"{"id":"t1","value":"tea"}"#;
    assert_eq!(http(a, "POST", "/api/rules", &[], body).0, 401);
    assert_eq!(http(a, "POST", "/api/rules", &["Authorization: Bearer wrong"], body).0, 401);
    assert_eq!(http(a, "POST", "/api/rules", &["Authorization: Bearer s3cret"], body).0, 201);
    assert_eq!(http(a, "DELETE", "/api/rules/t1", &[], "").0, 401);
    assert_eq!(http(a, "DELETE", "/api/rules/t1?token=s3cret", &[], "").0, 204);
    assert_eq!(http(a, "GET", "/api/rules", &[], "").0, 200);
    server.stop();

    let server = start(&v, ServerConfig::default().token(Some("s3cret".into()), true));
    let a = server.local_addr();
    for path in ["/", "/api/rules", "/api/series?rule=love", "/api/messages?rule=love"] {
        assert_eq!(http(a, "GET", path, &[], "").0, 401, "{path}");
    }
    assert_eq!(Sse::open(a, &[]).status, 401);
    assert_eq!(http(a, "GET", "/api/rules?token=s3cret", &[], "").0, 200);
    assert_eq!(Sse::open(a, &["Authorization: Bearer s3cret"]).status, 200);
    server.stop();

    // Bound beyond loopback without a token: no rule changes at all.
    let beyond: SocketAddr = "0.0.0.0:8080".parse().unwrap();
    let server = start(&v, ServerConfig::default().for_address(&beyond));
    assert_eq!(http(server.local_addr(), "POST", "/api/rules", &[], body).0, 403);
    server.stop();
}

#[test]
fn a_message_reaches_the_series_the_messages_and_the_stream() {
    let v = view(ViewConfig::default());
    for (id, value) in [("tea", "tea"), ("it", "it")] {
        let r = NewViewRule::new(value).id(id).tag(Some("drinks".into()));
        assert_eq!(v.add_rule(r, false).status, 201);
    }
    let server = start(&v, ServerConfig::default());
    let a = server.local_addr();
    let (tx, rx) = crossbeam_channel::bounded(16);
    let engine = v.start_engine(ChannelSource::new(rx), Some(1)).unwrap();
    let mut s = Sse::open(a, &[]);
    assert_eq!(s.next().1, "hello");
    for (id, text) in [("1", "I love tea"), ("2", "no match"), ("3", "Love <b>it</b>")] {
        let m = Message::new(id, text);
        v.note_input(&std::sync::Arc::new(m.clone()));
        tx.send(m).unwrap();
    }
    let mut seen = 0;
    while seen < 2 {
        let e = s.next();
        if e.1 == "tick" {
            seen += json(&e.2)["counts"]["love"].as_u64().unwrap_or(0);
        }
    }
    // The analytics stage may record a little after the sink: poll the series briefly.
    let t = Instant::now();
    loop {
        let series = json(&http(a, "GET", "/api/series?rule=love", &[], "").1);
        let n: u64 = series["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["count"].as_u64().unwrap())
            .sum();
        if n == 2 {
            assert_eq!(series["resolution"], "1s");
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(5), "series: {series}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let ms = json(&http(a, "GET", "/api/messages?rule=love&limit=5", &[], "").1);
    let ms = ms["messages"].as_array().unwrap().clone();
    assert_eq!(ms.iter().map(|m| m["id"].as_str().unwrap()).collect::<Vec<_>>(), ["3", "1"]);
    assert_eq!(ms[0]["text"], "Love <b>it</b>");
    assert_eq!(ms[0]["spans"], serde_json::json!([[0, 4]]));
    assert_eq!(ms[1]["spans"], serde_json::json!([[2, 6]]));
    let dry =
        json(&http(a, "POST", "/api/rules?dry_run=true", &[], r#"{"value":"tea OR match"}"#).1);
    assert_eq!((dry["would_match"].as_u64(), dry["of"].as_u64()), (Some(2), Some(3)));
    assert!(http(a, "GET", "/", &[], "").1.contains("<script src=\"app.js\""));
    drop(tx);
    engine.join();
    server.stop();
}

/// An archive replayed through `serve`'s reader: a spike of 10 "love" in its first second
/// (the detector's warm-up), then one a second with 50 in second 30 (a burst), and 31 in its
/// last second (40), the last one 400 ms into it. Returns (path, the last second's start).
fn archive(name: &str) -> (std::path::PathBuf, i64) {
    let t0: i64 = 1_700_000_000_000;
    let mut s = String::new();
    let mut n = 0;
    let mut push = |t: i64| {
        n += 1;
        s.push_str(&format!("{{\"id\":\"{n}\",\"text\":\"love it\",\"timestamp\":{t}}}\n"));
    };
    let last = t0 + 40_000;
    for sec in 0..=40 {
        let t = t0 + sec * 1000;
        push(t + 100);
        let more = match sec {
            0 => 9,
            30 => 49,
            40 => 29,
            _ => 0,
        };
        for j in 1..=more {
            push(t + 100 + j * 5);
        }
    }
    push(last + 400);
    let path = std::env::temp_dir().join(format!("st-web-{}-{name}.jsonl", std::process::id()));
    std::fs::write(&path, s).unwrap();
    (path, last)
}

fn rate_of(a: SocketAddr, rule: &str) -> f64 {
    let rules = json(&http(a, "GET", "/api/rules", &[], "").1);
    let r = rules["rules"].as_array().unwrap().iter().find(|r| r["id"] == rule).unwrap().clone();
    r["rate"].as_f64().unwrap()
}

#[test]
fn after_a_replay_the_window_stays_on_its_event_time_and_the_rate_counts_the_open_second() {
    let v = view(ViewConfig::default());
    let server = start(&v, ServerConfig::default());
    let a = server.local_addr();
    let (tx, rx) = crossbeam_channel::bounded(16);
    let engine = v.start_engine(ChannelSource::new(rx), Some(1)).unwrap();
    let (path, last) = archive("replay");
    let feed = streamtrack_web::spawn_feed(
        streamtrack_web::Input::File(path.clone()),
        None,
        v.clone(),
        tx,
    )
    .unwrap();
    assert_eq!(feed.join().unwrap().messages, 129);
    let count_at = |series: &serde_json::Value, t: i64| {
        series["buckets"].as_array().unwrap().iter().find(|b| b["t"] == t).cloned()
    };
    // The analytics stage records a little after the reader: wait for the last second.
    let t = Instant::now();
    loop {
        let s = json(&http(a, "GET", "/api/series?rule=love", &[], "").1);
        if count_at(&s, last).is_some_and(|b| b["count"] == 31) {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(5), "series: {s}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The input ended 1 s ago or more: the clock is still the last event time, not the
    // wall clock moved on from it.
    std::thread::sleep(Duration::from_millis(1100));
    let st = json(&http(a, "GET", "/api/status", &[], "").1);
    assert_eq!(st["clock"], last + 400, "{st}");
    assert_eq!(
        (st["input_ended"].as_bool(), st["clock_follows"].as_str()),
        (Some(true), Some("events"))
    );
    // The rate counts the open last second: (1 + 1 + 31) matches over 2.4 s; closed buckets
    // only would give about 1/s, 5 s late.
    assert_eq!(rate_of(a, "love"), 13.75);
    let s = json(&http(a, "GET", "/api/series?rule=love", &[], "").1);
    assert_eq!(s["rate"], 13.75, "{s}");
    let b = s["buckets"].as_array().unwrap();
    assert_eq!(b.len(), 120);
    assert_eq!(b.last().unwrap()["t"], last, "the window ends at the last event's second");
    assert_eq!(b.iter().map(|b| b["count"].as_u64().unwrap()).sum::<u64>(), 129);

    // Second 30 closed while the rest was read (its burst declared); the first one scored
    // high during the detector's warm-up, which declares nothing: it is not marked.
    let first = count_at(&s, last - 40_000).unwrap();
    assert!(first["burst_score"].as_f64().unwrap() >= 0.5, "a high warm-up score: {first}");
    assert_eq!(first["burst"], false, "{first}");
    let burst = count_at(&s, last - 10_000).unwrap();
    assert_eq!(
        (burst["closed"].as_bool(), burst["burst"].as_bool()),
        (Some(true), Some(true)),
        "{burst}"
    );
    assert_eq!(count_at(&s, last - 9_000).unwrap()["burst"], false, "the burst ended");
    // Listed for a page opened afterwards, newest first: the last second's 31 matches are a
    // burst too, declared when the input ended (its bucket closes then).
    let t = Instant::now();
    let b = loop {
        let b = json(&http(a, "GET", "/api/bursts", &[], "").1);
        if b["bursts"].as_array().map(Vec::len) == Some(2) || t.elapsed() > Duration::from_secs(10)
        {
            break b;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(b["bursts"].as_array().map(Vec::len), Some(2), "{b}");
    for (i, t) in [(0, last), (1, last - 10_000)] {
        assert_eq!(
            (&b["bursts"][i]["rule"], &b["bursts"][i]["t"]),
            (&"love".into(), &t.into()),
            "{b}"
        );
    }
    engine.join();
    server.stop();
    let _ = std::fs::remove_file(path);
}

/// A batch of new rules: valid ones, automatic ids, a bad rule, a bad id, an id taken
/// earlier and one taken inside the batch.
fn mixed_batch() -> Vec<NewViewRule> {
    vec![
        NewViewRule::new("wii fit").id("a"),
        NewViewRule::new("nintendo"),
        NewViewRule::new("\"unclosed").id("bad-rule"),
        NewViewRule::new("x").id(""),
        NewViewRule::new("again").id("love"),
        NewViewRule::new("twice").id("a"),
        NewViewRule::new("#acme -job").id("b").tag(Some("launch".into())).subscriber("s1"),
        NewViewRule::new("zelda"),
    ]
}

/// Every reply's status and body (ids and errors with their columns) and the rules listed.
fn outcome(v: &View, replies: Vec<streamtrack_web::Reply>) -> (Vec<(u16, String)>, String) {
    let listed = v.rules(&Default::default()).body.to_string();
    (replies.into_iter().map(|r| (r.status, r.body.to_string())).collect(), listed)
}

#[test]
fn adding_rules_at_once_answers_as_adding_them_one_by_one() {
    let (one, many) = (view(ViewConfig::default()), view(ViewConfig::default()));
    let singles: Vec<_> = mixed_batch().into_iter().map(|r| one.add_rule(r, false)).collect();
    let (expected, batch) = (outcome(&one, singles), many.add_rules(mixed_batch()));
    assert_eq!(outcome(&many, batch), expected);
    let statuses: Vec<u16> = expected.0.iter().map(|r| r.0).collect();
    assert_eq!(statuses, [201, 201, 400, 400, 409, 409, 201, 201]);
    assert!(expected.0[2].1.contains("\"column\""), "{}", expected.0[2].1);
}

#[test]
fn rules_added_at_once_to_a_state_directory_come_back_with_their_ids() {
    use streamtrack::durable::{DurableRegistry, OpenOptions};
    let dir = std::env::temp_dir().join(format!("streamtrack-web-bulk-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let open = || {
        let (reg, _) = DurableRegistry::open(&dir, OpenOptions::new()).expect("a state dir");
        View::new(ViewRules::Durable(reg), ViewConfig::default())
    };
    let v = open();
    let replies = v.add_rules(mixed_batch());
    // (no rule "love" here: five are added)
    assert_eq!(replies.iter().filter(|r| r.status == 201).count(), 5);
    let before = v.rules(&Default::default()).body;
    drop(v);
    let again = open();
    assert_eq!(again.rules(&Default::default()).body, before);
    assert!(before.to_string().contains("\"id\":\"b\""), "{before}");
    let _ = std::fs::remove_dir_all(&dir);
}
