//! Diagnostics: what went wrong, where (file, line, column, underlined span), what was expected
//! and how to fix it. Rendered with miette for people and as plain fields for machines.

use std::fmt;
use std::sync::Arc;

use crate::source::{LineCol, SourceFile, Span};

/// How bad a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The schema is still valid; SpiceDB would print a lint warning.
    Warning,
    /// The schema is invalid.
    Error,
}

impl Severity {
    /// `"warning"` or `"error"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One problem found in a schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Stable machine-readable code, e.g. `syntax`, `unknown-relation`.
    pub code: &'static str,
    /// Error or warning.
    pub severity: Severity,
    /// One line, lowercase, no final period; user input in backticks.
    pub message: String,
    /// The file the span points into.
    pub file: Arc<SourceFile>,
    /// The offending text.
    pub span: Span,
    /// Short text printed under the underline (what was expected, or what this is).
    pub label: Option<String>,
    /// How to fix it.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A new error.
    pub fn error(
        code: &'static str,
        file: &Arc<SourceFile>,
        span: Span,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            code,
            severity: Severity::Error,
            message: message.into(),
            file: Arc::clone(file),
            span,
            label: None,
            help: None,
        }
    }

    /// A new warning.
    pub fn warning(
        code: &'static str,
        file: &Arc<SourceFile>,
        span: Span,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(code, file, span, message)
        }
    }

    /// Sets the label under the underline.
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Sets the help line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// 1-based line and column of the start of the span.
    pub fn position(&self) -> LineCol {
        self.file.line_col(self.span.start())
    }

    /// Whether this is an error (not a warning).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Renders with an underlined excerpt of the source, for a terminal.
    pub fn render(&self, color: bool) -> String {
        let theme = if color {
            miette::GraphicalTheme::unicode()
        } else {
            miette::GraphicalTheme::unicode_nocolor()
        };
        let handler = miette::GraphicalReportHandler::new_themed(theme).with_width(100);
        let mut out = String::new();
        if handler.render_report(&mut out, &Rendered(self)).is_err() {
            // Rendering into a String cannot fail in practice; fall back to the plain line.
            return self.to_string();
        }
        out
    }
}

/// `file:line:column: severity[code]: message`, the form compilers and editors understand.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}[{}]: {}",
            self.file.name(),
            self.position(),
            self.severity.as_str(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for Diagnostic {}

impl miette::Diagnostic for Diagnostic {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.code))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.severity {
            Severity::Warning => miette::Severity::Warning,
            Severity::Error => miette::Severity::Error,
        })
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|help| Box::new(help) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&*self.file)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        let label = miette::LabeledSpan::new_primary_with_span(self.label.clone(), self.span);
        Some(Box::new(std::iter::once(label)))
    }
}

/// How [`Diagnostic::render`] shows a diagnostic: the message alone as the headline (the
/// excerpt already names the file, line and column), the code left to machine output.
struct Rendered<'a>(&'a Diagnostic);

impl fmt::Debug for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0, f)
    }
}

impl fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl std::error::Error for Rendered<'_> {}

impl miette::Diagnostic for Rendered<'_> {
    fn severity(&self) -> Option<miette::Severity> {
        miette::Diagnostic::severity(self.0)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        miette::Diagnostic::help(self.0)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        miette::Diagnostic::source_code(self.0)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        miette::Diagnostic::labels(self.0)
    }
}

/// A non-empty list of diagnostics, errors first in source order, then warnings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
}

impl Diagnostics {
    /// Wraps a list, sorting it by severity (errors first), file and position.
    /// Returns `None` when the list is empty.
    pub fn new(mut items: Vec<Diagnostic>) -> Option<Self> {
        if items.is_empty() {
            return None;
        }
        items.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then_with(|| a.file.name().cmp(b.file.name()))
                .then_with(|| a.span.cmp(&b.span))
        });
        items.dedup_by(|a, b| a.span == b.span && a.message == b.message);
        Some(Diagnostics { items })
    }

    /// All diagnostics.
    pub fn items(&self) -> &[Diagnostic] {
        &self.items
    }

    /// The first (most important) diagnostic.
    pub fn first(&self) -> &Diagnostic {
        // INVARIANT: `new` refuses empty lists.
        &self.items[0]
    }

    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(Diagnostic::is_error)
    }

    /// Only the errors.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.is_error())
    }

    /// Renders every diagnostic for a terminal.
    pub fn render(&self, color: bool) -> String {
        self.items.iter().map(|d| d.render(color)).collect()
    }
}

impl IntoIterator for Diagnostics {
    type Item = Diagnostic;
    type IntoIter = std::vec::IntoIter<Diagnostic>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

/// One line per diagnostic, in the `file:line:column` form.
impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (idx, item) in self.items.iter().enumerate() {
            if idx > 0 {
                writeln!(f)?;
            }
            write!(f, "{item}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_render_name_file_line_and_column() {
        let file = SourceFile::new("schema.zed", "definition user {\n  relation x: y +\n}");
        let diag = Diagnostic::error("syntax", &file, Span::new(33, 34), "unexpected `+`")
            .with_label("expected the end of the relation")
            .with_help("use `|` to allow several subject types");
        assert_eq!(
            diag.to_string(),
            "schema.zed:2:16: error[syntax]: unexpected `+`"
        );
        let rendered = diag.render(false);
        assert!(rendered.contains("schema.zed:2:16"), "{rendered}");
        assert!(
            rendered.contains("expected the end of the relation"),
            "{rendered}"
        );
        assert!(
            rendered.contains("use `|` to allow several subject types"),
            "{rendered}"
        );
    }

    #[test]
    fn diagnostics_sort_errors_first_and_refuse_empty() {
        assert!(Diagnostics::new(Vec::new()).is_none());
        let file = SourceFile::new("a", "0123456789");
        let list = Diagnostics::new(vec![
            Diagnostic::warning("w", &file, Span::new(0, 1), "warn"),
            Diagnostic::error("e", &file, Span::new(5, 6), "second"),
            Diagnostic::error("e", &file, Span::new(2, 3), "first"),
        ])
        .unwrap();
        let messages: Vec<_> = list.items().iter().map(|d| d.message.as_str()).collect();
        assert_eq!(messages, ["first", "second", "warn"]);
        assert!(list.has_errors());
    }
}
