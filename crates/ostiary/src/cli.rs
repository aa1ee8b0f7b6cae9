//! The command-line interface: clap types only, no behaviour.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Ostiary: a Zanzibar-style permissions database that speaks SpiceDB's API and schema
/// language.
#[derive(Debug, Parser)]
#[command(name = "ostiary", version, about)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Check and format schema files.
    #[command(subcommand)]
    Schema(SchemaCommand),
}

/// `ostiary schema ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum SchemaCommand {
    /// Parse and compile schema files, reporting errors and warnings.
    ///
    /// Exits with 0 when every file is valid (warnings allowed), 1 when any has errors, and 2
    /// when a file cannot be read.
    Check(CheckArgs),
    /// Rewrite schema files in canonical form.
    ///
    /// Files with syntax errors are left alone and reported. Exits with 1 when any file could
    /// not be formatted, or (with `--check`) when any file is not formatted.
    Fmt(FmtArgs),
}

/// Arguments of `ostiary schema check`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Schema files to check (`-` reads standard input).
    #[arg(required = true, value_name = "FILE")]
    pub(crate) files: Vec<PathBuf>,
    /// Print the diagnostics as a JSON array on standard output instead.
    #[arg(long)]
    pub(crate) json: bool,
    /// When to colour the diagnostics.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub(crate) color: ColorChoice,
}

/// Arguments of `ostiary schema fmt`.
#[derive(Debug, Args)]
pub(crate) struct FmtArgs {
    /// Schema files to format in place (`-` formats standard input to standard output).
    #[arg(required = true, value_name = "FILE")]
    pub(crate) files: Vec<PathBuf>,
    /// Write nothing; list the files that would change and exit with 1 if there are any.
    #[arg(long)]
    pub(crate) check: bool,
    /// When to colour the diagnostics.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub(crate) color: ColorChoice,
}

/// When to colour terminal output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ColorChoice {
    /// Colour when standard error is a terminal and `NO_COLOR` is unset.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}
