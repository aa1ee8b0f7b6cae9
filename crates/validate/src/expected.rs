//! Expected relations (the `validation` block): parsing `[SUBJECT] is <ONR>/<ONR>` lines,
//! collecting the subjects a recursive Expand reaches (with the places they were found,
//! whether they are caveated and a wildcard's exclusions) as SpiceDB's development membership
//! set does, comparing the two, and regenerating the block from the data.
//!
//! Only whether a subject is caveated matters here, never the caveat expression, so caveat
//! expressions are tracked as one flag: SpiceDB's `and`, `or` and `not` of expressions are
//! caveated whenever an operand is, and its short-circuited `or` is uncaveated whenever an
//! operand is.

use std::collections::{BTreeMap, BTreeSet};

use ostiary_engine::{ExpandMode, ExpandNode, ExpandTree, SetOperation};
use ostiary_types::{ObjectRef, RelationName};

use crate::fixture::Fixture;

/// A subject found by the expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Found {
    id: String,
    caveated: bool,
    /// For a wildcard: the subjects it excludes, by id.
    excluded: BTreeMap<String, Found>,
    /// `type:id#relation` of each relationship that names the subject directly.
    places: BTreeSet<String>,
}

impl Found {
    fn merged(id: &str, caveated: bool, sources: &[&Found]) -> Found {
        Found {
            id: id.to_owned(),
            caveated,
            excluded: BTreeMap::new(),
            places: sources
                .iter()
                .flat_map(|source| source.places.iter().cloned())
                .collect(),
        }
    }
}

/// The subjects of one subject type (and relation): concrete ids and at most one wildcard
/// (SpiceDB's `BaseSubjectSet`).
#[derive(Debug, Clone, Default)]
struct BaseSet {
    concrete: BTreeMap<String, Found>,
    wildcard: Option<Found>,
}

const WILDCARD: &str = "*";

impl BaseSet {
    fn add(&mut self, found: Found) {
        if found.id == WILDCARD {
            let mut wildcard = union_wildcards(self.wildcard.take(), found);
            for concrete in self.concrete.values() {
                wildcard = union_wildcard_with_concrete(wildcard, concrete);
            }
            self.wildcard = Some(wildcard);
            return;
        }
        if let Some(wildcard) = self.wildcard.take() {
            self.wildcard = Some(union_wildcard_with_concrete(wildcard, &found));
        }
        let merged = match self.concrete.remove(&found.id) {
            None => found,
            Some(existing) => Found::merged(
                &found.id,
                existing.caveated && found.caveated,
                &[&existing, &found],
            ),
        };
        self.concrete.insert(merged.id.clone(), merged);
    }

    fn add_all(&mut self, other: &BaseSet) {
        if let Some(wildcard) = &other.wildcard {
            self.add(wildcard.clone());
        }
        for found in other.concrete.values() {
            self.add(found.clone());
        }
    }

    fn subtract(&mut self, other: &BaseSet) {
        if let Some(removed) = &other.wildcard {
            // Concretes the removed wildcard excludes are what survive of ours.
            let mut kept = BTreeMap::new();
            for (id, concrete) in std::mem::take(&mut self.concrete) {
                match removed.excluded.get(&id) {
                    Some(exclusion) => {
                        let caveated = concrete.caveated || exclusion.caveated;
                        kept.insert(
                            id.clone(),
                            Found {
                                caveated,
                                ..concrete
                            },
                        );
                    }
                    None if removed.caveated => {
                        kept.insert(
                            id.clone(),
                            Found {
                                caveated: true,
                                ..concrete
                            },
                        );
                    }
                    None => {}
                }
            }
            self.concrete = kept;
            if let Some(wildcard) = self.wildcard.take() {
                if removed.caveated {
                    self.wildcard = Some(Found {
                        caveated: true,
                        ..wildcard
                    });
                } else {
                    for exclusion in removed.excluded.values() {
                        let ours = wildcard.excluded.get(&exclusion.id);
                        if ours.is_some_and(|ours| !ours.caveated) {
                            continue;
                        }
                        let caveated = wildcard.caveated
                            || exclusion.caveated
                            || ours.is_some_and(|ours| ours.caveated);
                        let found = Found::merged(&exclusion.id, caveated, &[&wildcard]);
                        let merged = match self.concrete.remove(&found.id) {
                            None => found,
                            Some(existing) => Found::merged(
                                &found.id,
                                existing.caveated && found.caveated,
                                &[&existing, &found],
                            ),
                        };
                        self.concrete.insert(merged.id.clone(), merged);
                    }
                }
            }
        }
        for removed in other.concrete.values() {
            if let Some(mut wildcard) = self.wildcard.take() {
                let exclusion = match wildcard.excluded.remove(&removed.id) {
                    None => Found::merged(&removed.id, removed.caveated, &[removed]),
                    Some(existing) => Found::merged(
                        &removed.id,
                        existing.caveated && removed.caveated,
                        &[&existing, removed],
                    ),
                };
                wildcard.excluded.insert(exclusion.id.clone(), exclusion);
                self.wildcard = Some(wildcard);
            }
            if let Some(concrete) = self.concrete.remove(&removed.id)
                && removed.caveated
            {
                self.concrete.insert(
                    removed.id.clone(),
                    Found {
                        caveated: true,
                        ..concrete
                    },
                );
            }
        }
    }

