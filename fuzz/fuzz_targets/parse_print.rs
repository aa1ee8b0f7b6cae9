//! Fuzzes the schema parser, compiler and printer: nothing may panic, and any text that
//! parses must print to text that parses again to the same canonical form.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ostiary_schema::compile::{CompileOptions, compile_parsed};
use ostiary_schema::{SourceFile, parse, printer};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = SourceFile::new("fuzz.zed", text);
    let parsed = parse(&file);
    if !parsed.is_ok() {
        // Rendering must not panic either (miette slices the source by span).
        for diag in parsed.diagnostics.iter().take(3) {
            let _ = diag.render(false);
        }
        return;
    }
    let _ = compile_parsed(
        &[(file.clone(), parsed.schema.clone())],
        &CompileOptions::default(),
    );

    // Canonical printing is idempotent and its output parses.
    let printed = printer::print(&parsed.schema);
    let reparsed_file = SourceFile::new("printed.zed", printed.as_str());
    let reparsed = parse(&reparsed_file);
    assert!(
        reparsed.is_ok(),
        "printed schema does not parse: {:?}\n--- input\n{text}\n--- printed\n{printed}",
        reparsed.diagnostics.iter().map(ToString::to_string).collect::<Vec<_>>()
    );
    let reprinted = printer::print(&reparsed.schema);
    assert_eq!(printed, reprinted, "print is not idempotent for input:\n{text}");

    // `fmt` output (source-aware) is stable too.
    if let Ok(formatted) = printer::format(&file) {
        let again = printer::format(&SourceFile::new("formatted.zed", formatted.as_str()));
        assert_eq!(
            again.as_ref().ok(),
            Some(&formatted),
            "fmt is not idempotent for input:\n{text}"
        );
    }
});
