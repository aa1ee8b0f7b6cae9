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

const TICKETS: &str = r#"
definition user {}

definition group {
    relation member: user | group#member
}

definition repo {
    relation writer: user | group#member
}

definition ticket {
    relation parent: ticket
    relation in_repo: repo
    relation admin: user | group#member | user:*
    permission delete = (in_repo->writer & admin) & (admin - parent->delete)
}
"#;

/// `t0` and `t1` are each other's parent; `t1` and `t2` are in `r0`, where `u0` writes.
const TICKET_RELATIONSHIPS: &str = "
group:g1#member@user:u0
group:g2#member@group:g1#member
repo:r0#writer@user:u0
ticket:t0#parent@ticket:t1
ticket:t1#admin@group:g2#member
ticket:t1#in_repo@repo:r0
ticket:t1#parent@ticket:t0
ticket:t2#in_repo@repo:r0
ticket:t2#parent@ticket:t1
";

fn lookup_tickets(relationships: &str) -> Result<Vec<String>, EngineError> {
    let fixture = fixture(TICKETS, relationships).unwrap();
    let found = fixture.lookup_resources(
        &"ticket".parse().unwrap(),
        &"delete".parse().unwrap(),
        &"user:u0".parse().unwrap(),
        &Map::new(),
        None,
    )?;
    Ok(found
        .iter()
        .map(|res| res.resource_id.to_string())
        .collect())
}

#[test]
fn candidates_checked_together_fail_on_a_cycle_that_each_alone_avoids() {
    // `t1` and `t2` are checked in one dispatch: `parent->delete` is then dispatched for
    // their parents `t0` and `t1` together, and `t1` keeps that pair's intersection non-empty,
    // so it goes round the `t0`/`t1` cycle. SpiceDB fails; so does Ostiary.
    assert!(matches!(
        lookup_tickets(TICKET_RELATIONSHIPS),
        Err(EngineError::MaxDepthExceeded { .. })
    ));
    // Check of `t1` alone answers: `t0`'s own intersection is empty before its cycle matters.
    let fixture = fixture(TICKETS, TICKET_RELATIONSHIPS).unwrap();
    assert_eq!(
        fixture
            .check_with("ticket:t1#delete@user:u0", &Map::new())
            .unwrap(),
        ostiary_engine::Permissionship::Has
    );
    // Without `t2` in the repository, or without its parent, nothing carries the cycle and
    // both answer `t1` (as SpiceDB does).
    for without in ["ticket:t2#in_repo@repo:r0", "ticket:t2#parent@ticket:t1"] {
        let relationships = TICKET_RELATIONSHIPS.replace(without, "");
        assert_eq!(
            lookup_tickets(&relationships).unwrap(),
            ["t1"],
            "without {without}"
        );
    }
}
