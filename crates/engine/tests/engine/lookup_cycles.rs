//! LookupResources over cyclic data, where SpiceDB's answer depends on the path its walk
//! takes: it fails with max depth when the walk goes round the cycle and answers when the
//! cycle sits in a branch it does not walk. Both cases below were checked against SpiceDB
//! v1.54 (the harness's `diffcheck.py`, seed 2).

use ostiary_engine::EngineError;
use serde_json::Map;

use crate::support::fixture;

fn schema(comment: &str) -> String {
    format!(
        r#"
definition user {{}}

definition group {{
    relation member: user | group#member
}}

definition folder {{
    relation admin: group#member
    permission audit = admin
}}

definition board {{
    relation parent: board
    relation in_folder: folder
    permission foo = in_folder->admin
    permission comment = {comment}
}}
"#
    )
}

/// `bo0` and `bo5` are each other's parent; `u3` reaches `bo5` through its folder and `bo0`
/// through `parent->foo`.
const RELATIONSHIPS: &str = "
board:bo0#parent@board:bo5
board:bo5#in_folder@folder:f0
board:bo5#parent@board:bo0
folder:f0#admin@group:g1#member
group:g1#member@user:u3
";

fn lookup(comment: &str) -> Result<Vec<String>, EngineError> {
    let fixture = fixture(&schema(comment), RELATIONSHIPS).unwrap();
    let found = fixture.lookup_resources(
        &"board".parse().unwrap(),
        &"comment".parse().unwrap(),
        &"user:u3".parse().unwrap(),
        &Map::new(),
        None,
    )?;
    Ok(found
        .iter()
        .map(|res| res.resource_id.to_string())
        .collect())
}

#[test]
fn a_cycle_in_a_later_branch_of_an_intersection_is_not_walked() {
    // Only the first branch of an intersection leads the walk, so the recursive arrow in the
    // second branch never sends it round the parent cycle.
    assert_eq!(
        lookup("(in_folder->audit & parent->comment) + parent->foo + in_folder->admin").unwrap(),
        ["bo0", "bo5"]
    );
    // Both resources are granted, as Check says.
    let fixture = fixture(
        &schema("(in_folder->audit & parent->comment) + parent->foo + in_folder->admin"),
        RELATIONSHIPS,
    )
    .unwrap();
    for board in ["bo0", "bo5"] {
        let answer = fixture
            .check_with(&format!("board:{board}#comment@user:u3"), &Map::new())
            .unwrap();
        assert_eq!(answer, ostiary_engine::Permissionship::Has, "{board}");
    }
}

#[test]
fn a_cycle_in_the_first_branch_of_an_intersection_fails_with_max_depth() {
    // The same permission with the arrow first: the walk follows `parent->comment` from
    // one board to the other and back, as SpiceDB's does until its depth limit.
    assert!(matches!(
        lookup("(parent->comment & in_folder->audit) + parent->foo + in_folder->admin"),
        Err(EngineError::MaxDepthExceeded { .. })
    ));
    // A plain recursive union walks the cycle too.
    assert!(matches!(
        lookup("parent->comment + in_folder->admin"),
        Err(EngineError::MaxDepthExceeded { .. })
    ));
}
