//! `keycard`: one binary that serves, administers and signs. Each subcommand lives in its own
//! module; this file only parses arguments and dispatches. Errors are printed as one clear
//! sentence (with its causes) and exit with status 1; argument errors exit with status 2.
// Doc comments on arguments are the `--help` text users read, not rustdoc: no backticks there.
#![allow(clippy::doc_markdown)]

mod admin;
mod confirm;
mod lockfile;
mod nonce;
mod serve;
mod sign;
mod toolkit;

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
    /// Run the authenticating server (REST, RESTlet and token endpoints) on the directory.
    Serve {
        #[command(flatten)]
        args: serve::ServeArgs,
        #[command(flatten)]
        store: admin::StoreArgs,
    },
    /// Create a demo account, integration, role, user and token, and print the credentials once.
    Init {
        #[command(flatten)]
        args: admin::init::InitArgs,
        #[command(flatten)]
        store: admin::StoreArgs,
    },
    /// Manage accounts.
    Account {
        #[command(subcommand)]
        command: admin::account::AccountCommand,
        #[command(flatten)]
        store: admin::StoreArgs,
    },
    /// Manage integration records and their consumer credentials.
    Integration {
        #[command(subcommand)]
        command: admin::integration::IntegrationCommand,
        #[command(flatten)]
        store: admin::StoreArgs,
        #[command(flatten)]
        account: admin::AccountArg,
    },
    /// Manage roles and their permissions.
    Role {
        #[command(subcommand)]
        command: admin::role::RoleCommand,
        #[command(flatten)]
        store: admin::StoreArgs,
        #[command(flatten)]
        account: admin::AccountArg,
    },
    /// Manage users and the roles they hold.
    User {
        #[command(subcommand)]
        command: admin::user::UserCommand,
        #[command(flatten)]
        store: admin::StoreArgs,
        #[command(flatten)]
        account: admin::AccountArg,
    },
    /// Manage access tokens.
    Token {
        #[command(subcommand)]
        command: admin::token::TokenCommand,
        #[command(flatten)]
        store: admin::StoreArgs,
        #[command(flatten)]
        account: admin::AccountArg,
    },
    /// Read the login audit trail: every attempt with NetSuite's Detail code and the diagnosis.
    Audit {
        #[command(subcommand)]
        command: admin::audit::AuditCommand,
        #[command(flatten)]
        store: admin::StoreArgs,
        #[command(flatten)]
        account: admin::AccountArg,
    },
    /// Integrators: saved profiles by authentication ID (list, show, add, delete).
    Profile {
        #[command(subcommand)]
        command: toolkit::profile::ProfileCommand,
        #[command(flatten)]
        config: toolkit::ConfigDir,
        /// Print JSON instead of tables, for scripts.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Integrators: get a token through the three-step flow (browser) and save it as a profile.
    Login(toolkit::login::LoginArgs),
    /// Integrators: one signed request with a saved profile; prints the JSON answer.
    Call(toolkit::call::CallArgs),
    /// Integrators: tokeninfo plus one REST call; prints account, integration, user, role, timings.
    TestConnection(toolkit::connection::ConnectionArgs),
    /// Integrators: explain why a profile's calls fail (realm, host, clock, signed URL, permissions).
    Diagnose(toolkit::diagnose::DiagnoseArgs),
    /// Manage the master keys that seal secrets at rest.
    Keys {
        #[command(subcommand)]
        command: admin::keys::KeysCommand,
        #[command(flatten)]
        store: admin::StoreArgs,
    },
}

/// mimalloc rather than glibc's malloc: the request path allocates a few dozen small buffers per
/// request (header values, the audit record's strings) and frees them on another thread (the
/// audit writer); glibc's allocator took about a seventh of the server's CPU at full load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sign(args) => sign::run(&args),
        Command::Serve { args, store } => serve::run(&args, &store),
        Command::Init { args, store } => admin::block_on(admin::init::run(&args, &store)),
        Command::Account { command, store } => {
            admin::block_on(admin::account::run(command, &store))
        }
        Command::Integration {
            command,
            store,
            account,
        } => admin::block_on(admin::integration::run(command, &store, &account)),
        Command::Role {
            command,
            store,
            account,
        } => admin::block_on(admin::role::run(command, &store, &account)),
        Command::User {
            command,
            store,
            account,
        } => admin::block_on(admin::user::run(command, &store, &account)),
        Command::Token {
            command,
            store,
            account,
        } => admin::block_on(admin::token::run(command, &store, &account)),
        Command::Audit {
            command,
            store,
            account,
        } => admin::block_on(admin::audit::run(command, &store, &account)),
        Command::Keys { command, store } => admin::block_on(admin::keys::run(command, &store)),
        Command::Profile {
            command,
            config,
            json,
        } => admin::block_on(toolkit::profile::run(command, &config, json)),
        Command::Login(args) => admin::block_on(toolkit::login::run(args)),
        Command::Call(args) => admin::block_on(toolkit::call::run(args)),
        Command::TestConnection(args) => admin::block_on(toolkit::connection::run(args)),
        Command::Diagnose(args) => admin::block_on(toolkit::diagnose::run(args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
