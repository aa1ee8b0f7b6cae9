//! `ostiary schema check`, `ostiary schema fmt` and `ostiary schema from-openfga`: validate
//! schema files, rewrite them in canonical form, and translate OpenFGA models.

use std::collections::HashSet;
use std::io::{IsTerminal as _, Read as _, Write as _};
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use ostiary_schema::compile::{CompileOptions, compile_parsed};
use ostiary_schema::{Diagnostic, SourceFile, ast, parse, printer};
use serde::Serialize;

use crate::cli::{CheckArgs, ColorChoice, FmtArgs, FromOpenFgaArgs, SchemaCommand};

/// The name diagnostics use for standard input.
const STDIN_NAME: &str = "<stdin>";

/// Runs a `schema` subcommand.
pub(crate) fn run(command: SchemaCommand) -> anyhow::Result<ExitCode> {
    match command {
        SchemaCommand::Check(args) => check(&args),
        SchemaCommand::Fmt(args) => fmt(&args),
        SchemaCommand::FromOpenfga(args) => from_openfga(&args),
        SchemaCommand::Read(args) => crate::cmd::client::schema_read(args),
        SchemaCommand::Write(args) => crate::cmd::client::schema_write(args),
        SchemaCommand::Diff(args) => crate::cmd::client::schema_diff(args),
    }
}

/// One input: a file, or standard input when `path` is `None`.
struct Input {
    path: Option<PathBuf>,
    file: Arc<SourceFile>,
}

fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

fn read_input(path: &Path) -> anyhow::Result<Input> {
    if is_stdin(path) {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read standard input")?;
        return Ok(Input {
            path: None,
            file: SourceFile::new(STDIN_NAME, text),
        });
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    Ok(Input {
        path: Some(path.to_owned()),
        file: SourceFile::new(path.display().to_string(), text),
    })
}

pub(crate) fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
        }
    }
}

fn check(args: &CheckArgs) -> anyhow::Result<ExitCode> {
    let color = use_color(args.color);
    let mut all = Vec::new();
    let (mut n_errors, mut n_warnings) = (0_usize, 0_usize);
    for path in &args.files {
        let input = read_input(path)?;
        let diagnostics = check_one(&input);
        n_errors += diagnostics.iter().filter(|diag| diag.is_error()).count();
        n_warnings += diagnostics.iter().filter(|diag| !diag.is_error()).count();
        if !args.json {
            let mut stderr = std::io::stderr().lock();
            for diag in &diagnostics {
                write!(stderr, "{}", diag.render(color))?;
            }
        }
        all.extend(diagnostics);
    }
    if args.json {
        let records: Vec<JsonDiagnostic<'_>> = all.iter().map(JsonDiagnostic::from).collect();
        let mut stdout = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut stdout, &records)?;
        writeln!(stdout)?;
    } else {
        eprintln!(
            "checked {} {}: {n_errors} {}, {n_warnings} {}",
            args.files.len(),
            plural(args.files.len(), "file", "files"),
            plural(n_errors, "error", "errors"),
            plural(n_warnings, "warning", "warnings"),
        );
    }
    Ok(if n_errors > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn plural<'a>(count: usize, one: &'a str, many: &'a str) -> &'a str {
    if count == 1 { one } else { many }
}

/// Parses `input` and every file it imports, then compiles them together. Returns the
/// syntax errors, or the compile errors, or the warnings.
fn check_one(input: &Input) -> Vec<Diagnostic> {
    let parsed = parse(&input.file);
    if !parsed.is_ok() {
        return parsed.diagnostics;
    }
    let base = match &input.path {
        Some(path) => path.parent().map(Path::to_owned).unwrap_or_default(),
        None => PathBuf::new(),
    };
    let mut diagnostics = Vec::new();
    let mut sources = Vec::new();
    let mut seen = HashSet::new();
    if let Some(path) = &input.path {
        seen.insert(normalize(path));
    }
    let mut queue = vec![(Arc::clone(&input.file), base.clone(), parsed.schema)];
    while let Some((file, dir, mut schema)) = queue.pop() {
        for item in &schema.items {
            if let ast::Item::Import(import) = item {
                match resolve_import(&base, &dir, &file, import) {
                    Ok(path) => {
                        if !seen.insert(normalize(&path)) {
                            continue;
                        }
                        match std::fs::read_to_string(&path) {
                            Ok(text) => {
                                let imported = SourceFile::new(path.display().to_string(), text);
                                let parsed = parse(&imported);
                                diagnostics.extend(parsed.diagnostics);
                                let dir = path.parent().map(Path::to_owned).unwrap_or_default();
                                queue.push((imported, dir, parsed.schema));
                            }
                            Err(err) => diagnostics.push(
                                Diagnostic::error(
                                    "import-not-found",
                                    &file,
                                    import.path_span,
                                    format!("cannot read imported file `{}`: {err}", import.path),
                                )
                                .with_label("imported here"),
                            ),
                        }
                    }
                    Err(diag) => diagnostics.push(*diag),
                }
            }
        }
        // The compiler takes every file at once; the imports themselves are resolved here.
        schema
            .items
            .retain(|item| !matches!(item, ast::Item::Import(_)));
        sources.push((file, schema));
    }
    if diagnostics.iter().any(Diagnostic::is_error) {
        return diagnostics;
    }
    // Compile in the order the files were found, the root first.
    sources.reverse();
    sources.rotate_right(1);
    match compile_parsed(&sources, &CompileOptions::default()) {
        Ok(compiled) => compiled.warnings,
        Err(errors) => errors.into_iter().collect(),
    }
}

/// The path an `import` names: relative to the importing file, and never outside the
/// directory of the file being checked (as SpiceDB requires).
fn resolve_import(
    root_dir: &Path,
    dir: &Path,
    file: &Arc<SourceFile>,
    import: &ast::Import,
) -> Result<PathBuf, Box<Diagnostic>> {
    let relative = Path::new(&import.path);
    let joined = dir.join(relative);
    let escapes = relative.is_absolute()
        || normalize(&joined)
            .strip_prefix(normalize(root_dir))
            .map_or(true, |rest| {
                rest.components()
                    .any(|component| component == Component::ParentDir)
            });
    if escapes {
        return Err(Box::new(
            Diagnostic::error(
                "import-outside-root",
                file,
                import.path_span,
                format!("import `{}` is outside the schema's directory", import.path),
            )
            .with_label("imported here")
            .with_help("imports must name files in the schema's directory or below it"),
        ));
    }
    Ok(joined)
}

/// `path` with `.` removed and `dir/..` folded, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                let can_pop = matches!(out.components().next_back(), Some(Component::Normal(_)));
                if can_pop {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// One diagnostic in `--json` output.
#[derive(Debug, Serialize)]
struct JsonDiagnostic<'a> {
    file: &'a str,
    line: u32,
    column: u32,
    end_line: u32,
    end_column: u32,
    severity: &'static str,
    code: &'static str,
    message: &'a str,
    label: Option<&'a str>,
    help: Option<&'a str>,
}

impl<'a> From<&'a Diagnostic> for JsonDiagnostic<'a> {
    fn from(diag: &'a Diagnostic) -> Self {
        let start = diag.position();
        let end = diag.file.line_col(diag.span.end());
        JsonDiagnostic {
            file: diag.file.name(),
            line: start.line,
            column: start.column,
            end_line: end.line,
            end_column: end.column,
            severity: diag.severity.as_str(),
            code: diag.code,
            message: &diag.message,
            label: diag.label.as_deref(),
            help: diag.help.as_deref(),
        }
    }
}

