//! `streamtrack sentiment` and `streamtrack bursts`, run as a built binary (their contracts).

mod support;
use support::{json_lines, run, temp_file};

#[test]
fn sentiment_adds_a_reaction_and_keeps_the_object() {
    let input = concat!(
        r#"{"id": 1, "text": "I love it :)", "extra": {"k": [1, 2]}, "sentiment": 3.1}"#,
        "\n",
        r#"{"id_str": "2", "full_text": "This is AWFUL!!!", "user": {"screen_name": "a"}}"#,
        "\n",
        r#"{"data": {"id": "3", "text": "The launch is at noon.", "author_id": "9"}}"#,
        "\n",
    );
    let o = run(&["sentiment"], input);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = json_lines(&o);
    assert_eq!(out.len(), 3);
    let want = ["positive", "negative", "neutral"];
    for ((got, line), label) in out.iter().zip(input.lines()).zip(want) {
        let mut orig: serde_json::Value = serde_json::from_str(line).unwrap();
        let r = &got["reaction"];
        assert_eq!(r["label"], label, "{got}");
        for k in ["compound", "pos", "neu", "neg"] {
            assert!(r[k].is_f64() || r[k].is_i64(), "{k} in {r}");
        }
        let c = r["compound"].as_f64().unwrap();
        assert!((-1.0..=1.0).contains(&c));
        let shares: f64 = ["pos", "neu", "neg"].iter().map(|k| r[*k].as_f64().unwrap()).sum();
        assert!((shares - 1.0).abs() < 0.01, "{r}");
        // Everything else is unchanged, key order included.
        let mut g = got.clone();
        g.as_object_mut().unwrap().remove("reaction");
        assert_eq!(g, orig);
        orig.as_object_mut().unwrap().insert("reaction".into(), r.clone());
        assert_eq!(
            got.as_object().unwrap().keys().collect::<Vec<_>>(),
            orig.as_object().unwrap().keys().collect::<Vec<_>>()
        );
    }
}

#[test]
fn sentiment_reports_malformed_lines_by_number_and_goes_on() {
    let input = "{\"id\": 1, \"text\": \"good\"}\nnot json\n{\"id\": 2}\n\n[1]\n{\"id\": 3, \"text\": \"bad\"}\n";
    let o = run(&["sentiment"], input);
    assert!(o.status.success());
    let out = json_lines(&o);
    assert_eq!(out.iter().map(|v| v["id"].as_i64().unwrap()).collect::<Vec<_>>(), [1, 3]);
    let err = String::from_utf8_lossy(&o.stderr);
    for n in ["line 2", "line 3", "line 5"] {
        assert!(err.contains(n), "{n} not in {err}");
    }
    assert!(err.contains("3 malformed"), "{err}");
}

#[test]
fn sentiment_lexicon_options_and_their_errors() {
    let lex = temp_file("lex.txt", "zorgle\t3.0\n");
    let o = run(
        &["sentiment", "--lexicon", lex.to_str().unwrap()],
        "{\"id\": 1, \"text\": \"zorgle\"}\n",
    );
    assert_eq!(json_lines(&o)[0]["reaction"]["label"], "positive");
    let bad = temp_file("bad.txt", "zorgle\t3.0\nfoo\tbar\n");
    let o = run(&["sentiment", "--lexicon", bad.to_str().unwrap()], "");
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("line 2") && err.contains("column 5"), "{err}");
    let fr = temp_file("fr.tsv", "form\tpos\tpolarity\nsuperbe\tJJ\t0.9\n");
    let arg = format!("fr={}", fr.display());
    let input = "{\"id\": 1, \"text\": \"superbe\", \"lang\": \"fr\"}\n{\"id\": 2, \"text\": \"superbe\", \"lang\": \"en\"}\n";
    let out = json_lines(&run(&["sentiment", "--lang-lexicon", &arg], input));
    assert_eq!(out[0]["reaction"]["label"], "positive");
    assert_eq!(out[1]["reaction"]["label"], "neutral");
    let o = run(&["sentiment", "--lang-lexicon", "fr"], "");
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["sentiment", "/nonexistent/input.jsonl"], "");
    assert_eq!(o.status.code(), Some(1));
}

