//! `streamtrack xmpp` as a user runs it: its flags, and its errors before and at login (the
//! bot itself is tested in crates/streamtrack-xmpp/tests/prosody.rs). The login test starts a
//! real prosody on loopback (skipped with a message when prosody is missing and `CI` is unset).

use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bot(args: &[&str]) -> (i32, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_streamtrack"))
        .arg("xmpp")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stderr).into_owned())
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
    let login = |jid: &str| {
        bot(&[
            "--jid",
            jid,
            "--password-file",
            pw.to_str().unwrap(),
            "--server",
            &server,
            "--state-dir",
            state.to_str().unwrap(),
        ])
    };
    let (code, err) = login("b@localhost");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("streamtrack xmpp: connection:"), "{err}");
    let (code, err) = login("nodomain");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not a JID (user@domain): \"nodomain\""), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_wrong_password_is_refused_at_login() {
    let have = |b: &str| {
        std::env::var_os("PATH")
            .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(b).is_file()))
    };
    if !have("prosody") || !have("prosodyctl") {
        assert!(std::env::var_os("CI").is_none(), "prosody not found and CI is set");
        eprintln!("SKIPPED: prosody is not installed (apt-get install prosody)");
        return;
    }
    let dir = temp_dir("login");
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::create_dir_all(dir.join("certs")).unwrap();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cfg = dir.join("prosody.cfg.lua");
    let d = dir.display();
    std::fs::write(
        &cfg,
        format!(
            "run_as_root = true; daemonize = false; pidfile = \"{d}/prosody.pid\"\n\
             data_path = \"{d}/data\"; interfaces = {{ \"127.0.0.1\" }}; c2s_ports = {{ {port} }}\n\
             s2s_ports = {{}}; c2s_require_encryption = false; allow_unencrypted_plain_auth = true\n\
             authentication = \"internal_plain\"; log = {{ error = \"{d}/prosody.err\" }}\n\
             modules_enabled = {{ \"roster\"; \"saslauth\"; \"presence\" }}\n\
             VirtualHost \"localhost\"\n"
        ),
    )
    .unwrap();
    let st = Command::new("prosodyctl")
        .arg("--config")
        .arg(&cfg)
        .args(["register", "bot", "localhost", "right"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    let mut prosody = Command::new("prosody")
        .arg("--config")
        .arg(&cfg)
        .arg("-F")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", port)).is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let pw = dir.join("pw");
    std::fs::write(&pw, "wrong\n").unwrap();
    let state = dir.join("state");
    let (code, err) = bot(&[
        "--jid",
        "bot@localhost",
        "--password-file",
        pw.to_str().unwrap(),
        "--server",
        &format!("127.0.0.1:{port}"),
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    let _ = prosody.kill();
    let _ = prosody.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("streamtrack xmpp: login refused: not-authorized"), "{err}");
}
