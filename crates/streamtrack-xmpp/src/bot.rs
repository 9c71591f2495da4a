//! The bot: one XMPP session, every user who chats with it a subscriber of a durable registry,
//! the engine's deliveries turned into chat messages.

use crate::client::{chat, login_with, presence, split_jid, ClientError, StanzaWriter, Tls};
use crate::command::{help, parse, Command};
use crate::xml::{escape, Element};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use streamtrack::durable::{DurableError, DurableRegistry, OpenOptions};
use streamtrack::engine::{CallbackSink, Delivery, Engine, Source, SubscriberConfig};
use streamtrack::registry::Registry;
use streamtrack::{Message, Rule};
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Phrases one user may track (the track dialect's limit, per user).
pub const MAX_PHRASES: usize = 400;

/// Why the bot stopped with an error.
#[derive(Debug)]
#[non_exhaustive]
pub enum BotError {
    /// Login or the XMPP stream failed.
    Client(ClientError),
    /// The state directory could not be opened or written.
    State(String),
    /// The engine could not start.
    Engine(String),
}

impl fmt::Display for BotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BotError::Client(e) => write!(f, "{e}"),
            BotError::State(m) => write!(f, "state: {m}"),
            BotError::Engine(m) => write!(f, "engine: {m}"),
        }
    }
}

impl std::error::Error for BotError {}

impl From<ClientError> for BotError {
    fn from(e: ClientError) -> Self {
        BotError::Client(e)
    }
}

/// What the bot knows of one user's presence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Show {
    /// Available (no `<show/>`, or `chat`).
    Available,
    /// `away`: still delivered to.
    Away,
    /// `dnd`: nothing is sent.
    Dnd,
    /// `xa`: nothing is sent.
    Xa,
}

impl Show {
    fn from_element(p: &Element) -> Show {
        match p.child("show").map(|s| s.text.trim()) {
            Some("away") => Show::Away,
            Some("dnd") => Show::Dnd,
            Some("xa") => Show::Xa,
            _ => Show::Available,
        }
    }
}

/// One user's state (in memory; the phrases live in the registry, `off` in the state dir).
#[derive(Debug, Default)]
struct User {
    /// Online resources and their show.
    resources: HashMap<String, Show>,
    paused: bool,
    delivered: u64,
    dropped_off: u64,
    dropped_away: u64,
    /// Cumulative drops over the rate cap (the engine's limit notice).
    dropped_rate: u64,
}

impl User {
    fn deliverable(&self) -> bool {
        self.resources.values().any(|s| matches!(s, Show::Available | Show::Away))
    }

    fn presence_word(&self) -> &'static str {
        let shows: Vec<Show> = self.resources.values().copied().collect();
        if shows.contains(&Show::Available) {
            "available"
        } else if shows.contains(&Show::Away) {
            "away"
        } else if shows.contains(&Show::Dnd) {
            "dnd"
        } else if shows.contains(&Show::Xa) {
            "xa"
        } else {
            "offline"
        }
    }
}

type Users = Arc<Mutex<HashMap<String, User>>>;

fn lock(users: &Users) -> MutexGuard<'_, HashMap<String, User>> {
    users.lock().unwrap_or_else(|e| e.into_inner())
}

/// Settings of a [`Bot`].
#[derive(Clone, Debug)]
pub struct BotBuilder {
    jid: String,
    password: String,
    server: String,
    state_dir: PathBuf,
    rate_limit: u32,
    resource: String,
    tls: Tls,
}

impl BotBuilder {
    /// Plain TCP (the default) or STARTTLS.
    pub fn tls(mut self, tls: Tls) -> Self {
        self.tls = tls;
        self
    }

    /// Deliveries per user per second above which matches are dropped and reported
    /// (a token bucket of one second's worth). Default 60.
    pub fn rate_limit(mut self, per_second: u32) -> Self {
        self.rate_limit = per_second.max(1);
        self
    }

    /// The resource the bot binds (default `streamtrack`).
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = resource.into();
        self
    }

    /// The bot, ready to [`Bot::run`].
    pub fn build(self) -> Bot {
        Bot { cfg: self }
    }
}

/// The XMPP track bot.
#[derive(Debug)]
pub struct Bot {
    cfg: BotBuilder,
}

/// What a run did, for the command line's last words.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct RunReport {
    /// Users with at least one phrase at the end.
    pub users: usize,
    /// Chat messages carrying a post, over all users.
    pub delivered: u64,
}