/// Prints the SpiceDB translation of an OpenFGA model, in canonical form when it parses.
fn from_openfga(args: &FromOpenFgaArgs) -> anyhow::Result<ExitCode> {
    let input = read_input(&args.file)?;
    let zed = match ostiary_validate::openfga_to_zed(input.file.text()) {
        Ok(zed) => zed,
        Err(err) => {
            writeln!(std::io::stderr().lock(), "{}:{err}", input.file.name())?;
            return Ok(ExitCode::from(1));
        }
    };
    let translated = SourceFile::new(input.file.name(), zed.clone());
    let text = printer::format(&translated).unwrap_or(zed);
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn fmt(args: &FmtArgs) -> anyhow::Result<ExitCode> {
    let color = use_color(args.color);
    if args.files.iter().filter(|path| is_stdin(path)).count() > 1 {
        bail!("standard input (`-`) can be given only once");
    }
    let mut failed = false;
    for path in &args.files {
        let input = read_input(path)?;
        let formatted = match printer::format(&input.file) {
            Ok(formatted) => formatted,
            Err(diagnostics) => {
                let mut stderr = std::io::stderr().lock();
                for diag in &diagnostics {
                    write!(stderr, "{}", diag.render(color))?;
                }
                writeln!(
                    stderr,
                    "{}: not formatted because of the errors above",
                    input.file.name()
                )?;
                failed = true;
                continue;
            }
        };
        let changed = formatted != input.file.text();
        match (&input.path, args.check) {
            (_, true) => {
                if changed {
                    writeln!(std::io::stdout().lock(), "{}", input.file.name())?;
                    failed = true;
                }
            }
            (None, false) => {
                let mut stdout = std::io::stdout().lock();
                stdout.write_all(formatted.as_bytes())?;
                stdout.flush()?;
            }
            (Some(path), false) => {
                if changed {
                    write_atomically(path, &formatted)?;
                }
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Replaces the file's contents through a temporary file in the same directory, so that an
/// interrupted write never leaves a half-written schema behind.
fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    let file_name = path
        .file_name()
        .with_context(|| format!("`{}` is not a file name", path.display()))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(file_name);
    temp_name.push(".ostiary-fmt.tmp");
    let temp = path.with_file_name(temp_name);
    std::fs::write(&temp, text).with_context(|| format!("cannot write `{}`", temp.display()))?;
    if let Ok(metadata) = std::fs::metadata(path) {
        // Keep the original permissions; failing to is not worth losing the result over.
        let _ = std::fs::set_permissions(&temp, metadata.permissions());
    }
    std::fs::rename(&temp, path).with_context(|| format!("cannot replace `{}`", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_folds_dots_lexically() {
        assert_eq!(
            normalize(Path::new("a/./b/../c.zed")),
            PathBuf::from("a/c.zed")
        );
        assert_eq!(normalize(Path::new("../x/../y")), PathBuf::from("../y"));
        assert_eq!(normalize(Path::new("a/../../b")), PathBuf::from("../b"));
    }

    #[test]
    fn imports_may_not_leave_the_root_directory() {
        let file = SourceFile::new("root.zed", "");
        let import = |path: &str| ast::Import {
            comments: Vec::new(),
            path: path.to_owned(),
            path_span: ostiary_schema::Span::default(),
            span: ostiary_schema::Span::default(),
        };
        let root = Path::new("schemas");
        let nested = Path::new("schemas/sub");
        assert_eq!(
            resolve_import(root, nested, &file, &import("../user.zed")).ok(),
            Some(PathBuf::from("schemas/sub/../user.zed"))
        );
        let escaped = resolve_import(root, root, &file, &import("../secret.zed"));
        assert_eq!(
            escaped.err().map(|diag| diag.message),
            Some("import `../secret.zed` is outside the schema's directory".to_owned())
        );
        assert!(resolve_import(root, root, &file, &import("/etc/passwd")).is_err());
    }
}