    fn intersect(&self, other: &BaseSet) -> BaseSet {
        let wildcard = match (&self.wildcard, &other.wildcard) {
            (Some(ours), Some(theirs)) => {
                let mut found =
                    Found::merged(WILDCARD, ours.caveated || theirs.caveated, &[ours, theirs]);
                found.excluded = ours.excluded.clone();
                for exclusion in theirs.excluded.values() {
                    let merged = match found.excluded.remove(&exclusion.id) {
                        None => exclusion.clone(),
                        Some(existing) => Found::merged(
                            &exclusion.id,
                            existing.caveated && exclusion.caveated,
                            &[&existing, exclusion],
                        ),
                    };
                    found.excluded.insert(merged.id.clone(), merged);
                }
                Some(found)
            }
            _ => None,
        };
        let mut result = BaseSet {
            concrete: BTreeMap::new(),
            wildcard,
        };
        let mut parts: BTreeMap<String, Vec<Found>> = BTreeMap::new();
        for (id, ours) in &self.concrete {
            if let Some(theirs) = other.concrete.get(id) {
                parts.entry(id.clone()).or_default().push(Found::merged(
                    id,
                    ours.caveated || theirs.caveated,
                    &[ours, theirs],
                ));
            }
            if let Some(wildcard) = &other.wildcard
                && let Some(found) = concrete_in_wildcard(ours, wildcard)
            {
                parts.entry(id.clone()).or_default().push(found);
            }
        }
        if let Some(wildcard) = &self.wildcard {
            for (id, theirs) in &other.concrete {
                if let Some(found) = concrete_in_wildcard(theirs, wildcard) {
                    parts.entry(id.clone()).or_default().push(found);
                }
            }
        }
        for (id, founds) in parts {
            let refs: Vec<&Found> = founds.iter().collect();
            let caveated = founds.iter().all(|found| found.caveated);
            result
                .concrete
                .insert(id.clone(), Found::merged(&id, caveated, &refs));
        }
        result
    }

    fn apply_parent_caveat(&mut self) {
        for found in self.concrete.values_mut() {
            found.caveated = true;
        }
        if let Some(wildcard) = &mut self.wildcard {
            wildcard.caveated = true;
        }
    }
}

/// `{* - A} ∪ {* - B}` is `{* - (A ∩ B)}`.
fn union_wildcards(existing: Option<Found>, adding: Found) -> Found {
    let Some(existing) = existing else {
        return adding;
    };
    let mut found = Found::merged(
        WILDCARD,
        existing.caveated && adding.caveated,
        &[&existing, &adding],
    );
    for (id, exclusion) in &existing.excluded {
        if let Some(other) = adding.excluded.get(id) {
            found.excluded.insert(
                id.clone(),
                Found::merged(
                    id,
                    exclusion.caveated || other.caveated,
                    &[exclusion, other],
                ),
            );
        }
    }
    found
}

