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
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
