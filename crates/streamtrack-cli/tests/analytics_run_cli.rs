//! `streamtrack run --analytics` as a built binary: deliveries carry `reaction`, bursts are
//! written to the subscribers they concern (issue 15, item 7).

mod support;
use support::temp_file;

use std::process::{Command, Output};

fn run(args: &[&str]) -> (Output, Vec<serde_json::Value>) {
    let o = Command::new(env!("CARGO_BIN_EXE_streamtrack")).args(args).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lines = String::from_utf8(o.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("output line is JSON"))
        .collect();
    (o, lines)
}

const RULES: &str = concat!(
    r#"{"id": "r1", "value": "launch", "subscriber": "alice"}"#,
    "\n",
    r#"{"id": "r2", "value": "launch OR great", "subscriber": "bob"}"#,
    "\n",
    r#"{"id": "r3", "value": "rocket", "subscriber": "carol"}"#,
    "\n",
);

#[test]
fn run_analytics_attaches_the_reaction_to_every_match() {
    let rules = temp_file("rules.jsonl", RULES);
    let input = temp_file(
        "in.jsonl",
        concat!(
            r#"{"id": "1", "text": "The launch was great!", "lang": "en"}"#,
            "\n",
            r#"{"id": "2", "text": "nothing here"}"#,
            "\n",
            r#"{"id": "3", "text": "launch failed, awful"}"#,
            "\n",
        ),
    );
    let args = ["run", "-q", "--rules", rules.to_str().unwrap(), input.to_str().unwrap()];
    let (_, plain) = run(&args);
    assert_eq!(plain.len(), 4, "{plain:?}");
    assert!(plain.iter().all(|l| l.get("reaction").is_none()), "{plain:?}");
    let mut with = vec!["run", "--analytics"];
    with.extend_from_slice(&args[1..]);
    let (_, out) = run(&with);
    assert_eq!(out.len(), 4, "{out:?}");
    for line in &out {
        let r = &line["reaction"];
        for k in ["compound", "pos", "neu", "neg"] {
            assert!(r[k].is_number(), "{k} in {line}");
        }
        let want = if line["id"] == "1" { "positive" } else { "negative" };
        assert_eq!(r["label"], want, "{line}");
        // The rest of the line is what `run` writes without analytics.
        let mut rest = line.clone();
        rest.as_object_mut().unwrap().remove("reaction");
        assert!(plain.contains(&rest), "{rest}");
    }
    // The same message carries the same reaction to every subscriber.
    let of = |sub: &str, id: &str| {
        out.iter().find(|l| l["subscriber"] == sub && l["id"] == id).unwrap()["reaction"].clone()
    };
    assert_eq!(of("alice", "1"), of("bob", "1"));
}

#[test]
fn run_analytics_writes_bursts_to_the_subscribers_they_concern() {
    // "launch" once a second, forty in second 60; "rocket" (carol) steady throughout.
    let t0 = 1_700_000_000_000i64;
    let mut input = String::new();
    let mut n = 0;
    let mut push = |t: i64, text: &str| {
        n += 1;
        input.push_str(&format!("{{\"id\": \"{n}\", \"text\": \"{text}\", \"timestamp\": {t}}}\n"));
    };
    for s in 0..120 {
        let t = t0 + s * 1000;
        push(t, "rocket");
        if !(60..=61).contains(&s) {
            push(t + 1, "launch");
        }
        if s == 60 {
            for k in 0..40 {
                push(t + 2 + k, "launch");
            }
        }
    }
    let rules = temp_file("rules-b.jsonl", RULES);
    let input = temp_file("in-b.jsonl", &input);
    let (_, out) = run(&[
        "run",
        "-q",
        "--analytics",
        "--rules",
        rules.to_str().unwrap(),
        input.to_str().unwrap(),
    ]);
    let bursts: Vec<_> = out.iter().filter(|l| l.get("burst").is_some()).collect();
    let starts: Vec<_> = bursts.iter().filter(|l| l["burst"]["event"] == "start").collect();
    assert!(!starts.is_empty(), "{bursts:?}");
    // alice's rule r1 and alice herself; bob's r2 and bob; never carol.
    for (sub, series, id) in
        [("alice", "rule", "r1"), ("alice", "subscriber", "alice"), ("bob", "rule", "r2")]
    {
        assert!(
            starts.iter().any(|l| l["subscriber"] == sub
                && l["burst"]["series"] == series
                && l["burst"]["id"] == id
                && l["burst"]["resolution_ms"] == 1000
                && l["burst"]["bucket_start_ms"] == t0 + 60_000),
            "{sub} {series} {id}: {bursts:?}"
        );
    }
    assert!(bursts.iter().all(|l| l["subscriber"] != "carol"), "{bursts:?}");
    assert!(bursts.iter().any(|l| l["burst"]["event"] == "end"), "{bursts:?}");
    let matches = out.iter().filter(|l| l.get("matching_rules").is_some()).count();
    assert_eq!(matches, 2 * (118 + 40) + 120);
}
