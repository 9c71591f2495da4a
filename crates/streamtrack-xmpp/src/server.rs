//! A `prosody` child process on a free loopback port, for tests: the bot's own
//! (`tests/prosody.rs`) and the command line's (`streamtrack xmpp` refusing a wrong password).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A prosody of its own: configuration, data and pid file in a temporary directory, users
/// registered with the password `pw-<user>`; killed (by its process id) and its directory
/// removed when dropped.
#[derive(Debug)]
pub struct ProsodyServer {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for ProsodyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn have(bin: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
}

impl ProsodyServer {
    /// Whether `prosody` and `prosodyctl` are on the `PATH`.
    pub fn available() -> bool {
        have("prosody") && have("prosodyctl")
    }

    /// A server with `users` and plain-text logins allowed (no TLS); see
    /// [`ProsodyServer::start_or_skip_with`].
    pub fn start_or_skip(users: &[&str]) -> Option<ProsodyServer> {
        Self::start_or_skip_with(users, |_| "c2s_require_encryption = false".into())
    }

    /// Starts a server with `users`; `extra(dir)` gives configuration lines added before the
    /// virtual host (they may refer to files they create in `dir`). `None` (after saying why
    /// on standard error) when prosody is missing and the `CI` variable is unset.
    ///
    /// # Panics
    ///
    /// When prosody is missing under `CI`, or when it cannot be configured or started (a test
    /// setup failure).
    pub fn start_or_skip_with(
        users: &[&str],
        extra: impl FnOnce(&Path) -> String,
    ) -> Option<ProsodyServer> {
        if !Self::available() {
            if std::env::var_os("CI").is_some() {
                panic!("prosody/prosodyctl not found and CI is set: .ci/run must install prosody");
            }
            eprintln!(
                "SKIPPED: prosody is not installed (apt-get install prosody); set CI=1 to fail \
                 instead"
            );
            return None;
        }
        let dir = std::env::temp_dir().join(format!(
            "streamtrack-xmpp-test-{}-{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
        ));
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
                 s2s_ports = {{}}; allow_unencrypted_plain_auth = true\n\
                 authentication = \"internal_plain\"; log = {{ error = \"{d}/prosody.err\" }}\n\
                 modules_enabled = {{ \"roster\"; \"saslauth\"; \"disco\"; \"presence\"; \"ping\"; \"tls\" }}\n\
                 {}\n\
                 VirtualHost \"localhost\"\n",
                extra(&dir)
            ),
        )
        .unwrap();
        for u in users {
            let st = Command::new("prosodyctl")
                .arg("--config")
                .arg(&cfg)
                .args(["register", u, "localhost", &format!("pw-{u}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("prosodyctl runs");
            assert!(st.success(), "prosodyctl register {u} failed");
        }
        let child = spawn(&cfg, port);
        Some(ProsodyServer { child, port, dir })
    }

    /// The loopback port clients connect to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's own temporary directory (removed on drop): room for a test's files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stops the server (by its process id) and starts it again on the same port and data.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn(&self.dir.join("prosody.cfg.lua"), self.port);
    }
}

fn spawn(cfg: &Path, port: u16) -> Child {
    let child = Command::new("prosody")
        .arg("--config")
        .arg(cfg)
        .arg("-F")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prosody starts");
    let deadline = Instant::now() + Duration::from_secs(15);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "prosody did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}