/// Adding a concrete subject to a wildcard lifts (or, when caveated, conditions) its
/// exclusion.
fn union_wildcard_with_concrete(mut wildcard: Found, concrete: &Found) -> Found {
    if let Some(exclusion) = wildcard.excluded.remove(&concrete.id)
        && concrete.caveated
    {
        wildcard.excluded.insert(
            exclusion.id.clone(),
            Found {
                caveated: true,
                ..exclusion
            },
        );
    }
    wildcard
}

/// A concrete subject intersected with a wildcard: the places are the concrete subject's
/// only (SpiceDB does not list where the wildcard was found).
fn concrete_in_wildcard(concrete: &Found, wildcard: &Found) -> Option<Found> {
    match wildcard.excluded.get(&concrete.id) {
        Some(exclusion) if !exclusion.caveated => None,
        Some(_) => Some(Found::merged(&concrete.id, true, &[concrete])),
        None => Some(Found::merged(
            &concrete.id,
            concrete.caveated || wildcard.caveated,
            &[concrete],
        )),
    }
}

/// The subject kind a set holds: the subject type and relation (`None` for objects).
type SubjectKind = (String, Option<String>);

/// Subjects of every kind (SpiceDB's `TrackingSubjectSet`).
#[derive(Debug, Clone, Default)]
struct TrackingSet {
    by_kind: BTreeMap<SubjectKind, BaseSet>,
}

impl TrackingSet {
    fn add_all(&mut self, other: &TrackingSet) {
        for (kind, set) in &other.by_kind {
            self.by_kind.entry(kind.clone()).or_default().add_all(set);
        }
    }

    fn intersect(&self, other: &TrackingSet) -> TrackingSet {
        TrackingSet {
            by_kind: self
                .by_kind
                .iter()
                .filter_map(|(kind, set)| {
                    other
                        .by_kind
                        .get(kind)
                        .map(|theirs| (kind.clone(), set.intersect(theirs)))
                })
                .collect(),
        }
    }

    fn subtract(&mut self, other: &TrackingSet) {
        for (kind, set) in &mut self.by_kind {
            if let Some(theirs) = other.by_kind.get(kind) {
                set.subtract(theirs);
            }
        }
    }

    fn apply_parent_caveat(&mut self) {
        for set in self.by_kind.values_mut() {
            set.apply_parent_caveat();
        }
    }

    /// Every subject found, by its text form (`type:id` or `type:id#relation`).
    fn subjects(&self) -> BTreeMap<String, &Found> {
        let mut all = BTreeMap::new();
        for ((subject_type, relation), set) in &self.by_kind {
            for found in set.wildcard.iter().chain(set.concrete.values()) {
                all.insert(
                    subject_text(subject_type, &found.id, relation.as_deref()),
                    found,
                );
            }
        }
        all
    }

    /// The regenerated lines of this key, sorted.
    fn validation_lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for ((subject_type, relation), set) in &self.by_kind {
            for found in set.wildcard.iter().chain(set.concrete.values()) {
                let mut text = subject_text(subject_type, &found.id, relation.as_deref());
                if found.caveated {
                    text.push_str("[...]");
                }
                if found.id == WILDCARD && !found.excluded.is_empty() {
                    let mut excluded: Vec<String> = found
                        .excluded
                        .values()
                        .map(|exclusion| {
                            let mut text =
                                subject_text(subject_type, &exclusion.id, relation.as_deref());
                            if exclusion.caveated {
                                text.push_str("[...]");
                            }
                            text
                        })
                        .collect();
                    excluded.sort();
                    text = format!("{text} - {{{}}}", excluded.join(", "));
                }
                let places: Vec<String> = found
                    .places
                    .iter()
                    .map(|place| format!("<{place}>"))
                    .collect();
                lines.push(format!("[{text}] is {}", places.join("/")));
            }
        }
        lines.sort();
        lines
    }
}

fn subject_text(subject_type: &str, id: &str, relation: Option<&str>) -> String {
    match relation {
        Some(relation) => format!("{subject_type}:{id}#{relation}"),
        None => format!("{subject_type}:{id}"),
    }
}

