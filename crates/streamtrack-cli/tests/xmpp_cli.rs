//! `streamtrack xmpp` as a user runs it: its flags, and its errors before and at login (the
//! bot itself is tested in crates/streamtrack-xmpp/tests/prosody.rs). The login test starts a
//! real prosody on loopback (skipped with a message when prosody is missing and `CI` is unset).

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use streamtrack_xmpp::server::ProsodyServer;

fn bot(args: &[&str]) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_streamtrack"))
        .arg("xmpp")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// `streamtrack xmpp` logging in as `jid` with the password in `pw` to `server`.
fn login(jid: &str, pw: &Path, server: &str, state: &Path) -> (i32, String) {
    bot(&[
        "--jid",
        jid,
        "--password-file",
        pw.to_str().unwrap(),
        "--server",
        server,
        "--state-dir",
        state.to_str().unwrap(),
    ])
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d =
        std::env::temp_dir().join(format!("streamtrack-xmpp-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn help_names_the_flags() {
    let o =
        Command::new(env!("CARGO_BIN_EXE_streamtrack")).args(["xmpp", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&o.stdout);
    for flag in [
        "--jid",
        "--password-file",
        "--server",
        "--input",
        "--state-dir",
        "--rate-limit",
        "--tls",
        "--tls-ca",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[test]
fn errors_before_the_bot_runs_say_what_is_wrong() {
    let dir = temp_dir("errors");
    let missing = dir.join("no-such-file");
    let (code, err) = bot(&[
        "--jid",
        "b@localhost",
        "--password-file",
        missing.to_str().unwrap(),
        "--server",
        "127.0.0.1:1",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("no-such-file"), "{err}");
    // Nothing listens: the connection error, exit 1.
    let pw = dir.join("pw");
    std::fs::write(&pw, "secret\n").unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let server = format!("127.0.0.1:{port}");
    let state = dir.join("state");
    let (code, err) = login("b@localhost", &pw, &server, &state);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("streamtrack xmpp: connection:"), "{err}");
    let (code, err) = login("nodomain", &pw, &server, &state);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not a JID (user@domain): \"nodomain\""), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_wrong_password_is_refused_at_login() {
    let Some(server) = ProsodyServer::start_or_skip(&["bot"]) else { return };
    let dir = temp_dir("login");
    let pw = dir.join("pw");
    std::fs::write(&pw, "wrong\n").unwrap();
    let state = dir.join("state");
    let (code, err) = login("bot@localhost", &pw, &format!("127.0.0.1:{}", server.port()), &state);
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("streamtrack xmpp: login refused: not-authorized"), "{err}");
}
