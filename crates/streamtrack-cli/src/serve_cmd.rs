//! `streamtrack serve`: the live view (page, JSON API, SSE) over the engine, fed by a JSON
//! Lines file (replayed) or standard input (live). See README, "Live view".

use clap::Args;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use streamtrack::durable::{DurableRegistry, OpenOptions};
use streamtrack::engine::{ChannelSource, Engine};
use streamtrack::registry::Registry;
use streamtrack::rule::Dialect;
use streamtrack::Message;
use streamtrack_web::{Input, NewViewRule, Server, ServerConfig, View, ViewConfig, ViewRules};

#[derive(Args)]
pub struct ServeArgs {
    /// Rules file (JSON Lines: `{"id", "value", "tag"?, "subscriber"?}` or plain rules).
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Messages (JSON Lines): a file, replayed, or `-` for standard input, read live.
    #[arg(long, default_value = "-")]
    input: String,
    /// Replay at the messages' timestamps times X (e.g. 10: ten times faster); without it,
    /// as fast as they are read.
    #[arg(long, value_name = "X")]
    replay_speed: Option<f64>,
    /// Address to serve on (loopback by default; beyond loopback, rule changes need --token).
    #[arg(long, default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// Token that rule changes need (`Authorization: Bearer T`, or `#token=T` in the page URL).
    #[arg(long)]
    token: Option<String>,
    /// Reads (page, API, events) need the token too.
    #[arg(long, requires = "token")]
    token_reads: bool,
    /// Keep the rules in this directory: rules given with --rules or added in the page are
    /// stored, and a later start with the same --state and no --rules resumes with them.
    #[arg(long, value_name = "DIR")]
    state: Option<PathBuf>,
    /// Dialect of plain-text rule lines.
    #[arg(long, default_value = "rule", value_parser = ["rule", "track"])]
    dialect: String,
    /// Live SSE clients served at once (one more gets 503).
    #[arg(long, default_value_t = 64)]
    max_clients: usize,
    /// Matcher threads (default: the number of cores).
    #[arg(long)]
    threads: Option<usize>,
}

fn entry_rule(e: &streamtrack::rules_file::RuleEntry) -> NewViewRule {
    NewViewRule::new(e.value.clone())
        .id(e.id.clone())
        .dialect(e.rule.dialect())
        .tag(e.tag.clone())
        .subscriber(e.subscriber.clone().unwrap_or_else(|| e.id.clone()))
}

/// The view over the rules: in memory, or stored in `--state` (made those of `--rules` when
/// given).
fn load(args: &ServeArgs) -> Result<View, ExitCode> {
    let dialect = if args.dialect == "track" { Dialect::Track } else { Dialect::Rule };
    let entries = match &args.rules {
        Some(p) => Some(crate::format::load_rules(p, dialect)?),
        None => None,
    };
    let Some(dir) = &args.state else {
        let Some(entries) = entries else {
            eprintln!("error: give --rules FILE (or --state DIR holding rules)");
            return Err(ExitCode::from(2));
        };
        let view = View::new(ViewRules::Plain(Registry::new()), ViewConfig::default());
        add_all(&view, &entries);
        return Ok(view);
    };
    let durable = open_state(dir)?;
    if entries.is_some() {
        // The file's rules replace the stored ones.
        let ids: Vec<_> = durable.registry().snapshot().rules().iter().map(|i| i.id).collect();
        let failed = match durable.unsubscribe_all(&ids) {
            Ok(w) => w.value.into_iter().find_map(Result::err),
            Err(e) => Some(e),
        };
        if let Some(e) = failed {
            eprintln!("error: --state {}: {e}", dir.display());
            return Err(ExitCode::from(2));
        }
    }
    let view = View::new(ViewRules::Durable(durable), ViewConfig::default());
    if let Some(entries) = entries {
        add_all(&view, &entries);
    }
    Ok(view)
}

