//! The `streamtrack` command-line tool.

mod analytics_bench;
mod bench;
mod bursts_cmd;
mod churn_bench;
mod demo;
mod engine_bench;
mod flood_bench;
mod format;
mod match_cmd;
mod run_cmd;
mod sentiment_cmd;

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

#[derive(Subcommand)]
enum Command {
    /// Match messages (JSON Lines) against rules and print the matching messages.
    Match(match_cmd::MatchArgs),
    /// Benchmarks: `bench match` (throughput, compile time, memory; against aho-corasick).
    Bench(bench::BenchArgs),
    /// Run the streaming engine: messages (JSON Lines) in, every subscriber's deliveries out.
    Run(run_cmd::RunArgs),
    /// Track a built-in stream of messages against built-in subscriptions and show live figures.
    Demo(demo::DemoArgs),
    /// Score the reaction (VADER sentiment) of each message: JSON Lines in, each object out
    /// with `"reaction": {"compound", "pos", "neu", "neg", "label"}` added.
    Sentiment(sentiment_cmd::SentimentArgs),
    /// Detect bursts in a `timestamp,value` counts series (CSV), online: score and decision
    /// per row.
    Bursts(bursts_cmd::BurstsArgs),
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
    }
}
