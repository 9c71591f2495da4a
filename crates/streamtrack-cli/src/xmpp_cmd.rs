//! `streamtrack xmpp`: the track bot over XMPP (crate `streamtrack-xmpp`; README, "Track over
//! instant messaging").

use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use streamtrack::engine::jsonl::JsonLinesSource;
use streamtrack_xmpp::client::Tls;
use streamtrack_xmpp::{default_state_dir, Bot};

/// Arguments of `streamtrack xmpp`.
#[derive(Args)]
pub struct XmppArgs {
    /// The bot's account, e.g. `bot@example.org`.
    #[arg(long)]
    jid: String,
    /// A file holding the bot's password (its first line).
    #[arg(long)]
    password_file: PathBuf,
    /// The XMPP server's client port, `HOST:PORT` (plain TCP unless --tls: then loopback or a
    /// trusted link only).
    #[arg(long)]
    server: String,
    /// Require STARTTLS; the certificate must be valid for the JID's domain.
    #[arg(long)]
    tls: bool,
    /// Also trust the certificates in this PEM file (a private CA, or a loopback server's
    /// self-signed certificate); implies --tls.
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// Posts, one JSON object (or plain text line) per line; `-` (the default) is standard
    /// input. The bot keeps answering commands after the input ends.
    #[arg(long, default_value = "-")]
    input: String,
    /// Where the users' phrases and on/off choices are kept [default:
    /// $XDG_STATE_HOME/streamtrack/xmpp/JID, or ~/.local/state/streamtrack/xmpp/JID].
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Deliveries per user per second; matches above it are dropped and the user told how many.
    #[arg(long, default_value_t = 60)]
    rate_limit: u32,
}

/// Runs the bot until SIGINT/SIGTERM.
pub fn run(args: XmppArgs) -> ExitCode {
    let password = match std::fs::read_to_string(&args.password_file) {
        Ok(p) => p.lines().next().unwrap_or("").to_string(),
        Err(e) => {
            eprintln!("streamtrack xmpp: {}: {e}", args.password_file.display());
            return ExitCode::from(2);
        }
    };
    let state_dir = args.state_dir.unwrap_or_else(|| default_state_dir(&args.jid));
    let bot = Bot::builder(&args.jid, password, &args.server, &state_dir)
        .rate_limit(args.rate_limit)
        .tls(if args.tls || args.tls_ca.is_some() {
            Tls::StartTls { ca_file: args.tls_ca }
        } else {
            Tls::Off
        })
        .build();
    eprintln!(
        "streamtrack xmpp: {} at {} (state in {})",
        args.jid,
        args.server,
        state_dir.display()
    );
    let result = if args.input == "-" {
        bot.run_until_signal(JsonLinesSource::stdin())
    } else {
        match JsonLinesSource::open(&args.input) {
            Ok(src) => bot.run_until_signal(src),
            Err(e) => {
                eprintln!("streamtrack xmpp: {}: {e}", args.input);
                return ExitCode::from(1);
            }
        }
    };
    match result {
        Ok(r) => {
            eprintln!(
                "streamtrack xmpp: stopped; {} users, {} posts delivered",
                r.users, r.delivered
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("streamtrack xmpp: {e}");
            ExitCode::from(1)
        }
    }
}
