#!/usr/bin/env python3
"""End-to-end checks of a running `ostiary serve` with the official `authzed` Python client.

tests/e2e/python.rs starts the real binary on a loopback port (once on memory, once on
RocksDB) and runs this script with the interpreter of the venv deploy/setup.sh creates:

    $OSTIARY_PYTHON tests/python/authzed_e2e.py --addr 127.0.0.1:PORT --token KEY

The server must be fresh (no schema). Each check prints `ok <name>` when it passes; the first
failure prints `FAILED <name>: <why>` to stderr and exits with 1. Every RPC has a deadline, so
a hung server fails the run instead of hanging it. No check sleeps: reads name the tokens of
the writes they depend on, and Watch streams are read until a known token arrives.
"""

import argparse
import sys
import traceback

import grpc
from authzed.api.v1 import (
    CheckBulkPermissionsRequest,
    CheckBulkPermissionsRequestItem,
    CheckPermissionRequest,
    CheckPermissionResponse,
    Consistency,
    Cursor,
    DeleteRelationshipsRequest,
    DeleteRelationshipsResponse,
    DiffSchemaRequest,
    ExpandPermissionTreeRequest,
    InsecureClient,
    LookupResourcesRequest,
    LookupSubjectsRequest,
    ObjectReference,
    Precondition,
    ReadRelationshipsRequest,
    ReadSchemaRequest,
    ReflectSchemaRequest,
    Relationship,
    RelationshipFilter,
    RelationshipUpdate,
    SubjectReference,
    WatchRequest,
    WriteRelationshipsRequest,
    WriteSchemaRequest,
    ZedToken,
)
from authzed.api.v1.core_pb2 import AlgebraicSubjectSet
from authzed.api.v1.permission_service_pb2 import (
    ExportBulkRelationshipsRequest,
    ImportBulkRelationshipsRequest,
)
from authzed.api.v1.watch_service_pb2 import (
    WATCH_KIND_INCLUDE_CHECKPOINTS,
    WATCH_KIND_INCLUDE_RELATIONSHIP_UPDATES,
)

# Deadline of every call, in seconds.
TIMEOUT = 10

SCHEMA = """definition user {}

definition folder {
\trelation viewer: user
\tpermission view = viewer
}

definition document {
\trelation parent: folder
\trelation viewer: user | user:*
\trelation banned: user
\tpermission view = (viewer + parent->view) - banned
}
"""

HAS = CheckPermissionResponse.PERMISSIONSHIP_HAS_PERMISSION
NO = CheckPermissionResponse.PERMISSIONSHIP_NO_PERMISSION
TOUCH = RelationshipUpdate.OPERATION_TOUCH
CREATE = RelationshipUpdate.OPERATION_CREATE
DELETE = RelationshipUpdate.OPERATION_DELETE


class CheckFailed(Exception):
    """A check's expectation did not hold."""


def expect(condition, message):
    if not condition:
        raise CheckFailed(message)


def expect_equal(actual, expected, what):
    if actual != expected:
        raise CheckFailed(f"{what}: expected {expected!r}, got {actual!r}")


def expect_error(call, code, needle=""):
    """Runs `call`, which must fail with gRPC `code` and a message containing `needle`."""
    try:
        result = call()
        # Streaming calls fail when read.
        if hasattr(result, "__iter__") and not isinstance(result, (str, bytes)):
            list(result)
    except grpc.RpcError as err:
        expect(
            err.code() == code,
            f"expected {code.name} containing {needle!r}, got {err.code().name}: {err.details()}",
        )
        expect(
            needle in (err.details() or ""),
            f"the {code.name} message {err.details()!r} does not contain {needle!r}",
        )
        return err
    raise CheckFailed(f"expected {code.name} containing {needle!r}, but the call succeeded")


# --- builders -------------------------------------------------------------------------------


def obj(text):
    object_type, object_id = text.split(":", 1)
    return ObjectReference(object_type=object_type, object_id=object_id)


def subj(text):
    object_text, _, relation = text.partition("#")
    return SubjectReference(object=obj(object_text), optional_relation=relation)


def rel(text):
    """`document:1#viewer@user:alice` as a Relationship."""
    resource, rest = text.split("#", 1)
    relation, subject_text = rest.split("@", 1)
    return Relationship(resource=obj(resource), relation=relation, subject=subj(subject_text))