impl Bot {
    /// A bot logging in as `jid` with `password` at `server` (`host:port`), keeping its users'
    /// phrases in `state_dir` (created if missing).
    pub fn builder(
        jid: impl Into<String>,
        password: impl Into<String>,
        server: impl Into<String>,
        state_dir: impl Into<PathBuf>,
    ) -> BotBuilder {
        BotBuilder {
            jid: jid.into(),
            password: password.into(),
            server: server.into(),
            state_dir: state_dir.into(),
            rate_limit: 60,
            resource: "streamtrack".into(),
            tls: Tls::Off,
        }
    }

    /// Logs in, matches `source`'s posts for every user, answers commands, until `shutdown`
    /// completes. The end of `source` does not stop the bot; a lost connection is logged in
    /// again (pauses from 0.5 s doubling to 30 s; matches meanwhile count as offline drops,
    /// stanzas the writer could not send are lost). Only the first login's failure is an error.
    pub async fn run(
        self,
        source: impl Source + 'static,
        shutdown: impl Future<Output = ()>,
    ) -> Result<RunReport, BotError> {
        let cfg = self.cfg;
        std::fs::create_dir_all(&cfg.state_dir)
            .map_err(|e| BotError::State(format!("{}: {e}", cfg.state_dir.display())))?;
        let (durable, _) = DurableRegistry::open(
            cfg.state_dir.join("rules"),
            OpenOptions::new().registry(Registry::builder().max_rules_per_subscriber(MAX_PHRASES)),
        )
        .map_err(|e| BotError::State(e.to_string()))?;
        let paused_path = cfg.state_dir.join("paused");
        let users: Users = Arc::default();
        {
            let mut u = lock(&users);
            for jid in std::fs::read_to_string(&paused_path).unwrap_or_default().lines() {
                if !jid.trim().is_empty() {
                    u.entry(jid.trim().to_string()).or_default().paused = true;
                }
            }
        }
        // The first login fails fast (a wrong password is not worth retrying); later ones,
        // after a lost connection, are retried with a growing pause.
        let session =
            login_with(&cfg.server, &cfg.jid, &cfg.password, &cfg.resource, &cfg.tls).await?;
        let mut own_bare =
            split_jid(&session.jid).map(|(b, _)| b.to_lowercase()).unwrap_or_default();
        let mut reader = session.reader;
        let (out, rx) = unbounded_channel::<String>();
        let (task, stop) = spawn_writer(session.writer, rx);
        let (mut writer_task, mut stop_writer) = (Some(task), Some(stop));
        let _ = out.send(presence(None, None, None));

        let registry = durable.registry().clone();
        let restored: HashSet<String> =
            registry.snapshot().rules().iter().map(|r| r.subscriber.to_string()).collect();
        let mut builder = Engine::builder(registry)
            .subscriber_defaults(SubscriberConfig::new().rate_limit(Some(cfg.rate_limit)));
        for jid in &restored {
            lock(&users).entry(jid.clone()).or_default();
            builder = builder.attach(jid, sink_for(jid, &users, &out, cfg.rate_limit));
        }
        let engine = builder.start(source).map_err(|e| BotError::Engine(e.to_string()))?;
        let mut state = State {
            durable,
            engine,
            users: users.clone(),
            out: out.clone(),
            attached: restored,
            asked: HashSet::new(),
            paused_path,
            rate_limit: cfg.rate_limit,
        };

        tokio::pin!(shutdown);
        let result = 'run: loop {
            let lost = loop {
                tokio::select! {
                    _ = &mut shutdown => break 'run Ok(()),
                    stanza = reader.next() => match stanza {
                        Ok(Some(s)) => state.handle(&own_bare, &s),
                        Ok(None) => break "the server closed the stream".to_string(),
                        Err(e) => break e.to_string(),
                    },
                }
            };
            // Connection lost: take the queue back from the writer, forget presences (the
            // server sends them again after the next login), and log in again.
            if let Some(stop) = stop_writer.take() {
                let _ = stop.send(());
            }
            let rx = match writer_task.take() {
                Some(t) => match t.await {
                    Ok(rx) => rx,
                    Err(_) => break Err(BotError::Engine("the writer task panicked".into())),
                },
                None => break Err(BotError::Engine("the writer task is gone".into())),
            };
            for u in lock(&users).values_mut() {
                u.resources.clear();
            }
            let mut pause = Duration::from_millis(500);
            let session = loop {
                eprintln!(
                    "streamtrack xmpp: connection lost ({lost}); logging in again in {:.1} s",
                    pause.as_secs_f64()
                );
                tokio::select! {
                    _ = &mut shutdown => break 'run Ok(()),
                    _ = tokio::time::sleep(pause) => {}
                }
                match login_with(&cfg.server, &cfg.jid, &cfg.password, &cfg.resource, &cfg.tls)
                    .await
                {
                    Ok(s) => break s,
                    Err(e) => {
                        pause = (pause * 2).min(Duration::from_secs(30));
                        eprintln!("streamtrack xmpp: login failed: {e}");
                    }
                }
            };
            eprintln!("streamtrack xmpp: logged in again as {}", session.jid);
            own_bare = split_jid(&session.jid).map(|(b, _)| b.to_lowercase()).unwrap_or_default();
            reader = session.reader;
            // Presence first, ahead of whatever queued up meanwhile.
            let mut w = session.writer;
            // A failed send here shows up in the reader at once.
            let _ = w.send(&presence(None, None, None)).await;
            let (t, st) = spawn_writer(w, rx);
            writer_task = Some(t);
            stop_writer = Some(st);
        };
        let _ = out.send(presence(None, Some("unavailable"), None));
        drop(out);
        state.engine.request_shutdown();
        let report = RunReport {
            users: state
                .attached
                .iter()
                .filter(|j| !state.durable.registry().rules_of(j).is_empty())
                .count(),
            delivered: lock(&users).values().map(|u| u.delivered).sum(),
        };
        let State { durable, engine, out: state_out, .. } = state;
        drop(state_out);
        // Sinks hold senders: the writer ends once the engine has let them go.
        let _ = tokio::task::spawn_blocking(move || engine.shutdown()).await;
        let _ = durable.sync();
        if let Some(t) = writer_task {
            let _ = t.await;
        }
        result.map(|()| report)
    }
}