/// The subjects an expansion tree reaches (SpiceDB's `populateFoundSubjects`).
fn populate(tree: &ExpandTree) -> TrackingSet {
    let mut set = match &tree.node {
        ExpandNode::Leaf { subjects } => {
            let place = format!("{}#{}", tree.expanded_object, tree.expanded_relation);
            let mut set = TrackingSet::default();
            for direct in subjects {
                let subject = &direct.subject;
                let kind = (
                    subject.object_type().to_string(),
                    subject.relation().map(ToString::to_string),
                );
                set.by_kind.entry(kind).or_default().add(Found {
                    id: subject.object_id().to_string(),
                    caveated: direct.caveat.is_some(),
                    excluded: BTreeMap::new(),
                    places: BTreeSet::from([place.clone()]),
                });
            }
            set
        }
        ExpandNode::Intermediate {
            operation,
            children,
        } => {
            let mut children = children.iter().map(populate);
            let mut set = match operation {
                SetOperation::Union => TrackingSet::default(),
                SetOperation::Intersection | SetOperation::Exclusion => {
                    children.next().unwrap_or_default()
                }
            };
            for child in children {
                match operation {
                    SetOperation::Union => set.add_all(&child),
                    SetOperation::Intersection => set = set.intersect(&child),
                    SetOperation::Exclusion => set.subtract(&child),
                }
            }
            set
        }
    };
    if tree.caveat.is_some() {
        set.apply_parent_caveat();
    }
    set
}

/// One parsed line of an expected-relations block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedSubject {
    /// `type:id`, `type:id#relation` or `type:*`.
    pub subject: String,
    /// Marked `[...]`.
    pub caveated: bool,
    /// A wildcard's exclusions as written (each may end in `[...]`), sorted.
    pub exclusions: Vec<String>,
    /// The `<type:id#relation>` places, sorted.
    pub places: Vec<String>,
}

/// Parses `[SUBJECT] is <ONR>/<ONR>` as SpiceDB does (the places may be omitted).
///
/// # Errors
///
/// No `[subject]`, or a malformed subject.
pub fn parse_expected_line(line: &str) -> Result<ExpectedSubject, String> {
    let (Some(open), Some(close)) = (line.find('['), line.rfind(']')) else {
        return Err(format!("no expected subject specified in `{line}`"));
    };
    if close <= open {
        return Err(format!("no expected subject specified in `{line}`"));
    }
    let inner = &line[open + 1..close];
    let mut places: Vec<String> = Vec::new();
    let mut rest = &line[close + 1..];
    while let Some(start) = rest.find('<') {
        let Some(end) = rest[start..].find('>') else {
            break;
        };
        places.push(rest[start + 1..start + end].to_owned());
        rest = &rest[start + end + 1..];
    }
    places.sort();
    let (subject_part, exclusions) = match inner.split_once(" - ") {
        Some((subject, exclusions)) => {
            let exclusions = exclusions.trim();
            let list = exclusions
                .strip_prefix('{')
                .and_then(|list| list.strip_suffix('}'))
                .ok_or_else(|| format!("invalid subject: `{inner}`"))?;
            let mut exclusions: Vec<String> = list
                .split(',')
                .map(|item| normalize_subject(item.trim()))
                .collect::<Result<_, _>>()?;
            exclusions.sort();
            (subject.trim(), exclusions)
        }
        None => (inner.trim(), Vec::new()),
    };
    let (subject, caveated) = match subject_part.strip_suffix("[...]") {
        Some(subject) => (subject, true),
        None => (subject_part, false),
    };
    let subject = normalize_subject(subject)?;
    Ok(ExpectedSubject {
        subject,
        caveated,
        exclusions,
        places,
    })
}

/// A subject in canonical text form (`#...` dropped), keeping a `[...]` suffix.
fn normalize_subject(text: &str) -> Result<String, String> {
    let (bare, suffix) = match text.strip_suffix("[...]") {
        Some(bare) => (bare, "[...]"),
        None => (text, ""),
    };
    let parsed: ostiary_types::SubjectRef = bare
        .parse()
        .map_err(|err| format!("invalid subject: `{text}`: {err}"))?;
    Ok(format!("{parsed}{suffix}"))
}

