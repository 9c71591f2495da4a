//! `streamtrack demo`: placeholder replaced below.
use clap::Args;
use std::process::ExitCode;

#[derive(Args)]
pub struct DemoArgs {}

pub fn run(_args: DemoArgs) -> ExitCode {
    ExitCode::SUCCESS
}
