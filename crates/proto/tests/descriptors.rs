//! Checks the compiled descriptors: every SpiceDB service and method is present, and every
//! message, field, oneof, enum and method matches the `authzed` Python package's descriptors,
//! so that our `proto/authzed/api/v1` stays wire-compatible with SpiceDB.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use prost::Message;
use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorProto, FileDescriptorSet};

/// The `authzed.api.v1` files we keep, by their path in the upstream package.
const AUTHZED_FILES: &[&str] = &[
    "authzed/api/v1/core.proto",
    "authzed/api/v1/debug.proto",
    "authzed/api/v1/error_reason.proto",
    "authzed/api/v1/permission_service.proto",
    "authzed/api/v1/schema_service.proto",
    "authzed/api/v1/watch_service.proto",
    "authzed/api/v1/experimental_service.proto",
];

/// A method's name, whether the client streams and whether the server streams.
type MethodShape = (&'static str, bool, bool);

/// Services and methods clients call, and their streaming shape.
const EXPECTED_METHODS: &[(&str, &[MethodShape])] = &[
    (
        "authzed.api.v1.PermissionsService",
        &[
            ("ReadRelationships", false, true),
            ("WriteRelationships", false, false),
            ("DeleteRelationships", false, false),
            ("CheckPermission", false, false),
            ("CheckBulkPermissions", false, false),
            ("ExpandPermissionTree", false, false),
            ("LookupResources", false, true),
            ("LookupSubjects", false, true),
            ("ImportBulkRelationships", true, false),
            ("ExportBulkRelationships", false, true),
        ],
    ),
    (
        "authzed.api.v1.SchemaService",
        &[
            ("ReadSchema", false, false),
            ("WriteSchema", false, false),
            ("ReflectSchema", false, false),
            ("ComputablePermissions", false, false),
            ("DependentRelations", false, false),
            ("DiffSchema", false, false),
        ],
    ),
    ("authzed.api.v1.WatchService", &[("Watch", false, true)]),
    (
        "authzed.api.v1.ExperimentalService",
        &[
            ("BulkImportRelationships", true, false),
            ("BulkExportRelationships", false, true),
            ("BulkCheckPermission", false, false),
            ("ExperimentalReflectSchema", false, false),
            ("ExperimentalComputablePermissions", false, false),
            ("ExperimentalDependentRelations", false, false),
            ("ExperimentalDiffSchema", false, false),
            ("ExperimentalRegisterRelationshipCounter", false, false),
            ("ExperimentalCountRelationships", false, false),
            ("ExperimentalUnregisterRelationshipCounter", false, false),
        ],
    ),
];

/// Prints the upstream descriptors of the files named on the command line as `summary` lines
/// (the same format as [`summarize`] below). Kept in the exact shape of the Rust side so
/// that the two can be compared line by line.
const PYTHON_SUMMARY: &str = r#"
import importlib, sys
from google.protobuf import descriptor_pb2 as d
def b(x): return 'true' if x else 'false'
def msg(f, prefix, m, out):
    name = prefix + '.' + m.name
    out.append('%s message %s map_entry=%s' % (f, name, b(m.options.map_entry)))
    for o in m.oneof_decl:
        out.append('%s oneof %s.%s' % (f, name, o.name))
    for x in m.field:
        oneof = m.oneof_decl[x.oneof_index].name if x.HasField('oneof_index') else '-'
        out.append('%s field %s.%s number=%d label=%d type=%d type_name=%s oneof=%s proto3_optional=%s json_name=%s' % (
            f, name, x.name, x.number, x.label, x.type, x.type_name or '-', oneof, b(x.proto3_optional), x.json_name))
    for r in m.reserved_range:
        out.append('%s reserved %s %d..%d' % (f, name, r.start, r.end))
    for r in m.reserved_name:
        out.append('%s reserved %s %s' % (f, name, r))
    for e in m.enum_type:
        enum(f, name, e, out)
    for n in m.nested_type:
        msg(f, name, n, out)
def enum(f, prefix, e, out):
    name = prefix + '.' + e.name
    out.append('%s enum %s' % (f, name))
    for v in e.value:
        out.append('%s enum_value %s.%s = %d' % (f, name, v.name, v.number))
out = []
for path in sys.argv[1:]:
    module = importlib.import_module(path[:-len('.proto')].replace('/', '.') + '_pb2')
    fd = d.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb)
    f = fd.name
    prefix = '.' + fd.package
    out.append('%s file package=%s syntax=%s' % (f, fd.package, fd.syntax))
    for m in fd.message_type:
        msg(f, prefix, m, out)
    for e in fd.enum_type:
        enum(f, prefix, e, out)
    for s in fd.service:
        for m in s.method:
            out.append('%s method %s.%s/%s input=%s output=%s client_streaming=%s server_streaming=%s' % (
                f, prefix, s.name, m.name, m.input_type, m.output_type, b(m.client_streaming), b(m.server_streaming)))
