//! The live view of streamtrack: a page showing, per rule, volume over time, reactions and
//! bursts while the engine runs; a JSON API with every figure of the page; and a
//! Server-Sent Events stream of live updates (event ids, resume with `Last-Event-ID`,
//! heartbeats, an explicit `gap` event for a client that fell behind).
//!
//! - [`View`]: the state shared by the engine (its sink and burst events), the input reader
//!   and the handlers, with the answers of the JSON API;
//! - [`EventClock`] and [`live_rate`]: where the window's right edge is, and the current
//!   rate of a series (shared with `streamtrack watch`);
//! - [`Hub`]: the bounded ring of numbered events the SSE clients read at their own pace;
//! - [`Server`]: the HTTP server (axum on tokio, a thread of its own).
//!
//! The page's HTML, JavaScript (plain canvas code) and CSS are compiled into the crate: it
//! works offline.
#![deny(missing_docs)]

pub mod feed;
pub mod hub;
pub mod live;
pub mod server;
pub mod view;

pub use feed::{spawn_feed, FeedReport, Input};
pub use hub::{Event, Hub};
pub use live::{live_rate, EventClock};
pub use server::{Server, ServerConfig};
pub use view::{now_ms, NewViewRule, Reply, View, ViewConfig, ViewRules, VIEW_SUBSCRIBER};