def rel_text(relationship):
    text = (
        f"{relationship.resource.object_type}:{relationship.resource.object_id}"
        f"#{relationship.relation}"
        f"@{relationship.subject.object.object_type}:{relationship.subject.object.object_id}"
    )
    if relationship.subject.optional_relation:
        text += f"#{relationship.subject.optional_relation}"
    return text


def update(operation, text):
    return RelationshipUpdate(operation=operation, relationship=rel(text))


def fresh(token):
    return Consistency(at_least_as_fresh=token)


def exact(token):
    return Consistency(at_exact_snapshot=token)


def full():
    return Consistency(fully_consistent=True)


def latency():
    return Consistency(minimize_latency=True)


# --- helpers over the client ----------------------------------------------------------------


class Ostiary:
    def __init__(self, addr, token):
        self.client = InsecureClient(addr, token)
        self.addr = addr

    def write(self, *updates, preconditions=()):
        response = self.client.WriteRelationships(
            WriteRelationshipsRequest(
                updates=list(updates), optional_preconditions=list(preconditions)
            ),
            timeout=TIMEOUT,
        )
        return response.written_at

    def check(self, consistency, resource, subject, permission="view"):
        request = CheckPermissionRequest(
            resource=obj(resource), permission=permission, subject=subj(subject)
        )
        if consistency is not None:
            request.consistency.CopyFrom(consistency)
        return self.client.CheckPermission(request, timeout=TIMEOUT)

    def allowed(self, consistency, resource, subject):
        answer = self.check(consistency, resource, subject).permissionship
        expect(answer in (HAS, NO), f"unexpected permissionship {answer} for {resource}@{subject}")
        return answer == HAS

    def dump(self):
        """The schema text (None before any schema) and every relationship, sorted."""
        try:
            schema = self.client.ReadSchema(ReadSchemaRequest(), timeout=TIMEOUT).schema_text
        except grpc.RpcError as err:
            expect(err.code() == grpc.StatusCode.NOT_FOUND, f"ReadSchema failed: {err}")
            schema = None
        relationships = []
        for batch in self.client.ExportBulkRelationships(
            ExportBulkRelationshipsRequest(consistency=full()), timeout=TIMEOUT
        ):
            relationships.extend(rel_text(r) for r in batch.relationships)
        return schema, sorted(relationships)

    def watch(self, start=None, object_types=(), kinds=()):
        request = WatchRequest(
            optional_object_types=list(object_types), optional_update_kinds=list(kinds)
        )
        if start is not None:
            request.optional_start_cursor.CopyFrom(start)
        return self.client.Watch(request, timeout=TIMEOUT)


def read_until(stream, until):
    """Reads Watch responses until `changes_through == until`; returns (token, updates) pairs."""
    delivered = []
    for response in stream:
        if not response.is_checkpoint:
            updates = sorted(
                f"{'TOUCH' if u.operation == TOUCH else 'DELETE'} {rel_text(u.relationship)}"
                for u in response.updates
            )
            delivered.append((response.changes_through.token, updates))
        if response.changes_through.token == until.token:
            return delivered
    raise CheckFailed(f"the Watch stream ended before {until.token}; got {delivered}")


# --- checks ---------------------------------------------------------------------------------


def check_schema(srv, state):
    token = srv.client.WriteSchema(WriteSchemaRequest(schema=SCHEMA), timeout=TIMEOUT).written_at
    expect(token.token, "WriteSchema returns a token")
    state["schema"] = token
    read = srv.client.ReadSchema(ReadSchemaRequest(), timeout=TIMEOUT)
    expect_equal(read.schema_text, SCHEMA, "ReadSchema text")
    reflected = srv.client.ReflectSchema(
        ReflectSchemaRequest(consistency=fresh(token)), timeout=TIMEOUT
    )
    expect_equal(
        sorted(d.name for d in reflected.definitions),
        ["document", "folder", "user"],
        "ReflectSchema definitions",
    )
    document = next(d for d in reflected.definitions if d.name == "document")
    expect_equal([r.name for r in document.relations], ["parent", "viewer", "banned"], "relations")
    expect_equal([p.name for p in document.permissions], ["view"], "permissions")
    comparison = SCHEMA.replace(
        "\trelation viewer: user\n\tpermission view = viewer\n",
        "\trelation viewer: user\n\trelation editor: user\n\tpermission view = viewer\n",
    )
    diff = srv.client.DiffSchema(
        DiffSchemaRequest(consistency=fresh(token), comparison_schema=comparison),
        timeout=TIMEOUT,
    )
    expect_equal(len(diff.diffs), 1, f"DiffSchema diffs {diff.diffs}")
    expect_equal(diff.diffs[0].WhichOneof("diff"), "relation_added", "diff kind")
    expect_equal(diff.diffs[0].relation_added.name, "editor", "added relation")


