//! The HTTP server: the page and its assets, the JSON API and the SSE stream, with a client
//! limit, request size limits and an optional token.

use crate::hub::Hub;
use crate::view::{NewViewRule, Reply, View};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::Router;
use futures_util::stream::Stream;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const INDEX_HTML: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const APP_CSS: &str = include_str!("../assets/app.css");

/// Settings of a [`Server`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServerConfig {
    /// The token rule changes need (`Authorization: Bearer T` or `?token=T`).
    pub token: Option<String>,
    /// Whether reads (page, API, events) need the token too.
    pub token_for_reads: bool,
    /// Whether rules may be changed at all (off when bound beyond loopback without a token).
    pub allow_changes: bool,
    /// Concurrent SSE clients; one more gets 503 (default 64).
    pub max_clients: usize,
    /// Largest request body in bytes (default 64 KiB); larger ones get 413.
    pub max_body: usize,
    /// Interval of the `heartbeat` event on idle streams (default 5 s).
    pub heartbeat: Duration,
    /// Events a client is sent per wake-up (its buffer in the server; default 256).
    pub client_batch: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            token: None,
            token_for_reads: false,
            allow_changes: true,
            max_clients: 64,
            max_body: 64 << 10,
            heartbeat: Duration::from_secs(5),
            client_batch: 256,
        }
    }
}

impl ServerConfig {
    /// The same settings with a token for rule changes (and reads when `reads`).
    pub fn token(mut self, token: Option<String>, reads: bool) -> Self {
        self.token = token.filter(|t| !t.is_empty());
        self.token_for_reads = reads && self.token.is_some();
        self
    }
    /// The same settings with another client limit.
    pub fn max_clients(mut self, n: usize) -> Self {
        self.max_clients = n;
        self
    }
    /// The same settings with another heartbeat interval.
    pub fn heartbeat(mut self, d: Duration) -> Self {
        self.heartbeat = d.max(Duration::from_millis(100));
        self
    }
    /// Refuses rule changes unless a token is set: for addresses beyond loopback.
    pub fn for_address(mut self, addr: &SocketAddr) -> Self {
        self.allow_changes = addr.ip().is_loopback() || self.token.is_some();
        self
    }
}

struct App {
    view: View,
    cfg: ServerConfig,
    clients: Arc<AtomicUsize>,
}

type Shared = Arc<App>;

/// A running server (its own thread and tokio runtime); stopped by [`Server::stop`] or when
/// dropped.
pub struct Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Server {
    /// Binds `addr` (port 0: any free port) and serves `view` from a thread of its own.
    pub fn start(addr: SocketAddr, view: View, cfg: ServerConfig) -> std::io::Result<Server> {
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("streamtrack-web")
            .enable_all()
            .build()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = Arc::new(App { view, cfg, clients: Arc::new(AtomicUsize::new(0)) });
        let router = router(app);
        let listener = {
            let _g = rt.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        let thread =
            std::thread::Builder::new().name("streamtrack-web-server".into()).spawn(move || {
                rt.block_on(async move {
                    let serve = axum::serve(listener, router);
                    tokio::select! {
                        r = serve => { if let Err(e) = r { eprintln!("error: web server: {e}"); } }
                        _ = rx => {}
                    }
                });
                rt.shutdown_timeout(Duration::from_millis(500));
            })?;
        Ok(Server { addr, stop: Some(tx), thread: Some(thread) })
    }

    /// The address served (with the port chosen when 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops serving (open streams are closed) and waits for the server's thread.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.halt();
    }
}

fn router(app: Shared) -> Router {
    let max_body = app.cfg.max_body;
    Router::new()
        .route("/", get(index))
        .route("/app.js", get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }))
        .route("/app.css", get(|| async { asset("text/css; charset=utf-8", APP_CSS) }))
        .route("/events", get(events))
        .route("/api/status", get(status))
        .route("/api/rules", get(list_rules).post(add_rule))
        .route("/api/rules/{id}", delete(remove_rule))
        .route("/api/series", get(series))
        .route("/api/messages", get(messages))
        .route("/api/bursts", get(bursts))
        .fallback(|| async { reply(Reply::error(404, "no such path")) })
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(app)
}

fn security_headers(r: &mut Response) {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

fn asset(ct: &'static str, body: &'static str) -> Response {
    let mut r = ([(header::CONTENT_TYPE, ct)], body).into_response();
    security_headers(&mut r);
    r
}

fn reply(r: Reply) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = if r.status == 204 {
        status.into_response()
    } else {
        (status, [(header::CONTENT_TYPE, "application/json")], r.body.to_string()).into_response()
    };
    security_headers(&mut resp);
    resp
}

