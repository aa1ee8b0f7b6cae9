//! Assertions: `assertTrue`, `assertCaveated` and `assertFalse` entries, each a relationship
//! in text form with an optional ` with {json}` request context, run through Check.

use ostiary_engine::Permissionship;
use ostiary_types::RelationshipKey;
use serde_json::{Map, Value as Json};

use crate::fixture::Fixture;

/// The answer an assertion expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expected {
    True,
    Caveated,
    False,
}

impl Expected {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Expected::True => "true",
            Expected::Caveated => "caveated",
            Expected::False => "false",
        }
    }

    /// SpiceDB's message for a failed assertion.
    fn message(self, check: &str) -> String {
        match self {
            Expected::True => format!("Expected relation or permission {check} to exist"),
            Expected::Caveated => {
                format!("Expected relation or permission {check} to be caveated")
            }
            Expected::False => format!("Expected relation or permission {check} to not exist"),
        }
    }
}

/// The answer of a Check as an assertion names it.
fn answer(permissionship: &Permissionship) -> String {
    match permissionship {
        Permissionship::Has => "true".to_owned(),
        Permissionship::No => "false".to_owned(),
        Permissionship::Conditional { missing_params } => {
            format!("caveated (missing {})", missing_params.join(", "))
        }
    }
}

/// Why an assertion failed: the message and the actual answer.
pub(crate) struct AssertionFailure {
    pub(crate) message: String,
    pub(crate) actual: Option<String>,
}

/// Runs one assertion entry.
pub(crate) fn run(
    fixture: &Fixture,
    text: &str,
    expected: Expected,
) -> Result<(), AssertionFailure> {
    let text = text.trim();
    let (check, context) = match text.split_once(" with ") {
        None => (text, Map::new()),
        Some((check, context)) => {
            let context: Map<String, Json> =
                serde_json::from_str(context.trim()).map_err(|err| AssertionFailure {
                    message: format!("invalid caveat context in `{text}`: {err}"),
                    actual: None,
                })?;
            (check.trim(), context)
        }
    };
    if check.contains('[') {
        return Err(AssertionFailure {
            message: format!("cannot specify a caveat on an assertion: `{check}`"),
            actual: None,
        });
    }
    let key: RelationshipKey = check.parse().map_err(|err| AssertionFailure {
        message: format!("error parsing relationship in assertion `{check}`: {err}"),
        actual: None,
    })?;
    let result = fixture
        .engine
        .check(
            fixture.snapshot.as_ref(),
            &fixture.schema,
            key.resource(),
            key.relation(),
            key.subject(),
            &context,
        )
        .map_err(|err| AssertionFailure {
            message: format!("error checking `{check}`: {err}"),
            actual: Some(format!("error: {err}")),
        })?;
    let holds = matches!(
        (&result.permissionship, expected),
        (Permissionship::Has, Expected::True)
            | (Permissionship::No, Expected::False)
            | (Permissionship::Conditional { .. }, Expected::Caveated)
    );
    if holds {
        Ok(())
    } else {
        Err(AssertionFailure {
            message: expected.message(check),
            actual: Some(answer(&result.permissionship)),
        })
    }
}