def check_write_and_check(srv, state):
    written = srv.write(
        update(CREATE, "folder:eng#viewer@user:alice"),
        update(CREATE, "folder:eng#viewer@user:dave"),
        update(CREATE, "document:spec#parent@folder:eng"),
        update(CREATE, "document:spec#viewer@user:bob"),
        update(CREATE, "document:spec#banned@user:dave"),
        update(TOUCH, "document:memo#viewer@user:carol"),
        update(TOUCH, "document:public#viewer@user:*"),
        preconditions=[
            Precondition(
                operation=Precondition.OPERATION_MUST_NOT_MATCH,
                filter=RelationshipFilter(resource_type="document"),
            )
        ],
    )
    state["written"] = written
    for resource, subject, expected in [
        ("document:spec", "user:alice", True),
        ("document:spec", "user:bob", True),
        ("document:spec", "user:dave", False),
        ("document:spec", "user:erin", False),
        ("document:public", "user:erin", True),
    ]:
        answer = srv.allowed(fresh(written), resource, subject)
        expect_equal(answer, expected, f"{resource}@{subject}")
    expect(srv.check(fresh(written), "document:spec", "user:alice").checked_at.token, "checked_at")

    def item(resource, permission, subject):
        return CheckBulkPermissionsRequestItem(
            resource=obj(resource), permission=permission, subject=subj(subject)
        )

    bulk = srv.client.CheckBulkPermissions(
        CheckBulkPermissionsRequest(
            consistency=fresh(written),
            items=[
                item("document:spec", "view", "user:alice"),
                item("document:spec", "view", "user:dave"),
                item("document:spec", "nope", "user:alice"),
                item("folder:eng", "view", "user:dave"),
            ],
        ),
        timeout=TIMEOUT,
    )
    answers = []
    for pair in bulk.pairs:
        if pair.WhichOneof("response") == "item":
            answers.append(pair.item.permissionship)
        else:
            answers.append(grpc.StatusCode.FAILED_PRECONDITION.value[0] == pair.error.code)
    expect_equal(answers, [HAS, NO, True, HAS], "CheckBulkPermissions answers in request order")


def check_expand(srv, state):
    expanded = srv.client.ExpandPermissionTree(
        ExpandPermissionTreeRequest(
            consistency=exact(state["written"]), resource=obj("document:spec"), permission="view"
        ),
        timeout=TIMEOUT,
    )
    root = expanded.tree_root
    expect_equal(root.expanded_object.object_id, "spec", "expanded object")
    expect_equal(root.expanded_relation, "view", "expanded relation")
    expect_equal(root.WhichOneof("tree_type"), "intermediate", "tree type")
    expect_equal(root.intermediate.operation, AlgebraicSubjectSet.OPERATION_EXCLUSION, "operation")
    expect_equal(len(root.intermediate.children), 2, "children")


def check_lookup_resources(srv, state):
    token = srv.write(*[update(CREATE, f"document:doc{i}#parent@folder:eng") for i in range(8)])
    state["docs"] = token
    expected = sorted([f"doc{i}" for i in range(8)] + ["spec", "public"])

    def lookup(limit, cursor=None):
        request = LookupResourcesRequest(
            consistency=exact(token),
            resource_object_type="document",
            permission="view",
            subject=subj("user:alice"),
            optional_limit=limit,
        )
        if cursor is not None:
            request.optional_cursor.CopyFrom(cursor)
        page = []
        for found in srv.client.LookupResources(request, timeout=TIMEOUT):
            expect(found.HasField("after_result_cursor"), "every result carries a cursor")
            page.append((found.resource_object_id, found.after_result_cursor))
        return page

    seen, cursor = [], None
    while True:
        page = lookup(2, cursor)
        expect(len(page) <= 2, f"a page holds at most 2 results: {page}")
        if not page:
            break
        seen.extend(page)
        cursor = page[-1][1]
        expect(len(seen) <= len(expected), f"paging does not end: {[s for s, _ in seen]}")
    ids = [resource_id for resource_id, _ in seen]
    expect_equal(sorted(ids), expected, "LookupResources across pages")
    resumed = [resource_id for resource_id, _ in lookup(0, seen[2][1])]
    expect_equal(resumed, ids[3:], "resumed from a result in the middle")