/// The task writing queued stanzas; on `stop` (the connection was lost) it hands the queue
/// back, so that a new session's writer goes on with it. It closes the stream when every
/// sender is gone (shutdown).
fn spawn_writer(
    mut w: StanzaWriter,
    mut rx: UnboundedReceiver<String>,
) -> (JoinHandle<UnboundedReceiver<String>>, oneshot::Sender<()>) {
    let (stop, mut stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        // A space between stanzas every minute keeps idle connections (and NAT entries)
        // alive, and finds a dead one.
        let mut keepalive = tokio::time::interval(Duration::from_secs(60));
        keepalive.tick().await;
        loop {
            tokio::select! {
                _ = &mut stopped => return rx,
                _ = keepalive.tick() => {
                    if w.send(" ").await.is_err() {
                        let _ = (&mut stopped).await;
                        return rx;
                    }
                }
                s = rx.recv() => match s {
                    Some(s) => {
                        if w.send(&s).await.is_err() {
                            // The reader sees the loss too and stops us; keep the queue.
                            let _ = (&mut stopped).await;
                            return rx;
                        }
                    }
                    None => {
                        let _ = w.close().await;
                        return rx;
                    }
                },
            }
        }
    });
    (task, stop)
}

impl Bot {
    /// [`Bot::run`] on a runtime of its own, until SIGINT or SIGTERM (or the server closes the
    /// stream): what the command line calls, so that it needs no async runtime itself.
    pub fn run_until_signal(self, source: impl Source + 'static) -> Result<RunReport, BotError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| BotError::Engine(format!("runtime: {e}")))?;
        rt.block_on(self.run(source, async {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{signal, SignalKind};
                match signal(SignalKind::terminate()) {
                    Ok(mut term) => {
                        tokio::select! {
                            _ = tokio::signal::ctrl_c() => {}
                            _ = term.recv() => {}
                        }
                    }
                    Err(_) => {
                        let _ = tokio::signal::ctrl_c().await;
                    }
                }
            }
            #[cfg(not(unix))]
            {
                let _ = tokio::signal::ctrl_c().await;
            }
        }))
    }
}

