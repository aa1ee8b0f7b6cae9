//! The `ostiary` command: parses the command line and dispatches to a subcommand.

mod cli;
mod cmd;

use std::process::ExitCode;

use clap::Parser as _;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Schema(command) => cmd::schema::run(command),
        Command::Serve(args) => cmd::serve::run(*args),
        Command::Validate(args) => cmd::validate::run(&args),
        Command::Export(args) => cmd::transfer::run_export(&args),
        Command::Import(args) => cmd::transfer::run_import(&args),
        Command::Check(args) => cmd::client::check(*args),
        Command::Explain(args) => cmd::client::explain(*args),
        Command::Rel(command) => cmd::client::rel(command),
        Command::LookupResources(args) => cmd::client::lookup_resources(*args),
        Command::LookupSubjects(args) => cmd::client::lookup_subjects(*args),
        Command::Expand(args) => cmd::client::expand(*args),
        Command::Watch(args) => cmd::client::watch(*args),
        Command::Tenant(command) => cmd::client::tenant(command),
        Command::Token(command) => cmd::client::token(command),
        Command::Audit(command) => cmd::client::audit(command),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