def check_lookup_subjects(srv, state):
    def subjects(resource):
        return sorted(
            r.subject.subject_object_id
            for r in srv.client.LookupSubjects(
                LookupSubjectsRequest(
                    consistency=fresh(state["docs"]),
                    resource=obj(resource),
                    permission="view",
                    subject_object_type="user",
                ),
                timeout=TIMEOUT,
            )
        )

    expect_equal(subjects("document:spec"), ["alice", "bob"], "subjects of spec (dave is banned)")
    expect_equal(subjects("document:public"), ["*"], "subjects of public")


def check_read_and_delete(srv, state):
    def read(limit, cursor=None):
        request = ReadRelationshipsRequest(
            consistency=fresh(state["written"]),
            relationship_filter=RelationshipFilter(
                resource_type="document", optional_resource_id="spec"
            ),
            optional_limit=limit,
        )
        if cursor is not None:
            request.optional_cursor.CopyFrom(cursor)
        return [
            (rel_text(r.relationship), r.after_result_cursor)
            for r in srv.client.ReadRelationships(request, timeout=TIMEOUT)
        ]

    whole = [text for text, _ in read(0)]
    expect_equal(
        sorted(whole),
        [
            "document:spec#banned@user:dave",
            "document:spec#parent@folder:eng",
            "document:spec#viewer@user:bob",
        ],
        "ReadRelationships",
    )
    paged, cursor = [], None
    while True:
        page = read(1, cursor)
        if not page:
            break
        paged.append(page[0][0])
        cursor = page[0][1]
        expect(len(paged) <= len(whole), f"paging does not end: {paged}")
    expect_equal(paged, whole, "pages of one in the order of one read")

    deleted = srv.client.DeleteRelationships(
        DeleteRelationshipsRequest(
            relationship_filter=RelationshipFilter(
                resource_type="document", optional_resource_id="memo"
            )
        ),
        timeout=TIMEOUT,
    )
    expect_equal(deleted.relationships_deleted_count, 1, "deleted count")
    expect_equal(
        deleted.deletion_progress,
        DeleteRelationshipsResponse.DELETION_PROGRESS_COMPLETE,
        "deletion progress",
    )
    memo_visible = srv.allowed(fresh(deleted.deleted_at), "document:memo", "user:carol")
    expect(not memo_visible, "memo deleted")


def check_import_export(srv, state):
    n_total = 250
    batches = [
        ImportBulkRelationshipsRequest(
            relationships=[
                rel(f"document:bulk{i:04}#viewer@user:u{i}")
                for i in range(start, min(start + 100, n_total))
            ]
        )
        for start in range(0, n_total, 100)
    ]
    imported = srv.client.ImportBulkRelationships(iter(batches), timeout=TIMEOUT)
    expect_equal(imported.num_loaded, n_total, "num_loaded")
    expect(srv.allowed(full(), "document:bulk0042", "user:u42"), "an imported relationship works")

    def export(cursor=None):
        request = ExportBulkRelationshipsRequest(
            consistency=full(),
            optional_limit=40,
            optional_relationship_filter=RelationshipFilter(
                resource_type="document", optional_relation="viewer"
            ),
        )
        if cursor is not None:
            request.optional_cursor.CopyFrom(cursor)
        return srv.client.ExportBulkRelationships(request, timeout=TIMEOUT)

    first_stream = export()
    first = next(first_stream)
    first_stream.cancel()
    expect_equal(len(first.relationships), 40, "first export batch")
    exported = [rel_text(r) for r in first.relationships]
    for batch in export(first.after_result_cursor):
        expect(len(batch.relationships) <= 40, "export batch size")
        exported.extend(rel_text(r) for r in batch.relationships)
    expect_equal(len(set(exported)), len(exported), "no relationship exported twice")
    bulk = sorted(t for t in exported if t.startswith("document:bulk"))
    expect_equal(
        bulk, [f"document:bulk{i:04}#viewer@user:u{i}" for i in range(n_total)], "exported bulk"
    )
    expect_equal(len(exported), n_total + 2, "bulk plus bob on spec and the public wildcard")