/// The mismatches of one key: (the expected line it concerns, if any; the message).
pub(crate) type Mismatch = (Option<String>, String);

/// Expands one key of the block and compares; returns the mismatches and the regenerated
/// lines of the key.
pub(crate) fn compare_key(
    fixture: &Fixture,
    key: &str,
    lines: &[String],
) -> Result<(Vec<Mismatch>, Vec<String>), String> {
    let (object, relation) = key
        .split_once('#')
        .ok_or_else(|| format!("invalid resource and relation: `{key}`"))?;
    let object: ObjectRef = object
        .parse()
        .map_err(|err| format!("invalid resource and relation: `{key}`: {err}"))?;
    let relation: RelationName = relation
        .parse()
        .map_err(|err| format!("invalid resource and relation: `{key}`: {err}"))?;
    let tree = fixture
        .engine
        .expand(
            fixture.snapshot.as_ref(),
            &fixture.schema,
            &object,
            &relation,
            ExpandMode::Recursive,
        )
        .map_err(|err| format!("error expanding `{key}`: {err}"))?;
    let set = populate(&tree);
    let found = set.subjects();
    let mut mismatches = Vec::new();
    let mut listed = BTreeSet::new();
    for line in lines {
        let expected = match parse_expected_line(line) {
            Ok(expected) => expected,
            Err(message) => {
                mismatches.push((
                    Some(line.clone()),
                    format!("For object and permission/relation `{key}`, {message}"),
                ));
                continue;
            }
        };
        listed.insert(expected.subject.clone());
        let Some(actual) = found.get(&expected.subject) else {
            mismatches.push((
                Some(line.clone()),
                format!(
                    "For object and permission/relation `{key}`, missing expected subject `{}`",
                    expected.subject
                ),
            ));
            continue;
        };
        let places: Vec<String> = actual.places.iter().cloned().collect();
        if places != expected.places {
            mismatches.push((
                Some(line.clone()),
                format!(
                    "For object and permission/relation `{key}`, found different relationships for subject `{}`: Specified: `{}`, Computed: `{}`",
                    expected.subject,
                    expected.places.iter().map(|p| format!("<{p}>")).collect::<Vec<_>>().join("/"),
                    places.iter().map(|p| format!("<{p}>")).collect::<Vec<_>>().join("/"),
                ),
            ));
        }
        let is_wildcard = actual.id == WILDCARD;
        if !is_wildcard && !expected.exclusions.is_empty() {
            mismatches.push((
                Some(line.clone()),
                format!(
                    "For object and permission/relation `{key}`, found unexpected excluded subjects for `{}`",
                    expected.subject
                ),
            ));
        } else if is_wildcard {
            let (subject_type, relation) = split_kind(&expected.subject);
            let mut excluded: Vec<String> = actual
                .excluded
                .values()
                .map(|exclusion| {
                    let text = subject_text(subject_type, &exclusion.id, relation);
                    if exclusion.caveated {
                        format!("{text}[...]")
                    } else {
                        text
                    }
                })
                .collect();
            excluded.sort();
            if excluded != expected.exclusions {
                mismatches.push((
                    Some(line.clone()),
                    format!(
                        "For object and permission/relation `{key}`, found mismatched excluded subjects for `{}`: Specified: `{{{}}}`, Computed: `{{{}}}`",
                        expected.subject,
                        expected.exclusions.join(", "),
                        excluded.join(", ")
                    ),
                ));
            }
        }
        if actual.caveated != expected.caveated {
            mismatches.push((
                Some(line.clone()),
                format!(
                    "For object and permission/relation `{key}`, found caveat mismatch for `{}`: expected {}, found {}",
                    expected.subject,
                    if expected.caveated { "caveated" } else { "not caveated" },
                    if actual.caveated { "caveated" } else { "not caveated" },
                ),
            ));
        }
    }
    for subject in found.keys() {
        if !listed.contains(subject) {
            mismatches.push((
                None,
                format!(
                    "For object and permission/relation `{key}`, subject `{subject}` found but not listed in expected subjects"
                ),
            ));
        }
    }
    Ok((mismatches, set.validation_lines()))
}