/// Whether the request carries the token (`Authorization: Bearer T` or `?token=T`).
fn has_token(app: &App, headers: &HeaderMap, q: &HashMap<String, String>) -> bool {
    let Some(t) = &app.cfg.token else { return true };
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let given = bearer.or(q.get("token").map(String::as_str));
    given.is_some_and(|g| constant_time_eq(g.as_bytes(), t.as_bytes()))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn check_read(app: &App, headers: &HeaderMap, q: &HashMap<String, String>) -> Option<Reply> {
    (app.cfg.token_for_reads && !has_token(app, headers, q))
        .then(|| Reply::error(401, "this server needs its token (--token) for reads"))
}

fn check_change(app: &App, headers: &HeaderMap, q: &HashMap<String, String>) -> Option<Reply> {
    if !app.cfg.allow_changes {
        return Some(Reply::error(
            403,
            "rule changes are off: the server is bound beyond loopback without --token",
        ));
    }
    (!has_token(app, headers, q))
        .then(|| Reply::error(401, "rule changes need the server's token (--token)"))
}

/// Query parameters, or a 400 with the reason (never a panic on bad input).
type Q = Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>;

fn query(q: Q) -> Result<HashMap<String, String>, Reply> {
    q.map(|Query(m)| m).map_err(|e| Reply::error(400, format!("bad query: {e}")))
}

/// The query of a read, or the reply refusing it (bad query, missing read token).
fn read_query(app: &App, headers: &HeaderMap, q: Q) -> Result<HashMap<String, String>, Reply> {
    let q = query(q)?;
    match check_read(app, headers, &q) {
        Some(r) => Err(r),
        None => Ok(q),
    }
}

/// The query of a rule change, or the reply refusing it (bad query, changes off, no token).
fn change_query(app: &App, headers: &HeaderMap, q: Q) -> Result<HashMap<String, String>, Reply> {
    let q = query(q)?;
    match check_change(app, headers, &q) {
        Some(r) => Err(r),
        None => Ok(q),
    }
}

/// A read the view answers from its query, once the query and token are checked.
async fn read_view(
    app: Shared,
    headers: HeaderMap,
    q: Q,
    f: fn(&View, &HashMap<String, String>) -> Reply,
) -> Response {
    let q = match read_query(&app, &headers, q) {
        Ok(q) => q,
        Err(r) => return reply(r),
    };
    let v = app.view.clone();
    run_blocking(move || f(&v, &q)).await
}

async fn index(State(app): State<Shared>, headers: HeaderMap, q: Q) -> Response {
    if let Err(r) = read_query(&app, &headers, q) {
        return reply(r);
    }
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn status(State(app): State<Shared>, headers: HeaderMap, q: Q) -> Response {
    if let Err(r) = read_query(&app, &headers, q) {
        return reply(r);
    }
    let mut s = app.view.status();
    if let Some(o) = s.body.as_object_mut() {
        o.insert("clients".into(), app.clients.load(Ordering::Relaxed).into());
        o.insert("changes".into(), app.cfg.allow_changes.into());
    }
    reply(s)
}

async fn list_rules(State(app): State<Shared>, headers: HeaderMap, q: Q) -> Response {
    read_view(app, headers, q, View::rules).await
}

async fn series(State(app): State<Shared>, headers: HeaderMap, q: Q) -> Response {
    read_view(app, headers, q, View::series).await
}

async fn messages(State(app): State<Shared>, headers: HeaderMap, q: Q) -> Response {
    read_view(app, headers, q, View::messages).await
}

async fn bursts(State(app): State<Shared>, headers: HeaderMap, q: Q) -> Response {
    read_view(app, headers, q, View::bursts).await
}

/// The view's answers take locks shared with the engine: off the async workers.
async fn run_blocking(f: impl FnOnce() -> Reply + Send + 'static) -> Response {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => reply(r),
        Err(_) => reply(Reply::error(500, "internal error")),
    }
}

/// The 1-based column of byte `offset` of `text`.
fn column_at(text: &[u8], line: usize, column: usize) -> usize {
    // serde_json counts bytes on the line; report code points.
    let mut start = 0;
    for _ in 1..line {
        match text[start..].iter().position(|&b| b == b'\n') {
            Some(p) => start += p + 1,
            None => break,
        }
    }
    let end = (start + column.saturating_sub(1)).min(text.len());
    String::from_utf8_lossy(&text[start..end]).chars().count() + 1
}

async fn add_rule(State(app): State<Shared>, headers: HeaderMap, q: Q, body: Bytes) -> Response {
    let q = match change_query(&app, &headers, q) {
        Ok(q) => q,
        Err(r) => return reply(r),
    };
    let dry_run = match q.get("dry_run").map(String::as_str) {
        None | Some("false") | Some("0") => false,
        Some("true") | Some("1") | Some("") => true,
        Some(other) => {
            return reply(Reply::error(400, format!("dry_run: true or false, not {other:?}")))
        }
    };
    let rule: NewViewRule = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            let col = column_at(&body, e.line(), e.column());
            return reply(Reply {
                status: 400,
                body: serde_json::json!({
                    "error": format!("request body: {e}"),
                    "column": col,
                }),
            });
        }
    };
    let v = app.view.clone();
    run_blocking(move || v.add_rule(rule, dry_run)).await
}

