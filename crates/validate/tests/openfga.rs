//! Runs OpenFGA's consolidated tests (`conformance/openfga/assets/tests/*.yaml`) through the
//! OpenFGA → SpiceDB translator and the in-process engine of `ostiary validate`, and holds the
//! pass counts to the floors recorded in `tests/openfga-results.md`.
//!
//! Each stage's model is translated, the tuples written so far become relationships (tuples
//! that no longer fit a later stage's model are dropped, as OpenFGA ignores them), and:
//!
//! - every check assertion runs as a one-assertion validation file. `errorCode: 2000` (a
//!   missing condition parameter) expects a caveated answer, as in SpiceDB; other error codes
//!   expect an error. Checks of a wildcard subject (`user:*`) have no SpiceDB counterpart and
//!   are skipped.
//! - every ListObjects assertion runs as LookupResources and every ListUsers assertion as
//!   LookupSubjects (one per filter: `type` looks up plain subjects and the wildcard, which
//!   counts as `type:*`; `type#relation` looks up subject sets) on the stage's loaded store.
//!   Results are compared as sets. As for checks, an expected result must be unconditional and
//!   an unexpected one must be absent (a conditional result counts as present);
//!   `errorCode: 2000` expects an error or at least one conditional result, other error codes
//!   an error. Contextual tuples are loaded into a store of their own with the stage's tuples.
//!   ListObjects of a wildcard user is skipped, like a check of one. As OpenFGA's own suite
//!   requires of ListUsers, every result (but a wildcard) must also Check with the same
//!   permissionship, has or conditional.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::print_stdout,
    reason = "test code"
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ostiary_engine::Permissionship;
use ostiary_types::{ObjectId, ObjectRef, ObjectType, RelationName, SubjectRef};
use ostiary_validate::{
    FailureKind, Fixture, OpenFgaTranslation, load_str, translate_openfga, validate_str,
};
use serde::Deserialize;
use serde_json::{Map, Value as Json};

#[derive(Deserialize)]
struct File {
    tests: Vec<Test>,
}