print('\n'.join(out))
"#;

fn descriptor_set() -> Result<FileDescriptorSet, prost::DecodeError> {
    FileDescriptorSet::decode(ostiary_proto::FILE_DESCRIPTOR_SET)
}

fn bool_text(value: bool) -> &'static str {
    if value { "true" } else { "false" }
}

fn summarize_enum(
    file: &str,
    prefix: &str,
    enum_proto: &EnumDescriptorProto,
    out: &mut Vec<String>,
) {
    let name = format!("{prefix}.{}", enum_proto.name());
    out.push(format!("{file} enum {name}"));
    for value in &enum_proto.value {
        out.push(format!(
            "{file} enum_value {name}.{} = {}",
            value.name(),
            value.number()
        ));
    }
}

fn summarize_message(file: &str, prefix: &str, message: &DescriptorProto, out: &mut Vec<String>) {
    let name = format!("{prefix}.{}", message.name());
    let map_entry = message.options.as_ref().is_some_and(|o| o.map_entry());
    out.push(format!(
        "{file} message {name} map_entry={}",
        bool_text(map_entry)
    ));
    for oneof in &message.oneof_decl {
        out.push(format!("{file} oneof {name}.{}", oneof.name()));
    }
    for field in &message.field {
        let oneof = field
            .oneof_index
            .and_then(|idx| message.oneof_decl.get(usize::try_from(idx).ok()?))
            .map_or("-", |oneof| oneof.name());
        out.push(format!(
            "{file} field {name}.{} number={} label={} type={} type_name={} oneof={oneof} proto3_optional={} json_name={}",
            field.name(),
            field.number(),
            field.label.unwrap_or_default(),
            field.r#type.unwrap_or_default(),
            field.type_name.as_deref().unwrap_or("-"),
            bool_text(field.proto3_optional()),
            field.json_name(),
        ));
    }
    for range in &message.reserved_range {
        out.push(format!(
            "{file} reserved {name} {}..{}",
            range.start(),
            range.end()
        ));
    }
    for reserved in &message.reserved_name {
        out.push(format!("{file} reserved {name} {reserved}"));
    }
    for enum_proto in &message.enum_type {
        summarize_enum(file, &name, enum_proto, out);
    }
    for nested in &message.nested_type {
        summarize_message(file, &name, nested, out);
    }
}

/// One line per file, message, oneof, field, reserved range, enum value and method: every
/// property that decides the wire format or the names clients and reflection see.
fn summarize(file: &FileDescriptorProto) -> Vec<String> {
    let name = file.name();
    let prefix = format!(".{}", file.package());
    let mut out = vec![format!(
        "{name} file package={} syntax={}",
        file.package(),
        file.syntax()
    )];
    for message in &file.message_type {
        summarize_message(name, &prefix, message, &mut out);
    }
    for enum_proto in &file.enum_type {
        summarize_enum(name, &prefix, enum_proto, &mut out);
    }
    for service in &file.service {
        for method in &service.method {
            out.push(format!(
                "{name} method {prefix}.{}/{} input={} output={} client_streaming={} server_streaming={}",
                service.name(),
                method.name(),
                method.input_type(),
                method.output_type(),
                bool_text(method.client_streaming()),
                bool_text(method.server_streaming()),
            ));
        }
    }
    out
}

/// The Python interpreter of the venv `deploy/setup.sh` creates with the official `authzed`
/// client (`OSTIARY_PYTHON` overrides it).
fn authzed_python() -> Option<PathBuf> {
    if let Some(python) = std::env::var_os("OSTIARY_PYTHON") {
        return Some(PathBuf::from(python));
    }
    let home = std::env::var_os("HOME")?;
    Some(PathBuf::from(home).join(".cache/ostiary/venv/bin/python"))
}