fn csv(rows: &[(String, u64)]) -> String {
    let mut s = String::from("timestamp,value\n");
    for (t, v) in rows {
        s.push_str(&format!("{t},{v}\n"));
    }
    s
}

fn series() -> Vec<(String, u64)> {
    (0..80)
        .map(|i| {
            let v = if (50..55).contains(&i) { 90 } else { 10 + (i * 7 % 5) as u64 };
            let t = if i % 2 == 0 {
                format!("2024-03-01T10:{:02}:00Z", i % 60)
            } else {
                format!("2024-03-01 10:{:02}:00", i % 60)
            };
            (if i >= 60 { t.replace("T10:", "T11:").replace(" 10:", " 11:") } else { t }, v)
        })
        .collect()
}

#[test]
fn bursts_json_one_object_per_row_in_order() {
    let rows = series();
    let f = temp_file("s.csv", csv(&rows));
    let o = run(&["bursts", "--json", f.to_str().unwrap()], "");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = json_lines(&o);
    assert_eq!(out.len(), rows.len());
    for (i, (v, (t, n))) in out.iter().zip(&rows).enumerate() {
        assert_eq!(v["timestamp"], t.as_str());
        assert_eq!(v["value"], *n);
        let s = v["score"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&s));
        assert_eq!(v["burst"], (50..55).contains(&i), "row {i}: {v}");
        assert_eq!(v.as_object().unwrap().len(), 4);
    }
    assert!(out[50]["score"].as_f64().unwrap() > out[40]["score"].as_f64().unwrap());
    // Online: the output for a prefix is the prefix of the output.
    let g = temp_file("p.csv", csv(&rows[..52]));
    let prefix = json_lines(&run(&["bursts", "--json", g.to_str().unwrap()], ""));
    assert_eq!(&out[..52], &prefix[..]);
    // Sensitivity changes decisions, not scores.
    let low =
        json_lines(&run(&["bursts", "--json", "--sensitivity", "0.01", f.to_str().unwrap()], ""));
    assert!(low.iter().all(|v| v["burst"] == false));
    assert_eq!(low[50]["score"], out[50]["score"]);
    // Standard input and the table form work too.
    let o = run(&["bursts", "-"], csv(&rows));
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stdout).contains("START"));
}

#[test]
fn bursts_errors_name_the_line() {
    let cases = [
        ("time,value\n2024-03-01T10:00:00Z,1\n", "line 1"),
        ("timestamp,value\n2024-03-01T10:00:00Z,1\n2024-03-01T10:01:00Z,x\n", "line 3"),
        ("timestamp,value\n2024-03-01T10:00:00Z,1\nyesterday,4\n", "line 3"),
        ("timestamp,value\n2024-03-01T10:00:00Z,-1\n", "line 2"),
        ("timestamp,value\n2024-03-01T10:00:00Z\n", "line 2"),
        ("timestamp,value\n2024-03-01T10:05:00Z,1\n2024-03-01T10:01:00Z,1\n", "line 3"),
        // The same bucket twice (the same instant written two ways).
        (
            "timestamp,value\n2024-03-01 10:05:00,1\n2024-03-01T10:05:00Z,2\n",
            "line 3: timestamp \"2024-03-01T10:05:00Z\" repeats",
        ),
        ("timestamp,value\n2024-02-30T10:00:00Z,1\n", "line 2"),
        ("", "line 1"),
    ];
    for (input, want) in cases {
        let f = temp_file("bad.csv", input);
        let o = run(&["bursts", "--json", f.to_str().unwrap()], "");
        assert_eq!(o.status.code(), Some(2), "{input:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(want), "{input:?}: {err}");
    }
    // A refused header prints nothing on standard output, in the table form too (it printed
    // the table's header line before reading the input's).
    for input in ["time,value\n2024-03-01T10:00:00Z,1\n", ""] {
        let f = temp_file("bad.csv", input);
        let o = run(&["bursts", f.to_str().unwrap()], "");
        assert_eq!(o.status.code(), Some(2), "{input:?}");
        assert_eq!(String::from_utf8_lossy(&o.stdout), "", "{input:?}");
    }
    let f = temp_file("ok.csv", "timestamp,value\n2024-03-01T10:00:00Z,1\n");
    let o = run(&["bursts", "--sensitivity", "loud", f.to_str().unwrap()], "");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("sensitivity"));
}