#[derive(Deserialize)]
struct Test {
    name: String,
    stages: Vec<Stage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stage {
    model: String,
    #[serde(default)]
    tuples: Option<Vec<Tuple>>,
    #[serde(default)]
    check_assertions: Option<Vec<CheckAssertion>>,
    #[serde(default)]
    list_objects_assertions: Option<Vec<ListAssertion<ListObjectsRequest>>>,
    #[serde(default)]
    list_users_assertions: Option<Vec<ListAssertion<ListUsersRequest>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListAssertion<R> {
    request: R,
    #[serde(default)]
    context: Option<Map<String, Json>>,
    #[serde(default)]
    contextual_tuples: Option<Vec<Tuple>>,
    #[serde(default)]
    expectation: Option<Vec<String>>,
    #[serde(default)]
    error_code: Option<u32>,
}

#[derive(Deserialize)]
struct ListObjectsRequest {
    user: String,
    #[serde(rename = "type")]
    object_type: String,
    relation: String,
}

#[derive(Deserialize)]
struct ListUsersRequest {
    object: String,
    relation: String,
    filters: Vec<String>,
}

#[derive(Deserialize, Clone)]
struct Tuple {
    object: String,
    relation: String,
    user: String,
    #[serde(default)]
    condition: Option<TupleCondition>,
}

#[derive(Deserialize, Clone)]
struct TupleCondition {
    name: String,
    #[serde(default)]
    context: Option<Map<String, Json>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CheckAssertion {
    tuple: Tuple,
    #[serde(default)]
    context: Option<Map<String, Json>>,
    #[serde(default)]
    contextual_tuples: Option<Vec<Tuple>>,
    #[serde(default)]
    expectation: Option<bool>,
    #[serde(default)]
    error_code: Option<u32>,
}

/// The answer of one check, as the validation file reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    True,
    False,
    Caveated,
    Error(String),
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/openfga/assets/tests")
}

/// Splits `type:id` and `type:id#relation`.
fn split_user(user: &str) -> Option<(&str, &str, Option<&str>)> {
    let (object, relation) = match user.split_once('#') {
        Some((object, relation)) => (object, Some(relation)),
        None => (user, None),
    };
    let (object_type, id) = object.split_once(':')?;
    Some((object_type, id, relation))
}

/// The subject text in SpiceDB form, or `None` when a name is not in the model.
fn subject(translation: &OpenFgaTranslation, user: &str) -> Option<String> {
    let (user_type, id, relation) = split_user(user)?;
    let type_name = translation.type_name(user_type)?;
    Some(match relation {
        Some(relation) => format!(
            "{type_name}:{id}#{}",
            translation.check_relation(user_type, relation)?
        ),
        None => format!("{type_name}:{id}"),
    })
}

/// A tuple as a relationship line, or `None` when it does not fit the model.
fn relationship(translation: &OpenFgaTranslation, tuple: &Tuple) -> Option<String> {
    let (object_type, id, _) = split_user(&tuple.object)?;
    let type_name = translation.type_name(object_type)?;
    let relation = translation.write_relation(object_type, &tuple.relation)?;
    let subject = subject(translation, &tuple.user)?;
    let caveat = match &tuple.condition {
        None => String::new(),
        Some(condition) => {
            let name = translation.caveat_name(&condition.name)?;
            match &condition.context {
                Some(context) if !context.is_empty() => {
                    format!("[{name}:{}]", Json::Object(context.clone()))
                }
                _ => format!("[{name}]"),
            }
        }
    };
    Some(format!("{type_name}:{id}#{relation}@{subject}{caveat}"))
}

fn validation_file(schema: &str, relationships: &[String], assertion: Option<&str>) -> String {
    let mut file = Map::new();
    file.insert("schema".into(), Json::String(schema.to_owned()));
    file.insert(
        "relationships".into(),
        Json::String(relationships.join("\n")),
    );
    if let Some(assertion) = assertion {
        let mut assertions = Map::new();
        assertions.insert(
            "assertTrue".into(),
            Json::Array(vec![Json::String(assertion.into())]),
        );
        file.insert("assertions".into(), Json::Object(assertions));
    }
    serde_yaml::to_string(&Json::Object(file)).unwrap()
}

/// Drops the relationships the model rejects; `Err` when the schema itself does not compile.
fn loadable(schema: &str, mut relationships: Vec<String>) -> Result<Vec<String>, String> {
    loop {
        let report = validate_str(
            "openfga.yaml",
            &validation_file(schema, &relationships, None),
            Path::new("."),
        )
        .map_err(|err| err.to_string())?;
        if let Some(failure) = report
            .failures
            .iter()
            .find(|failure| failure.kind != FailureKind::Relationship)
        {
            return Err(failure.message.clone());
        }
        let rejected: BTreeSet<&str> = report
            .failures
            .iter()
            .map(|failure| failure.item.as_str())
            .collect();
        if rejected.is_empty() {
            return Ok(relationships);
        }
        let before = relationships.len();
        relationships.retain(|line| !rejected.iter().any(|item| item.contains(line.as_str())));
        if relationships.len() == before {
            return Err(format!("cannot drop rejected relationships: {rejected:?}"));
        }
    }
}

/// Runs one check as a one-assertion validation file.
fn check(
    translation: &OpenFgaTranslation,
    relationships: &[String],
    assertion: &CheckAssertion,
) -> Outcome {
    let tuple = &assertion.tuple;
    let Some((object_type, id, _)) = split_user(&tuple.object) else {
        return Outcome::Error(format!("invalid object `{}`", tuple.object));
    };
    let Some(type_name) = translation.type_name(object_type) else {
        return Outcome::Error(format!("type `{object_type}` not found"));
    };
    let Some(relation) = translation.check_relation(object_type, &tuple.relation) else {
        return Outcome::Error(format!("relation `{}` not found", tuple.relation));
    };
    let Some(subject) = subject(translation, &tuple.user) else {
        return Outcome::Error(format!("subject `{}` not in the model", tuple.user));
    };
    let mut text = format!("{type_name}:{id}#{relation}@{subject}");
    if let Some(context) = assertion
        .context
        .as_ref()
        .filter(|context| !context.is_empty())
    {
        text.push_str(&format!(" with {}", Json::Object(context.clone())));
    }
    let mut relationships = relationships.to_vec();
    for extra in assertion.contextual_tuples.iter().flatten() {
        match relationship(translation, extra) {
            Some(line) if !relationships.contains(&line) => relationships.push(line),
            Some(_) => {}
            None => return Outcome::Error(format!("invalid contextual tuple `{}`", extra.object)),
        }
    }
    let report = match validate_str(
        "openfga.yaml",
        &validation_file(translation.schema(), &relationships, Some(&text)),
        Path::new("."),
    ) {
        Ok(report) => report,
        Err(err) => return Outcome::Error(err.to_string()),
    };
    let Some(failure) = report.failures.first() else {
        return Outcome::True;
    };
    match failure.actual.as_deref() {
        Some("false") => Outcome::False,
        Some(actual) if actual.starts_with("caveated") => Outcome::Caveated,
        _ => Outcome::Error(failure.message.clone()),
    }
}

/// The answer of a ListObjects or ListUsers assertion, in OpenFGA's names.
enum ListOutcome {
    Results {
        /// Unconditional results.
        has: BTreeSet<String>,
        /// Results that depend on missing condition parameters.
        conditional: BTreeSet<String>,
    },
    Error(String),
}

impl ListOutcome {
    /// The outcome as a failure line shows it.
    fn describe(&self) -> String {
        match self {
            ListOutcome::Results { has, conditional } if conditional.is_empty() => {
                format!("{has:?}")
            }
            ListOutcome::Results { has, conditional } => {
                format!("{has:?} and conditionally {conditional:?}")
            }
            ListOutcome::Error(message) => format!("error: {message}"),
        }
    }

    fn results() -> Self {
        ListOutcome::Results {
            has: BTreeSet::new(),
            conditional: BTreeSet::new(),
        }
    }

    fn add(&mut self, name: String, permissionship: &Permissionship) {
        if let ListOutcome::Results { has, conditional } = self {
            if matches!(permissionship, Permissionship::Conditional { .. }) {
                if !has.contains(&name) {
                    conditional.insert(name);
                }
            } else {
                conditional.remove(&name);
                has.insert(name);
            }
        }
    }
}

/// Loads relationships (and contextual tuples, translated) into a throwaway store.
fn store(
    translation: &OpenFgaTranslation,
    relationships: &[String],
    contextual: Option<&[Tuple]>,
) -> Result<Fixture, String> {
    let mut relationships = relationships.to_vec();
    for extra in contextual.into_iter().flatten() {
        match relationship(translation, extra) {
            Some(line) if !relationships.contains(&line) => relationships.push(line),
            Some(_) => {}
            None => return Err(format!("invalid contextual tuple `{}`", extra.object)),
        }
    }
    let (report, fixture) = load_str(
        "openfga.yaml",
        &validation_file(translation.schema(), &relationships, None),
        Path::new("."),
    )
    .map_err(|err| err.to_string())?;
    fixture.ok_or_else(|| {
        report.failures.first().map_or_else(
            || "the store did not load".to_owned(),
            |f| f.message.clone(),
        )
    })
}

/// The store for one list assertion: the stage's, or one with the contextual tuples added.
fn with_contextual<R, T>(
    translation: &OpenFgaTranslation,
    relationships: &[String],
    stage_store: &Fixture,
    assertion: &ListAssertion<R>,
    run: impl FnOnce(&Fixture) -> T,
) -> Result<T, String> {
    match assertion
        .contextual_tuples
        .as_deref()
        .filter(|tuples| !tuples.is_empty())
    {
        None => Ok(run(stage_store)),
        Some(tuples) => Ok(run(&store(translation, relationships, Some(tuples))?)),
    }
}

fn context<R>(assertion: &ListAssertion<R>) -> Map<String, Json> {
    assertion.context.clone().unwrap_or_default()
}

/// Checks one lookup result: a Check of the same resource, permission and subject must give
/// the same permissionship (has or conditional). Returns the disagreement, if any.
fn disagreement(
    fixture: &Fixture,
    resource: &ObjectRef,
    permission: &RelationName,
    subject: &SubjectRef,
    context: &Map<String, Json>,
    found: &Permissionship,
) -> Option<String> {
    let checked = fixture.engine().check(
        fixture.snapshot(),
        fixture.schema(),
        resource,
        permission,
        subject,
        context,
    );
    let same = checked.as_ref().is_ok_and(|checked| {
        std::mem::discriminant(&checked.permissionship) == std::mem::discriminant(found)
    });
    (!same).then(|| {
        let checked = match checked {
            Ok(checked) => format!("{:?}", checked.permissionship),
            Err(err) => format!("error: {err}"),
        };
        format!(
            "{resource}#{permission}@{subject}: lookup found it {found:?}, check says {checked}"
        )
    })
}

/// Runs one ListObjects assertion as LookupResources; each result is also checked
/// (disagreements go to `disagreements`).
fn list_objects(
    translation: &OpenFgaTranslation,
    fixture: &Fixture,
    assertion: &ListAssertion<ListObjectsRequest>,
    disagreements: &mut Vec<String>,
) -> ListOutcome {
    let request = &assertion.request;
    let Some(type_name) = translation.type_name(&request.object_type) else {
        return ListOutcome::Error(format!("type `{}` not found", request.object_type));
    };
    let Some(relation) = translation.check_relation(&request.object_type, &request.relation) else {
        return ListOutcome::Error(format!("relation `{}` not found", request.relation));
    };
    let Some(subject) = subject(translation, &request.user) else {
        return ListOutcome::Error(format!("user `{}` not in the model", request.user));
    };
    let parsed = (
        type_name.parse::<ObjectType>(),
        relation.parse::<RelationName>(),
        subject.parse::<SubjectRef>(),
    );
    let (Ok(resource_type), Ok(permission), Ok(subject)) = parsed else {
        return ListOutcome::Error(format!("invalid request `{}`", request.user));
    };
    let context = context(assertion);
    let page = match fixture.engine().lookup_resources(
        fixture.snapshot(),
        fixture.schema(),
        &resource_type,
        &permission,
        &subject,
        &context,
        None,
        None,
    ) {
        Ok(page) => page,
        Err(err) => return ListOutcome::Error(err.to_string()),
    };
    let mut outcome = ListOutcome::results();
    for result in &page.results {
        let resource = ObjectRef::new(resource_type.clone(), result.resource_id.clone());
        disagreements.extend(disagreement(
            fixture,
            &resource,
            &permission,
            &subject,
            &context,
            &result.permissionship,
        ));
        outcome.add(
            format!("{}:{}", request.object_type, result.resource_id),
            &result.permissionship,
        );
    }
    outcome
}

/// Runs one ListUsers assertion as one LookupSubjects per filter; each result but the
/// wildcard is also checked (disagreements go to `disagreements`).
fn list_users(
    translation: &OpenFgaTranslation,
    fixture: &Fixture,
    assertion: &ListAssertion<ListUsersRequest>,
    disagreements: &mut Vec<String>,
) -> ListOutcome {
    let request = &assertion.request;
    let Some((object_type, id, None)) = split_user(&request.object) else {
        return ListOutcome::Error(format!("invalid object `{}`", request.object));
    };
    let Some(type_name) = translation.type_name(object_type) else {
        return ListOutcome::Error(format!("type `{object_type}` not found"));
    };
    let Some(relation) = translation.check_relation(object_type, &request.relation) else {
        return ListOutcome::Error(format!("relation `{}` not found", request.relation));
    };
    let parsed = (
        type_name.parse::<ObjectType>(),
        id.parse::<ObjectId>(),
        relation.parse::<RelationName>(),
    );
    let (Ok(resource_type), Ok(resource_id), Ok(permission)) = parsed else {
        return ListOutcome::Error(format!("invalid object `{}`", request.object));
    };
    let resource = ObjectRef::new(resource_type, resource_id);
    let context = context(assertion);
    let mut outcome = ListOutcome::results();
    for filter in &request.filters {
        let (filter_type, filter_relation) = match filter.split_once('#') {
            Some((filter_type, relation)) => (filter_type, Some(relation)),
            None => (filter.as_str(), None),
        };
        let Some(subject_type) = translation.type_name(filter_type) else {
            return ListOutcome::Error(format!("type `{filter_type}` not found"));
        };
        let subject_relation = match filter_relation {
            None => None,
            Some(relation) => match translation.check_relation(filter_type, relation) {
                Some(relation) => Some(relation),
                None => return ListOutcome::Error(format!("relation `{relation}` not found")),
            },
        };
        let Ok(subject_type) = subject_type.parse::<ObjectType>() else {
            return ListOutcome::Error(format!("invalid filter `{filter}`"));
        };
        let Ok(subject_relation) = subject_relation.map(str::parse::<RelationName>).transpose()
        else {
            return ListOutcome::Error(format!("invalid filter `{filter}`"));
        };
        let found = match fixture.engine().lookup_subjects(
            fixture.snapshot(),
            fixture.schema(),
            &resource,
            &permission,
            &subject_type,
            subject_relation.as_ref(),
            &context,
        ) {
            Ok(found) => found,
            Err(err) => return ListOutcome::Error(err.to_string()),
        };
        for found in &found {
            let id = &found.subject.subject_object_id;
            if id.as_str() != "*" {
                let subject = SubjectRef::new(
                    ObjectRef::new(subject_type.clone(), id.clone()),
                    subject_relation.clone(),
                );
                disagreements.extend(disagreement(
                    fixture,
                    &resource,
                    &permission,
                    &subject,
                    &context,
                    &found.subject.permissionship,
                ));
            }
            let name = match filter_relation {
                Some(relation) => format!("{filter_type}:{id}#{relation}"),
                None => format!("{filter_type}:{id}"),
            };
            outcome.add(name, &found.subject.permissionship);
        }
    }
    outcome
}

/// Whether a list outcome meets the assertion (see the module comment).
fn list_ok(outcome: &ListOutcome, expectation: Option<&[String]>, error_code: Option<u32>) -> bool {
    match (error_code, outcome) {
        (Some(2000), ListOutcome::Results { conditional, .. }) => !conditional.is_empty(),
        (Some(_), ListOutcome::Error(_)) => true,
        (Some(_), ListOutcome::Results { .. }) | (None, ListOutcome::Error(_)) => false,
        (None, ListOutcome::Results { has, conditional }) => {
            let expected: BTreeSet<String> = expectation.into_iter().flatten().cloned().collect();
            conditional.is_empty() && *has == expected
        }
    }
}

/// Passed, failed and skipped assertions of one kind, and a line per failure.
#[derive(Default)]
struct Counts {
    passed: usize,
    failed: usize,
    skipped: usize,
    failures: Vec<String>,
}

impl Counts {
    fn record(&mut self, ok: bool, failure: impl FnOnce() -> String) {
        if ok {
            self.passed += 1;
        } else {
            self.failed += 1;
            self.failures.push(failure());
        }
    }
}

#[derive(Default)]
struct Totals {
    tests: usize,
    translated: usize,
    untranslatable: Vec<String>,
    checks: Counts,
    list_objects: Counts,
    list_users: Counts,
    /// Lookup results that a Check of the same triple does not confirm.
    disagreements: Vec<String>,
}

fn expected_text(expectation: Option<&[String]>, error_code: Option<u32>) -> String {
    match error_code {
        Some(code) => format!("error {code}"),
        None => format!("{:?}", expectation.unwrap_or_default()),
    }
}

fn run_lists(
    test: &str,
    stage_index: usize,
    stage: &Stage,
    translation: &OpenFgaTranslation,
    lines: &[String],
    totals: &mut Totals,
) {
    let stage_store = match store(translation, lines, None) {
        Ok(fixture) => fixture,
        Err(err) => panic!("{test} stage {stage_index}: the loadable tuples do not load: {err}"),
    };
    for (index, assertion) in stage.list_objects_assertions.iter().flatten().enumerate() {
        let request = &assertion.request;
        if request.user.ends_with(":*") {
            totals.list_objects.skipped += 1;
            continue;
        }
        let outcome = with_contextual(translation, lines, &stage_store, assertion, |fixture| {
            list_objects(translation, fixture, assertion, &mut totals.disagreements)
        })
        .unwrap_or_else(ListOutcome::Error);
        let expectation = assertion.expectation.as_deref();
        totals.list_objects.record(
            list_ok(&outcome, expectation, assertion.error_code),
            || {
                format!(
                    "{test} stage {stage_index} list_objects {index} (`{}#{}@{}`): expected {}, got {}",
                    request.object_type,
                    request.relation,
                    request.user,
                    expected_text(expectation, assertion.error_code),
                    outcome.describe()
                )
            },
        );
    }
    for (index, assertion) in stage.list_users_assertions.iter().flatten().enumerate() {
        let request = &assertion.request;
        let outcome = with_contextual(translation, lines, &stage_store, assertion, |fixture| {
            list_users(translation, fixture, assertion, &mut totals.disagreements)
        })
        .unwrap_or_else(ListOutcome::Error);
        let expectation = assertion.expectation.as_deref();
        totals.list_users.record(
            list_ok(&outcome, expectation, assertion.error_code),
            || {
                format!(
                    "{test} stage {stage_index} list_users {index} (`{}#{}@{}`): expected {}, got {}",
                    request.object,
                    request.relation,
                    request.filters.join(","),
                    expected_text(expectation, assertion.error_code),
                    outcome.describe()
                )
            },
        );
    }
}

fn run_test(test: &Test, totals: &mut Totals) {
    totals.tests += 1;
    let mut tuples: Vec<Tuple> = Vec::new();
    let mut translated = true;
    for (stage_index, stage) in test.stages.iter().enumerate() {
        tuples.extend(stage.tuples.iter().flatten().cloned());
        let translation = match translate_openfga(&stage.model) {
            Ok(translation) => translation,
            Err(err) => {
                totals
                    .untranslatable
                    .push(format!("{} (stage {stage_index}): {err}", test.name));
                translated = false;
                break;
            }
        };
        let mut lines = Vec::new();
        for tuple in &tuples {
            if let Some(line) = relationship(&translation, tuple)
                && !lines.contains(&line)
            {
                lines.push(line);
            }
        }
        let lines = match loadable(translation.schema(), lines) {
            Ok(lines) => lines,
            Err(err) => {
                totals.untranslatable.push(format!(
                    "{} (stage {stage_index}): schema: {err}",
                    test.name
                ));
                translated = false;
                break;
            }
        };
        for (index, assertion) in stage.check_assertions.iter().flatten().enumerate() {
            if assertion.tuple.user.ends_with(":*") {
                totals.checks.skipped += 1;
                continue;
            }
            let outcome = check(&translation, &lines, assertion);
            let ok = match (assertion.error_code, assertion.expectation) {
                (Some(2000), _) => matches!(outcome, Outcome::Caveated | Outcome::Error(_)),
                (Some(_), _) => matches!(outcome, Outcome::Error(_)),
                (None, Some(true)) => outcome == Outcome::True,
                (None, _) => outcome == Outcome::False,
            };
            totals.checks.record(ok, || {
                let expected = match (assertion.error_code, assertion.expectation) {
                    (Some(code), _) => format!("error {code}"),
                    (None, Some(true)) => "true".to_owned(),
                    (None, _) => "false".to_owned(),
                };
                format!(
                    "{} stage {stage_index} check {index} (`{}#{}@{}`): expected {expected}, got {outcome:?}",
                    test.name, assertion.tuple.object, assertion.tuple.relation, assertion.tuple.user
                )
            });
        }
        run_lists(&test.name, stage_index, stage, &translation, &lines, totals);
    }
    if translated {
        totals.translated += 1;
    }
}

/// Reads `key: N` from the results file.
fn floor(results: &str, key: &str) -> usize {
    results
        .lines()
        .find_map(|line| line.trim().strip_prefix(key)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("`{key}` missing from tests/openfga-results.md"))
}

/// Prints one kind's counts and failures, and holds them to the floors of the results file.
fn enforce(results: &str, kind: &str, counts: &Counts) {
    println!(
        "{kind} assertions: {} passed, {} failed, {} skipped",
        counts.passed, counts.failed, counts.skipped
    );
    for line in &counts.failures {
        println!("failed: {line}");
    }
    let min_passed = floor(results, &format!("- {kind} passed at least:"));
    let max_failed = floor(results, &format!("- {kind} failed at most:"));
    assert!(
        counts.passed >= min_passed,
        "{kind}: passed {} < floor {min_passed}",
        counts.passed
    );
    assert!(
        counts.failed <= max_failed,
        "{kind}: failed {} > ceiling {max_failed}",
        counts.failed
    );
}

#[test]
fn openfga_consolidated_tests() {
    let dir = corpus_dir();
    let mut totals = Totals::default();
    for name in ["consolidated_1_1_tests.yaml", "abac_tests.yaml"] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        let file: File = serde_yaml::from_str(&text).unwrap();
        for test in &file.tests {
            run_test(test, &mut totals);
        }
    }
    println!(
        "{} tests, {} translated, {} untranslatable",
        totals.tests,
        totals.translated,
        totals.untranslatable.len(),
    );
    for line in &totals.untranslatable {
        println!("untranslatable: {line}");
    }
    let results = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openfga-results.md"),
    )
    .unwrap();
    enforce(&results, "check", &totals.checks);
    enforce(&results, "list_objects", &totals.list_objects);
    enforce(&results, "list_users", &totals.list_users);
    assert!(
        totals.disagreements.is_empty(),
        "lookup results that Check does not confirm:\n{}",
        totals.disagreements.join("\n")
    );
    let min_translated = floor(&results, "- translated at least:");
    assert!(
        totals.translated >= min_translated,
        "translated {} < floor {min_translated}",
        totals.translated
    );
}