/// The file's rules, added at once (one publication, one sync with `--state`).
fn add_all(view: &View, entries: &[streamtrack::rules_file::RuleEntry]) {
    let replies = view.add_rules(entries.iter().map(entry_rule).collect());
    for (e, r) in entries.iter().zip(replies) {
        if r.status != 201 {
            eprintln!("warning: rule {:?}: {}; skipped", e.id, r.body["error"]);
        }
    }
}

pub fn run(args: ServeArgs) -> ExitCode {
    let view = match load(&args) {
        Ok(v) => v,
        Err(code) => return code,
    };
    let input = match args.input.as_str() {
        "-" => Input::Stdin,
        p => Input::File(PathBuf::from(p)),
    };
    let cfg = ServerConfig::default()
        .token(args.token.clone(), args.token_reads)
        .max_clients(args.max_clients)
        .for_address(&args.bind);
    let changes = cfg.allow_changes;
    let (server, engine, tx) = match start_live(&view, args.bind, cfg, false, args.threads) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let feed = match streamtrack_web::spawn_feed(input.clone(), args.replay_speed, view.clone(), tx)
    {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", args.input);
            return ExitCode::from(1);
        }
    };
    // Not println!: a closed stdout (a pipe whose reader went away) must not stop the server.
    let mut out = std::io::stdout();
    let _ = writeln!(
        out,
        "streamtrack serve: http://{}/{} ({} rules; input {}){}",
        server.local_addr(),
        // The page reads the token from the URL's fragment (never sent to the server).
        args.token.as_ref().map_or(String::new(), |t| format!("#token={t}")),
        view.rule_names().len(),
        if input == Input::Stdin { "standard input, live" } else { &args.input },
        if changes { "" } else { "; rule changes off: bound beyond loopback without --token" }
    );
    let _ = writeln!(out, "Ctrl-C stops.");
    let _ = out.flush();
    wait_for_signal();
    server.stop();
    let finished = engine.shutdown();
    drop(feed);
    eprintln!(
        "serve: {} messages, {} matched; stopped.",
        finished.stats.processed, finished.stats.matched
    );
    ExitCode::SUCCESS
}

/// Starts the live view: its server on `bind` (on a free port of the same address instead
/// when `any_port` and `bind` is taken) and its engine, fed through the returned sender.
/// Failures are reported on standard error; the error is the exit code.
pub(crate) fn start_live(
    view: &View,
    bind: SocketAddr,
    cfg: ServerConfig,
    any_port: bool,
    threads: Option<usize>,
) -> Result<(Server, Engine, crossbeam_channel::Sender<Message>), ExitCode> {
    let server = match Server::start(bind, view.clone(), cfg.clone()) {
        Ok(s) => Ok(s),
        Err(_) if any_port => Server::start(SocketAddr::new(bind.ip(), 0), view.clone(), cfg),
        Err(e) => Err(e),
    };
    let server = server.map_err(|e| {
        eprintln!("error: cannot serve on {bind}: {e}");
        ExitCode::from(1)
    })?;
    let (tx, rx) = crossbeam_channel::bounded(4096);
    let engine = view.start_engine(ChannelSource::new(rx), threads).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(1)
    })?;
    Ok((server, engine, tx))
}

/// Opens the durable rules in `dir` (`--state`), reporting a failure or a truncated log on
/// standard error; the error is the exit code.
pub(crate) fn open_state(dir: &std::path::Path) -> Result<DurableRegistry, ExitCode> {
    let (durable, report) = DurableRegistry::open(dir, OpenOptions::new()).map_err(|e| {
        eprintln!("error: --state {}: {e}", dir.display());
        ExitCode::from(2)
    })?;
    if let Some(t) = &report.truncated {
        eprintln!("warning: --state: {t}");
    }
    Ok(durable)
}

#[cfg(unix)]
fn wait_for_signal() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    match signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) {
        Ok(mut s) => {
            let _ = s.forever().next();
        }
        Err(_) => loop {
            std::thread::park();
        },
    }
}

#[cfg(not(unix))]
fn wait_for_signal() {
    loop {
        std::thread::park();
    }
}