#[test]
fn every_spicedb_service_and_method_is_present() {
    let set = descriptor_set().expect("FILE_DESCRIPTOR_SET decodes");
    for (service_name, methods) in EXPECTED_METHODS {
        let (package, short) = service_name.rsplit_once('.').expect("qualified name");
        let service = set
            .file
            .iter()
            .filter(|file| file.package() == package)
            .flat_map(|file| &file.service)
            .find(|service| service.name() == short)
            .unwrap_or_else(|| panic!("service `{service_name}` is missing"));
        let found: Vec<(&str, bool, bool)> = service
            .method
            .iter()
            .map(|m| (m.name(), m.client_streaming(), m.server_streaming()))
            .collect();
        assert_eq!(&found, methods, "methods of `{service_name}`");
    }
}

#[test]
fn descriptor_set_holds_our_files_and_their_imports() {
    let set = descriptor_set().expect("FILE_DESCRIPTOR_SET decodes");
    let names: BTreeSet<&str> = set.file.iter().map(|file| file.name()).collect();
    for file in AUTHZED_FILES {
        assert!(names.contains(file), "`{file}` is missing from {names:?}");
    }
    // Every import is in the set too, so reflection clients can resolve every type.
    for file in &set.file {
        for dependency in &file.dependency {
            assert!(
                names.contains(dependency.as_str()),
                "`{}` imports `{dependency}`, which is not in the set",
                file.name()
            );
        }
    }
    assert!(names.contains("google/rpc/status.proto"));
    assert!(names.contains("google/protobuf/struct.proto"));
}

#[test]
fn generated_messages_round_trip_on_the_wire() {
    use ostiary_proto::authzed::api::v1::{
        CheckPermissionRequest, Consistency, ObjectReference, SubjectReference, ZedToken,
        consistency::Requirement,
    };
    let request = CheckPermissionRequest {
        consistency: Some(Consistency {
            requirement: Some(Requirement::AtLeastAsFresh(ZedToken {
                token: "GhUKEzE3".to_owned(),
            })),
        }),
        resource: Some(ObjectReference {
            object_type: "document".to_owned(),
            object_id: "readme".to_owned(),
        }),
        permission: "view".to_owned(),
        subject: Some(SubjectReference {
            object: Some(ObjectReference {
                object_type: "user".to_owned(),
                object_id: "alice".to_owned(),
            }),
            optional_relation: String::new(),
        }),
        context: None,
        with_tracing: false,
    };
    let bytes = request.encode_to_vec();
    // Field 3 (`permission`, length-delimited) is encoded as tag 0x1a.
    assert!(bytes.windows(6).any(|w| w == b"\x1a\x04view"));
    assert_eq!(
        CheckPermissionRequest::decode(bytes.as_slice()).unwrap(),
        request
    );
}

#[test]
fn descriptors_match_the_authzed_python_package() {
    let python = authzed_python().expect("HOME or OSTIARY_PYTHON is set");
    assert!(
        python.exists(),
        "`{}` is missing: run deploy/setup.sh, which creates the venv with the authzed client",
        python.display()
    );
    let output = Command::new(&python)
        .arg("-c")
        .arg(PYTHON_SUMMARY)
        .args(AUTHZED_FILES)
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "dumping the authzed descriptors failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let upstream: BTreeSet<String> = String::from_utf8(output.stdout)
        .expect("utf-8 output")
        .lines()
        .map(str::to_owned)
        .collect();

    let set = descriptor_set().expect("FILE_DESCRIPTOR_SET decodes");
    let ours: BTreeSet<String> = set
        .file
        .iter()
        .filter(|file| AUTHZED_FILES.contains(&file.name()))
        .flat_map(summarize)
        .collect();

    assert!(upstream.len() > 500, "suspiciously short upstream summary");
    let missing: Vec<&String> = upstream.difference(&ours).collect();
    let extra: Vec<&String> = ours.difference(&upstream).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "our descriptors differ from authzed.api.v1\nupstream only:\n{}\nours only:\n{}",
        missing
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        extra
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
    );
}