/// `type` and relation of a subject's text form.
fn split_kind(subject: &str) -> (&str, Option<&str>) {
    let (object, relation) = match subject.split_once('#') {
        Some((object, relation)) => (object, Some(relation)),
        None => (subject, None),
    };
    (object.split_once(':').map_or(object, |(t, _)| t), relation)
}

/// Renders a regenerated block as zed prints it (`yaml.v3`: keys sorted, four-space indent,
/// lines single-quoted).
pub(crate) fn render_block(keys: &BTreeMap<String, Vec<String>>) -> String {
    if keys.is_empty() {
        return "{}\n".to_owned();
    }
    let mut out = String::new();
    for (key, lines) in keys {
        out.push_str(key);
        if lines.is_empty() {
            out.push_str(": []\n");
            continue;
        }
        out.push_str(":\n");
        for line in lines {
            out.push_str("    - '");
            out.push_str(&line.replace('\'', "''"));
            out.push_str("'\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(id: &str, caveated: bool, place: &str) -> Found {
        Found {
            id: id.to_owned(),
            caveated,
            excluded: BTreeMap::new(),
            places: BTreeSet::from([place.to_owned()]),
        }
    }

    fn set(items: &[Found]) -> TrackingSet {
        let mut set = TrackingSet::default();
        for item in items {
            set.by_kind
                .entry(("user".to_owned(), None))
                .or_default()
                .add(item.clone());
        }
        set
    }

    #[test]
    fn lines_parse_with_caveats_exclusions_and_places() {
        let line = "[user:* - {user:fred, user:jimmy[...]}] is <document:somedoc#viewer>";
        assert_eq!(
            parse_expected_line(line),
            Ok(ExpectedSubject {
                subject: "user:*".to_owned(),
                caveated: false,
                exclusions: vec!["user:fred".to_owned(), "user:jimmy[...]".to_owned()],
                places: vec!["document:somedoc#viewer".to_owned()],
            })
        );
        let line = "[user:sarah[...]] is <b:x#y>/<a:x#y>";
        let parsed = parse_expected_line(line).unwrap();
        assert!(parsed.caveated);
        assert_eq!(parsed.places, vec!["a:x#y", "b:x#y"]);
        assert_eq!(
            parse_expected_line("[group:eng#...] is <a:x#y>")
                .unwrap()
                .subject,
            "group:eng"
        );
        assert!(parse_expected_line("user:x is <a:x#y>").is_err());
    }

    #[test]
    fn wildcard_minus_concretes_lists_exclusions() {
        let mut base = set(&[
            found("*", false, "doc:x#viewer"),
            found("tom", false, "doc:x#viewer"),
        ]);
        base.subtract(&set(&[
            found("fred", false, "doc:x#banned"),
            found("tom", true, "doc:x#banned"),
        ]));
        assert_eq!(
            base.validation_lines(),
            vec![
                "[user:* - {user:fred, user:tom[...]}] is <doc:x#viewer>",
                "[user:tom[...]] is <doc:x#viewer>",
            ]
        );
    }

    #[test]
    fn intersections_merge_places_and_caveats() {
        let left = set(&[
            found("ann", false, "a:x#one"),
            found("bob", true, "a:x#one"),
        ]);
        let right = set(&[found("ann", false, "a:x#two"), found("*", false, "a:x#two")]);
        assert_eq!(
            left.intersect(&right).validation_lines(),
            vec![
                "[user:ann] is <a:x#one>/<a:x#two>",
                "[user:bob[...]] is <a:x#one>"
            ]
        );
    }

    #[test]
    fn blocks_render_as_zed_prints_them() {
        let keys = BTreeMap::from([
            (
                "doc:x#view".to_owned(),
                vec!["[user:ann] is <doc:x#viewer>".to_owned()],
            ),
            ("doc:y#view".to_owned(), Vec::new()),
        ]);
        assert_eq!(
            render_block(&keys),
            "doc:x#view:\n    - '[user:ann] is <doc:x#viewer>'\ndoc:y#view: []\n"
        );
        assert_eq!(render_block(&BTreeMap::new()), "{}\n");
    }
}
