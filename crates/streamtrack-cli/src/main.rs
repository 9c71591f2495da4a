//! The `streamtrack` command-line tool.

mod analytics_bench;
mod bench;
mod bursts_cmd;
mod churn_bench;
mod demo;
mod dry_run_cmd;
mod engine_bench;
mod explain_cmd;
mod flood_bench;
mod format;
mod match_cmd;
mod measure;
mod nats_cmd;
mod run_cmd;
mod sentiment_cmd;
mod serve_cmd;
mod state;
mod watch_cmd;
mod xmpp_cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// The engine allocates a message on the thread that reads it and frees it on whichever
/// thread drops the last reference (often a dispatcher); glibc's allocator takes a lock of the
/// owning arena for each such free, which the engine's threads then contend on; jemalloc's
/// thread caches batch them (README, "Allocator").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Real-time keyword tracking over message streams.
#[derive(Parser)]
#[command(name = "streamtrack", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// What `match` and `run` say about their input (one reader, one policy for both).
macro_rules! input_help {
    () => {
        "Input: one message per line, JSON when the line starts with `{`, otherwise plain text \
(id: the line number); lines up to 16 MiB. Bad lines are skipped: the first 10 are reported as \
FILE:LINE:COLUMN, then counted."
    };
}
pub(crate) use input_help;

/// `match --help`'s closing text: its input and exit statuses (`run` has its own statuses).
const MATCH_HELP: &str = concat!(
    input_help!(),
    "\nExit status: 0 done; 1 the input cannot be read, or any bad line under --strict; 2 a \
usage error or a bad rules file (unknown key, duplicate id, invalid rule, no rules: nothing is read)."
);

#[derive(Subcommand)]
enum Command {
    /// Match messages (JSON Lines) against rules and print the matching messages.
    #[command(after_help = MATCH_HELP)]
    Match(match_cmd::MatchArgs),
    /// Benchmarks: `bench match` (throughput, compile time, memory; against aho-corasick).
    Bench(bench::BenchArgs),
    /// Run the streaming engine: messages (JSON Lines) in, every subscriber's deliveries out.
    Run(run_cmd::RunArgs),
    /// The live view (a page in the browser) on a built-in 60 s story; prints the URL, ends by itself.
    Demo(demo::DemoArgs),
    /// Score the reaction (VADER sentiment) of each message: JSON Lines in, each object out
    /// with `"reaction": {"compound", "pos", "neu", "neg", "label"}` added.
    Sentiment(sentiment_cmd::SentimentArgs),
    /// Detect bursts in a `timestamp,value` counts series (CSV), online: score and decision
    /// per row.
    Bursts(bursts_cmd::BurstsArgs),
    /// Explain why a rule matches a message or not: a tree mirroring the rule.
    Explain(explain_cmd::ExplainArgs),
    /// Count what rules would match over a file of messages, without subscribing them.
    DryRun(dry_run_cmd::DryRunArgs),
    /// Watch the tracked conversation live in the terminal: per rule its volume, reactions,
    /// bursts and latest message.
    Watch(watch_cmd::WatchArgs),
    /// Run on NATS JetStream (instances sharing a consumer and a KV bucket of rules), manage
    /// the shared rules, publish messages.
    Nats(nats_cmd::NatsArgs),
    /// Serve the live view: a page, a JSON API and an SSE stream of what the rules match.
    Serve(serve_cmd::ServeArgs),
    /// Track over instant messaging: an XMPP bot; users chat `track PHRASES` and get matches.
    Xmpp(xmpp_cmd::XmppArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Match(args) => match_cmd::run(args),
        Command::Run(args) => run_cmd::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Sentiment(args) => sentiment_cmd::run(args),
        Command::Bursts(args) => bursts_cmd::run(args),
        Command::Explain(args) => explain_cmd::run(args),
        Command::DryRun(args) => dry_run_cmd::run(args),
        Command::Watch(args) => watch_cmd::run(args),
        Command::Nats(args) => nats_cmd::run(args),
        Command::Serve(args) => serve_cmd::run(args),
        Command::Xmpp(args) => xmpp_cmd::run(args),
    }
}
