//! Track over instant messaging: an XMPP bot for streamtrack.
//!
//! The bot logs in as its own account; every user who chats with it becomes a subscriber of a
//! [`DurableRegistry`](streamtrack::durable::DurableRegistry) (the user's bare JID), each
//! tracked phrase one track-dialect rule. The engine matches a stream of posts and each match
//! reaches the user once as a chat message (plain body plus an XHTML-IM body with the author
//! and a link), unless the user said `off`, is `dnd`, `xa` or offline (then the match is
//! dropped and counted in `status`), or is over the rate cap (a notice says how many were
//! dropped). Commands and replies are in README.md, "Track over instant messaging".
#![deny(missing_docs)]

mod bot;
pub mod client;
pub mod command;
pub mod server;
pub mod xml;

pub use bot::{
    default_state_dir, render_post, Bot, BotBuilder, BotError, RunReport, Show, MAX_PHRASES,
};
