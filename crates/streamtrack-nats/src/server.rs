//! A `nats-server -js` child process on a free loopback port, for tests and benchmarks.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A `nats-server` with JetStream, started on a free loopback port with its own storage
/// directory; killed (by its process id) and its directory removed when dropped.
#[derive(Debug)]
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

static NEXT: AtomicU64 = AtomicU64::new(0);

impl NatsServer {
    /// Whether `nats-server` can be run.
    pub fn available() -> bool {
        Command::new("nats-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Starts a server for the test `test`; `None` (after saying why on standard error) when
    /// the binary is missing and the `CI` variable is unset. Under `CI` a missing binary panics.
    pub fn start_or_skip(test: &str) -> Option<NatsServer> {
        if !Self::available() {
            if std::env::var_os("CI").is_some() {
                panic!("{test}: nats-server is not installed (required under CI)");
            }
            eprintln!(
                "{test}: SKIPPED: nats-server is not installed (apt-get install nats-server)"
            );
            return None;
        }
        Some(Self::start().unwrap_or_else(|e| panic!("{test}: cannot start nats-server: {e}")))
    }

    /// Starts a server on a free loopback port, storage in a new temporary directory.
    pub fn start() -> io::Result<NatsServer> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("streamtrack-nats-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut s = NatsServer { child: None, port, dir };
        s.spawn()?;
        Ok(s)
    }

    fn spawn(&mut self) -> io::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("nats.log"))?;
        let child = Command::new("nats-server")
            .args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string(), "-sd"])
            .arg(self.dir.join("js"))
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if start.elapsed() > Duration::from_secs(10) {
                return Err(io::Error::other("nats-server did not listen within 10 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // JetStream is ready shortly after the port opens.
        std::thread::sleep(Duration::from_millis(200));
        Ok(())
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The storage directory (its `nats.log` holds the server's output).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's process id while it runs (to read its CPU time, for example).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the server (SIGKILL), keeping its storage.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Kills the server and starts it again on the same port with the same storage.
    pub fn restart(&mut self) -> io::Result<()> {
        self.kill();
        self.spawn()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
