//! `keycard`: one binary that serves, administers and signs. Each subcommand lives in its own
//! module; this file only parses arguments and dispatches. Errors are printed as one clear
//! sentence (with its causes) and exit with status 1; argument errors exit with status 2.
// Doc comments on arguments are the `--help` text users read, not rustdoc: no backticks there.
#![allow(clippy::doc_markdown)]

mod nonce;
mod sign;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "keycard",
    version,
    about = "NetSuite-compatible token-based authentication"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sign a request with OAuth 1.0a (TBA) and print its Authorization header.
    Sign(sign::SignArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sign(args) => sign::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