/// The text of a delivered post: plain body and XHTML-IM body (author and link when present).
pub fn render_post(m: &Message) -> (String, Option<String>) {
    let link =
        m.urls.as_ref().and_then(|u| u.iter().find_map(|u| u.expanded_url.clone())).or_else(|| {
            m.user.as_ref().map(|u| format!("https://twitter.com/{u}/status/{}", m.id))
        });
    let mut plain = match &m.user {
        Some(u) => format!("@{u}: {}", m.text),
        None => m.text.clone(),
    };
    if let Some(l) = &link {
        plain.push_str(&format!("\n{l}"));
    }
    if m.user.is_none() && link.is_none() {
        return (plain, None);
    }
    let mut html = String::new();
    if let Some(u) = &m.user {
        html.push_str(&format!("<strong>@{}</strong>: ", escape(u)));
    }
    html.push_str(&escape(&m.text));
    if let Some(l) = &link {
        html.push_str(&format!("<br/><a href='{0}'>{0}</a>", escape(l)));
    }
    (plain, Some(html))
}

fn sink_for(
    jid: &str,
    users: &Users,
    out: &UnboundedSender<String>,
    rate_limit: u32,
) -> CallbackSink<impl FnMut(Delivery) -> Result<(), streamtrack::engine::SinkError> + Send> {
    let jid = jid.to_string();
    let users = users.clone();
    let out = out.clone();
    CallbackSink::new(move |d: Delivery| {
        let mut all = lock(&users);
        let user = all.entry(jid.clone()).or_default();
        match d {
            Delivery::Match { message, .. } => {
                if user.paused {
                    user.dropped_off += 1;
                } else if !user.deliverable() {
                    user.dropped_away += 1;
                } else {
                    user.delivered += 1;
                    let (body, html) = render_post(&message);
                    let _ = out.send(chat(&jid, &body, html.as_deref()));
                }
            }
            Delivery::Limit { track } => {
                let new = track.saturating_sub(user.dropped_rate);
                user.dropped_rate = track;
                if new > 0 && !user.paused && user.deliverable() {
                    let _ = out.send(chat(
                        &jid,
                        &format!(
                            "Rate cap: {new} more matching posts were not delivered (over \
                             {rate_limit} per second; {track} in all)."
                        ),
                        None,
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    })
}

struct State {
    durable: DurableRegistry,
    engine: Engine,
    users: Users,
    out: UnboundedSender<String>,
    attached: HashSet<String>,
    asked: HashSet<String>,
    paused_path: PathBuf,
    rate_limit: u32,
}

fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

impl State {
    fn handle(&mut self, own_bare: &str, s: &Element) {
        if s.name == "iq" {
            self.on_iq(s);
            return;
        }
        let Some(from) = s.attr("from") else { return };
        let Some((bare, resource)) = split_jid(from) else { return };
        let bare = bare.to_lowercase();
        if bare == own_bare || !bare.contains('@') {
            return;
        }
        match s.name.as_str() {
            "presence" => self.on_presence(&bare, resource, s),
            "message" => {
                let kind = s.attr("type").unwrap_or("normal");
                if kind == "error" {
                    // The server could not deliver to the user: treat as offline.
                    lock(&self.users).entry(bare).or_default().resources.clear();
                    return;
                }
                if kind != "chat" && kind != "normal" {
                    return;
                }
                let Some(body) = s.child("body") else { return };
                {
                    let mut u = lock(&self.users);
                    let user = u.entry(bare.clone()).or_default();
                    // Whoever writes to the bot is online, until a presence says otherwise.
                    user.resources.entry(resource.to_string()).or_insert(Show::Available);
                }
                if self.asked.insert(bare.clone()) {
                    let _ = self.out.send(presence(Some(&bare), Some("subscribe"), None));
                }
                let reply = self.command(&bare, &body.text);
                let _ = self.out.send(chat(from, &reply, None));
            }
            _ => {}
        }
    }

    /// Requests must be answered (RFC 6120, 8.2.3): a ping (XEP-0199) with a result,
    /// anything else with `service-unavailable`.
    fn on_iq(&mut self, iq: &Element) {
        let kind = iq.attr("type").unwrap_or("");
        if kind != "get" && kind != "set" {
            return;
        }
        let id = escape(iq.attr("id").unwrap_or(""));
        let to = iq.attr("from").map(|f| format!(" to='{}'", escape(f))).unwrap_or_default();
        let is_ping = iq.child("ping").is_some_and(|p| p.attr("xmlns") == Some("urn:xmpp:ping"));
        let _ = self.out.send(if is_ping {
            format!("<iq type='result' id='{id}'{to}/>")
        } else {
            format!(
                "<iq type='error' id='{id}'{to}><error type='cancel'><service-unavailable \
                 xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>"
            )
        });
    }

    fn on_presence(&mut self, bare: &str, resource: &str, p: &Element) {
        match p.attr("type") {
            None => {
                lock(&self.users)
                    .entry(bare.to_string())
                    .or_default()
                    .resources
                    .insert(resource.to_string(), Show::from_element(p));
            }
            Some("unavailable") => {
                if let Some(u) = lock(&self.users).get_mut(bare) {
                    u.resources.remove(resource);
                }
            }
            Some("subscribe") => {
                let _ = self.out.send(presence(Some(bare), Some("subscribed"), None));
                if self.asked.insert(bare.to_string()) {
                    let _ = self.out.send(presence(Some(bare), Some("subscribe"), None));
                }
            }
            _ => {}
        }
    }

    fn save_paused(&self) {
        let list: Vec<String> =
            lock(&self.users).iter().filter(|(_, u)| u.paused).map(|(j, _)| j.clone()).collect();
        let tmp = self.paused_path.with_extension("tmp");
        let text = list.join("\n");
        if std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &self.paused_path))
            .is_err()
        {
            eprintln!("streamtrack xmpp: could not save {}", self.paused_path.display());
        }
    }

    fn phrases_of(&self, jid: &str) -> Vec<(streamtrack::registry::RuleId, String)> {
        self.durable.registry().rules_of(jid).iter().map(|r| (r.id, r.rule.to_string())).collect()
    }

    fn command(&mut self, jid: &str, body: &str) -> String {
        let cmd = match parse(body) {
            Ok(c) => c,
            Err(e) => return e.to_string(),
        };
        match cmd {
            Command::Track { phrases, column } => self.track(jid, &phrases, column),
            Command::Untrack { phrases, column } => self.untrack(jid, &phrases, column),
            Command::UntrackAll => {
                let ids: Vec<_> = self.phrases_of(jid).into_iter().map(|(id, _)| id).collect();
                for id in &ids {
                    if let Err(e) = self.durable.unsubscribe(*id) {
                        return format!("Could not untrack: {e}");
                    }
                }
                format!("Stopped tracking all {}.", plural(ids.len(), "phrase"))
            }
            Command::Tracks => {
                let p = self.phrases_of(jid);
                if p.is_empty() {
                    "Not tracking anything. Say: track PHRASES".into()
                } else {
                    let list: Vec<String> = p.into_iter().map(|(_, t)| t).collect();
                    format!("Tracking {}: {}", plural(list.len(), "phrase"), list.join(", "))
                }
            }
            Command::Off => {
                lock(&self.users).entry(jid.to_string()).or_default().paused = true;
                self.save_paused();
                "Deliveries off: matching posts are dropped (and counted in status) until you say on."
                    .into()
            }
            Command::On => {
                lock(&self.users).entry(jid.to_string()).or_default().paused = false;
                self.save_paused();
                "Deliveries on.".into()
            }
            Command::Status => {
                let n = self.phrases_of(jid).len();
                let u = lock(&self.users);
                let user = u.get(jid);
                let (paused, delivered, off, away, rate, seen) =
                    user.map_or((false, 0, 0, 0, 0, "offline"), |u| {
                        (
                            u.paused,
                            u.delivered,
                            u.dropped_off,
                            u.dropped_away,
                            u.dropped_rate,
                            u.presence_word(),
                        )
                    });
                format!(
                    "Tracking {n} of {MAX_PHRASES} phrases; deliveries {}; you are {seen}; \
                     delivered {delivered}, dropped {} ({off} while off, {away} while \
                     dnd/xa/offline, {rate} over the rate cap of {} per second).",
                    if paused { "off" } else { "on" },
                    off + away + rate,
                    self.rate_limit,
                )
            }
            Command::Help(topic) => help(topic.as_deref()),
        }
    }

    /// Canonical phrases of a track value, or the error reply (column in the message).
    fn phrases(text: &str, column: usize) -> Result<Vec<String>, String> {
        let rule = Rule::parse_track(text).map_err(|e| {
            format!("Cannot track that: column {}: {}", column + e.column() - 1, e.message())
        })?;
        let mut seen = HashSet::new();
        Ok(rule
            .to_string()
            .split(',')
            .map(str::to_string)
            .filter(|p| seen.insert(p.clone()))
            .collect())
    }

    fn track(&mut self, jid: &str, text: &str, column: usize) -> String {
        let phrases = match Self::phrases(text, column) {
            Ok(p) => p,
            Err(reply) => return reply,
        };
        let have: HashSet<String> = self.phrases_of(jid).into_iter().map(|(_, t)| t).collect();
        let new: Vec<&String> = phrases.iter().filter(|p| !have.contains(*p)).collect();
        if have.len() + new.len() > MAX_PHRASES {
            return format!(
                "Cannot track that: you track {} and this adds {}; the limit is {MAX_PHRASES} \
                 phrases. Untrack some first.",
                have.len(),
                new.len()
            );
        }
        if !new.is_empty() && self.attached.insert(jid.to_string()) {
            let sink = sink_for(jid, &self.users, &self.out, self.rate_limit);
            let _ = self.engine.attach(jid, sink);
        }
        for p in &new {
            let rule = match Rule::parse_track(p) {
                Ok(r) => r,
                Err(e) => return format!("Cannot track '{p}': {e}"),
            };
            match self.durable.subscribe(jid, rule, None) {
                Ok(_) => {}
                Err(DurableError::Registry(e)) => return format!("Cannot track '{p}': {e}"),
                Err(e) => return format!("Cannot track '{p}': could not store it: {e}"),
            }
        }
        let total = have.len() + new.len();
        let mut reply = if new.is_empty() {
            format!("Already tracking {}", phrases.join(", "))
        } else {
            format!(
                "Tracking {} ({} of {MAX_PHRASES} phrases)",
                new.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "),
                total
            )
        };
        let already = phrases.len() - new.len();
        if !new.is_empty() && already > 0 {
            reply.push_str(&format!("; already tracking {}", plural(already, "other")));
        }
        reply
    }

    fn untrack(&mut self, jid: &str, text: &str, column: usize) -> String {
        let phrases = match Self::phrases(text, column) {
            Ok(p) => p,
            Err(reply) => return reply.replacen("Cannot track", "Cannot untrack", 1),
        };
        let have = self.phrases_of(jid);
        let mut removed = Vec::new();
        let mut missing = Vec::new();
        for p in &phrases {
            match have.iter().find(|(_, t)| t == p) {
                Some((id, _)) => {
                    if let Err(e) = self.durable.unsubscribe(*id) {
                        return format!("Could not untrack '{p}': {e}");
                    }
                    removed.push(p.as_str());
                }
                None => missing.push(p.as_str()),
            }
        }
        let mut reply = String::new();
        if !removed.is_empty() {
            reply = format!("Stopped tracking {}", removed.join(", "));
        }
        if !missing.is_empty() {
            if !reply.is_empty() {
                reply.push_str("; ");
            }
            reply.push_str(&format!("Not tracking {}", missing.join(", ")));
        }
        reply
    }
}

/// The default state directory for a bot JID: `$XDG_STATE_HOME/streamtrack/xmpp/JID`, else
/// `$HOME/.local/state/streamtrack/xmpp/JID`, else `streamtrack-xmpp-JID` in the working
/// directory.
pub fn default_state_dir(jid: &str) -> PathBuf {
    let bare = split_jid(jid).map_or(jid, |(b, _)| b).replace(['/', '\\'], "_");
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return Path::new(&d).join("streamtrack/xmpp").join(bare);
    }
    if let Some(h) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return Path::new(&h).join(".local/state/streamtrack/xmpp").join(bare);
    }
    PathBuf::from(format!("streamtrack-xmpp-{bare}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posts_render_with_author_and_link_escaped() {
        let m = Message::new("42", "a <b> & c").with_user("ann");
        let (plain, html) = render_post(&m);
        assert_eq!(plain, "@ann: a <b> & c\nhttps://twitter.com/ann/status/42");
        assert_eq!(
            html.unwrap(),
            "<strong>@ann</strong>: a &lt;b&gt; &amp; c<br/><a href='https://twitter.com/ann/status/42'>https://twitter.com/ann/status/42</a>"
        );
        assert_eq!(render_post(&Message::new("1", "plain")), ("plain".to_string(), None));
    }

    #[test]
    fn phrase_errors_give_the_column_in_the_message() {
        let long = "x".repeat(61);
        let err = State::phrases(&format!("rust,{long}"), 7).unwrap_err();
        assert!(err.starts_with("Cannot track that: column 12: phrase 2"), "{err}");
        assert!(err.contains("61 bytes; the limit is 60"), "{err}");
        assert_eq!(State::phrases("Rust, wii  fit,rust", 1).unwrap(), ["rust", "wii fit"]);
    }
}