def predates_schema(call):
    """Runs a minimize_latency `call`; None if its quantized revision predates the schema.

    `ostiary serve` has no flag for the 5 s quantization window, so such a read may land
    before the first WriteSchema."""
    try:
        return call()
    except grpc.RpcError as err:
        if err.code() == grpc.StatusCode.FAILED_PRECONDITION and "no schema" in err.details():
            return None
        raise


def check_consistency_modes(srv, state):
    granted = srv.write(update(CREATE, "document:cm#viewer@user:alice"))
    revoked = srv.write(update(DELETE, "document:cm#viewer@user:alice"))
    expect(not srv.allowed(exact(state["schema"]), "document:cm", "user:alice"), "exact(schema)")
    expect(srv.allowed(exact(granted), "document:cm", "user:alice"), "exact(granted)")
    expect(not srv.allowed(exact(revoked), "document:cm", "user:alice"), "exact(revoked)")
    expect_equal(
        srv.check(exact(granted), "document:cm", "user:alice").checked_at.token,
        granted.token,
        "an exact read reports its own revision",
    )
    expect(not srv.allowed(fresh(revoked), "document:cm", "user:alice"), "fresh(revoked)")
    expect(not srv.allowed(full(), "document:cm", "user:alice"), "fully consistent")
    srv.write(update(TOUCH, "document:cm#viewer@user:alice"))
    expect(srv.allowed(full(), "document:cm", "user:alice"), "fully consistent sees the write")
    for consistency in (latency(), None, fresh(granted)):
        response = predates_schema(lambda: srv.check(consistency, "document:cm", "user:alice"))
        if response is None:
            continue
        at_revision = srv.check(exact(response.checked_at), "document:cm", "user:alice")
        expect_equal(
            response.permissionship,
            at_revision.permissionship,
            f"{consistency} answered unlike its own revision",
        )


