//! `streamtrack nats rules`: validation before writing (errors with line and column), listing,
//! removal; against a real `nats-server -js` (skipped with a message when the binary is
//! missing and `CI` is unset).
#![cfg(unix)]

use std::process::{Command, Output};
use streamtrack_nats::server::NatsServer;

fn nats(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_streamtrack")).arg("nats").args(args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn rules_are_validated_before_anything_is_written_then_listed_and_removed() {
    let Some(server) = NatsServer::start_or_skip("rules_are_validated_before_anything_is_written")
    else {
        return;
    };
    let url = server.url();
    let dir = std::env::temp_dir().join(format!("streamtrack-nats-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.jsonl");
    std::fs::write(&bad, "{\"id\":\"a\",\"value\":\"love\"}\n{\"id\":\"b\",\"value\":\"x (y\"}\n")
        .unwrap();
    let at = ["--server", url.as_str(), "--rules-bucket", "rules"];
    let out = nats(&[&["rules", "add"], &at[..], &[bad.to_str().unwrap()]].concat());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("bad.jsonl:2:22: rule \"b\": unbalanced '(' opened here"), "{err}");
    // A valid rule whose id cannot be a key.
    std::fs::write(&bad, "{\"id\":\"a\",\"value\":\"love\"}\n{\"id\":\"c d\",\"value\":\"z\"}\n")
        .unwrap();
    let out = nats(&[&["rules", "add"], &at[..], &[bad.to_str().unwrap()]].concat());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("bad.jsonl:2:1: rule \"c d\": the id is not a valid bucket key"), "{err}");
    // Nothing was written.
    let out = nats(&[&["rules", "ls"], &at[..]].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    let good = dir.join("good.jsonl");
    std::fs::write(
        &good,
        "{\"id\":\"a\",\"value\":\"love\",\"subscriber\":\"s\"}\n{\"id\":\"b\",\"value\":\"x,y\",\"dialect\":\"track\",\"tag\":\"t\"}\n",
    )
    .unwrap();
    let out = nats(&[&["rules", "add"], &at[..], &[good.to_str().unwrap()]].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("added 2 rules to bucket rules (revision 2)"));
    let out = nats(&[&["rules", "ls"], &at[..]].concat());
    assert_eq!(
        text(&out.stdout),
        "{\"id\":\"a\",\"value\":\"love\",\"dialect\":\"rule\",\"subscriber\":\"s\"}\n\
         {\"id\":\"b\",\"value\":\"x,y\",\"dialect\":\"track\",\"tag\":\"t\"}\n"
    );
    let out = nats(&[&["rules", "rm"], &at[..], &["a", "nope"]].concat());
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no rule \"nope\""), "{}", text(&out.stderr));
    let out = nats(&[&["rules", "ls"], &at[..]].concat());
    assert_eq!(text(&out.stdout).lines().count(), 1);
    assert!(text(&out.stdout).starts_with("{\"id\":\"b\""));
    let _ = std::fs::remove_dir_all(&dir);
}