async fn remove_rule(
    State(app): State<Shared>,
    headers: HeaderMap,
    q: Q,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = change_query(&app, &headers, q) {
        return reply(r);
    }
    let v = app.view.clone();
    run_blocking(move || v.remove_rule(&id)).await
}

/// Decrements the client count when a stream ends.
struct ClientSlot(Arc<AtomicUsize>);

impl Drop for ClientSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

struct Client {
    view: View,
    rx: tokio::sync::watch::Receiver<u64>,
    cursor: u64,
    queue: VecDeque<SseEvent>,
    heartbeat: Duration,
    batch: usize,
    _slot: ClientSlot,
}

fn hub_read(hub: &Hub, c: &mut Client) {
    let r = hub.read_after(c.cursor, c.batch);
    if r.missed > 0 {
        let data = serde_json::json!({
            "missed": r.missed,
            "reason": "this client fell behind (or resumed too late): events were dropped \
                       for it; figures are refetched",
        });
        c.queue.push_back(SseEvent::default().event("gap").data(data.to_string()));
    }
    for e in r.events {
        c.cursor = e.id;
        c.queue.push_back(SseEvent::default().id(e.id.to_string()).event(e.kind).data(&e.data));
    }
}

async fn events(State(app): State<Shared>, headers: HeaderMap, q: Q) -> Response {
    if let Err(r) = read_query(&app, &headers, q) {
        return reply(r);
    }
    let last = match headers.get("last-event-id").map(|v| v.to_str().map(str::parse::<u64>)) {
        None => None,
        Some(Ok(Ok(n))) => Some(n),
        Some(_) => return reply(Reply::error(400, "Last-Event-ID: not an event id")),
    };
    let n = app.clients.fetch_add(1, Ordering::SeqCst);
    let slot = ClientSlot(app.clients.clone());
    if n >= app.cfg.max_clients {
        return reply(Reply::error(
            503,
            format!("too many live clients (limit {}); retry later", app.cfg.max_clients),
        ));
    }
    let hub = app.view.hub();
    let rx = hub.subscribe();
    let last_id = hub.last_id();
    let mut client = Client {
        view: app.view.clone(),
        rx,
        cursor: last_id,
        queue: VecDeque::new(),
        heartbeat: app.cfg.heartbeat,
        batch: app.cfg.client_batch.max(1),
        _slot: slot,
    };
    let hello = serde_json::json!({ "last_event_id": last_id, "resumed": last.is_some() });
    client.queue.push_back(
        SseEvent::default().event("hello").retry(Duration::from_secs(2)).data(hello.to_string()),
    );
    if let Some(l) = last {
        if l > last_id {
            let data = serde_json::json!({ "missed": null, "reason": "unknown event id (the server restarted?)" });
            client.queue.push_back(SseEvent::default().event("gap").data(data.to_string()));
        } else {
            client.cursor = l;
            let v = client.view.clone();
            hub_read(v.hub(), &mut client);
        }
    }
    let mut resp = Sse::new(stream(client)).into_response();
    resp.headers_mut().insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}

fn stream(client: Client) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    futures_util::stream::unfold(client, |mut c| async move {
        loop {
            if let Some(e) = c.queue.pop_front() {
                return Some((Ok(e), c));
            }
            let view = c.view.clone();
            hub_read(view.hub(), &mut c);
            if !c.queue.is_empty() {
                continue;
            }
            match tokio::time::timeout(c.heartbeat, c.rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return None,
                Err(_) => {
                    let data =
                        serde_json::json!({ "clock": view.clock_ms(), "last_event_id": c.cursor });
                    c.queue
                        .push_back(SseEvent::default().event("heartbeat").data(data.to_string()));
                }
            }
        }
    })
}