def check_garbled_tokens(srv, state):
    valid = state["written"].token
    flipped = valid[:4] + ("B" if valid[4] == "A" else "A") + valid[5:]
    before = srv.dump()
    for bad in ["not-a-token", "", valid[:-2], flipped, valid + "AAAA"]:
        token = ZedToken(token=bad)
        for field, consistency in [
            ("consistency.at_exact_snapshot", exact(token)),
            ("consistency.at_least_as_fresh", fresh(token)),
        ]:
            err = expect_error(
                lambda: srv.check(consistency, "document:spec", "user:alice"),
                grpc.StatusCode.INVALID_ARGUMENT,
                field,
            )
            expect("not a valid consistency token" in err.details(), err.details())
            expect_error(
                lambda: srv.client.ReadRelationships(
                    ReadRelationshipsRequest(
                        consistency=consistency,
                        relationship_filter=RelationshipFilter(resource_type="document"),
                    ),
                    timeout=TIMEOUT,
                ),
                grpc.StatusCode.INVALID_ARGUMENT,
                field,
            )
        expect_error(
            lambda: srv.watch(start=token),
            grpc.StatusCode.INVALID_ARGUMENT,
            "optional_start_cursor",
        )
    expect_error(
        lambda: srv.client.ReadRelationships(
            ReadRelationshipsRequest(
                consistency=full(),
                relationship_filter=RelationshipFilter(resource_type="document"),
                optional_limit=10,
                optional_cursor=Cursor(token="garbage!"),
            ),
            timeout=TIMEOUT,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "optional_cursor",
    )
    expect_equal(srv.dump(), before, "the store after refused reads")


def check_new_enemy(srv, state):
    before = srv.write(
        update(CREATE, "folder:plans#viewer@user:mallory"),
        update(CREATE, "document:roadmap#parent@folder:plans"),
    )
    saw = srv.allowed(exact(before), "document:roadmap", "user:mallory")
    expect(saw, "mallory saw the roadmap")
    removed = srv.write(update(DELETE, "folder:plans#viewer@user:mallory"))
    secret = srv.write(update(CREATE, "document:secret#parent@folder:plans"))
    for consistency in (fresh(secret), exact(secret), fresh(removed), full(), latency(), None):
        response = predates_schema(
            lambda: srv.check(consistency, "document:secret", "user:mallory")
        )
        if response is None:
            continue
        expect_equal(response.permissionship, NO, f"new enemy at {consistency}")
    expect(srv.allowed(exact(before), "document:roadmap", "user:mallory"), "old snapshot")
    expect(not srv.allowed(exact(removed), "document:roadmap", "user:mallory"), "after removal")
    found = [
        r.resource_object_id
        for r in srv.client.LookupResources(
            LookupResourcesRequest(
                consistency=fresh(secret),
                resource_object_type="document",
                permission="view",
                subject=subj("user:mallory"),
            ),
            timeout=TIMEOUT,
        )
    ]
    # `public` has a wildcard viewer; nothing under the folder is visible any more.
    expect_equal(found, ["public"], "documents mallory sees")


def check_watch_resume(srv, state):
    start = srv.write(update(TOUCH, "folder:watch#viewer@user:start"))
    writes = [
        (
            [update(CREATE, "document:w1#viewer@user:alice")],
            ["TOUCH document:w1#viewer@user:alice"],
        ),
        (
            [
                update(DELETE, "document:w1#viewer@user:alice"),
                update(TOUCH, "document:w2#viewer@user:bob"),
            ],
            ["DELETE document:w1#viewer@user:alice", "TOUCH document:w2#viewer@user:bob"],
        ),
        ([update(CREATE, "folder:f3#viewer@user:carol")], ["TOUCH folder:f3#viewer@user:carol"]),
        (
            [
                update(CREATE, "document:w4#parent@folder:f3"),
                update(CREATE, "document:w4#viewer@user:dave"),
            ],
            ["TOUCH document:w4#parent@folder:f3", "TOUCH document:w4#viewer@user:dave"],
        ),
        ([update(DELETE, "folder:f3#viewer@user:carol")], ["DELETE folder:f3#viewer@user:carol"]),
    ]
    tokens = []
    first = srv.watch(start=start)
    for updates, _ in writes[:3]:
        tokens.append(srv.write(*updates))
    delivered = read_until(first, tokens[0])
    first.cancel()
    last_seen = ZedToken(token=delivered[-1][0])
    for updates, _ in writes[3:]:
        tokens.append(srv.write(*updates))
    second = srv.watch(start=last_seen)
    delivered.extend(read_until(second, tokens[4]))
    second.cancel()
    expected = [(token.token, sorted(updates)) for token, (_, updates) in zip(tokens, writes)]
    expect_equal(delivered, expected, "every change exactly once, in order, across the disconnect")

    folders = srv.watch(
        start=start,
        object_types=["folder"],
        kinds=[WATCH_KIND_INCLUDE_RELATIONSHIP_UPDATES, WATCH_KIND_INCLUDE_CHECKPOINTS],
    )
    seen = read_until(folders, tokens[4])
    folders.cancel()
    expect_equal(
        seen,
        [
            (tokens[2].token, ["TOUCH folder:f3#viewer@user:carol"]),
            (tokens[4].token, ["DELETE folder:f3#viewer@user:carol"]),
        ],
        "a Watch filtered to folders",
    )


def check_bad_input(srv, state):
    before = srv.dump()
    valid = update(TOUCH, "document:new#viewer@user:bob")

    def raw(resource_type, resource_id, relation="viewer"):
        return RelationshipUpdate(
            operation=TOUCH,
            relationship=Relationship(
                resource=ObjectReference(object_type=resource_type, object_id=resource_id),
                relation=relation,
                subject=subj("user:bob"),
            ),
        )

    bad, exists, precondition = (
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    oversize = [update(TOUCH, f"document:n{i}#viewer@user:bob") for i in range(1001)]
    cases = [
        ([valid, update(TOUCH, "widget:w#viewer@user:bob")], precondition, "widget"),
        ([valid, update(TOUCH, "document:d#owner@user:bob")], precondition, "owner"),
        ([valid, update(TOUCH, "document:d#parent@user:bob")], bad, "not allowed"),
        ([valid, raw("document", "has space")], bad, "updates[1].relationship"),
        ([valid, raw("document", "")], bad, "updates[1].relationship"),
        ([valid, raw("Document", "x")], bad, "updates[1].relationship"),
        ([valid, update(CREATE, "folder:eng#viewer@user:alice")], exists, "folder:eng#viewer"),
        (oversize, bad, "1001"),
    ]
    for updates, code, needle in cases:
        expect_error(lambda: srv.write(*updates), code, needle)
        expect_equal(srv.dump(), before, f"the store after a refused write ({needle})")
    expect_error(
        lambda: srv.write(
            valid,
            preconditions=[
                Precondition(
                    operation=Precondition.OPERATION_MUST_MATCH,
                    filter=RelationshipFilter(resource_type="folder", optional_resource_id="nope"),
                )
            ],
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
    )
    expect_error(
        lambda: srv.client.ImportBulkRelationships(
            iter(
                [
                    ImportBulkRelationshipsRequest(
                        relationships=[rel(f"document:imp{i}#viewer@user:bob") for i in range(50)]
                    ),
                    ImportBulkRelationshipsRequest(relationships=[rel("gadget:g#viewer@user:bob")]),
                ]
            ),
            timeout=TIMEOUT,
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
        "gadget",
    )
    expect_error(
        lambda: srv.client.WriteSchema(
            WriteSchemaRequest(schema="definition user {\n  relation broken: \n}\n"),
            timeout=TIMEOUT,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    without_banned = SCHEMA.replace("\trelation banned: user\n", "").replace(" - banned", "")
    expect_error(
        lambda: srv.client.WriteSchema(WriteSchemaRequest(schema=without_banned), timeout=TIMEOUT),
        grpc.StatusCode.FAILED_PRECONDITION,
        "banned",
    )
    expect_error(
        lambda: srv.client.CheckBulkPermissions(
            CheckBulkPermissionsRequest(
                consistency=full(),
                items=[
                    CheckBulkPermissionsRequestItem(
                        resource=obj(f"document:c{i}"), permission="view", subject=subj("user:a")
                    )
                    for i in range(1001)
                ],
            ),
            timeout=TIMEOUT,
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "1001",
    )
    expect_error(
        lambda: srv.check(full(), "widget:w", "user:alice"),
        grpc.StatusCode.FAILED_PRECONDITION,
        "widget",
    )
    expect_error(
        lambda: srv.check(full(), "document:bad id", "user:alice"),
        grpc.StatusCode.INVALID_ARGUMENT,
        "resource",
    )
    expect_equal(srv.dump(), before, "the store after every refused request")


def check_auth(srv, state):
    before = srv.dump()
    wrong = InsecureClient(srv.addr, "not-the-key")
    expect_error(
        lambda: wrong.WriteRelationships(
            WriteRelationshipsRequest(updates=[update(TOUCH, "document:x#viewer@user:mallory")]),
            timeout=TIMEOUT,
        ),
        grpc.StatusCode.UNAUTHENTICATED,
        "invalid token",
    )
    expect_equal(srv.dump(), before, "the store after an unauthenticated write")


CHECKS = [
    ("schema", check_schema),
    ("write_and_check", check_write_and_check),
    ("expand", check_expand),
    ("lookup_resources", check_lookup_resources),
    ("lookup_subjects", check_lookup_subjects),
    ("read_and_delete", check_read_and_delete),
    ("import_export", check_import_export),
    ("consistency_modes", check_consistency_modes),
    ("garbled_tokens", check_garbled_tokens),
    ("new_enemy", check_new_enemy),
    ("watch_resume", check_watch_resume),
    ("bad_input", check_bad_input),
    ("auth", check_auth),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", help="host:port of a fresh `ostiary serve`")
    parser.add_argument("--token", help="its preshared key")
    parser.add_argument("--list", action="store_true", help="print the check names and exit")
    args = parser.parse_args()
    if args.list:
        print("\n".join(name for name, _ in CHECKS))
        return 0
    if not args.addr or not args.token:
        parser.error("--addr and --token are required")
    srv = Ostiary(args.addr, args.token)
    state = {}
    for name, check in CHECKS:
        try:
            check(srv, state)
        except Exception as err:  # noqa: BLE001 - any failure fails the run with its story
            print(f"FAILED {name}: {err}", file=sys.stderr)
            traceback.print_exc()
            return 1
        print(f"ok {name}", flush=True)
    print(f"all {len(CHECKS)} checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
