//! Compiles `proto/` into tonic/prost code and an encoded file descriptor set, with `protox`
//! (a protobuf compiler in Rust) so that building needs no system `protoc`.

use std::path::PathBuf;

/// The proto files to compile, relative to the workspace's `proto/` directory. Their imports
/// (`google/protobuf/*` from protox's built-in copies, `google/rpc/status.proto` vendored)
/// are pulled in as dependencies.
const PROTOS: &[&str] = &[
    "authzed/api/v1/core.proto",
    "authzed/api/v1/debug.proto",
    "authzed/api/v1/error_reason.proto",
    "authzed/api/v1/permission_service.proto",
    "authzed/api/v1/schema_service.proto",
    "authzed/api/v1/watch_service.proto",
    "authzed/api/v1/experimental_service.proto",
    "ostiary/admin/v1/admin.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_dir = manifest_dir.join("../../proto");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    println!("cargo:rerun-if-changed={}", proto_dir.display());
    // The directory alone is not enough: cargo compares its own mtime, which an edit of a
    // file in a subdirectory does not change.
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={}", proto_dir.join(proto).display());
    }

    let mut compiler = protox::Compiler::new([&proto_dir])?;
    // Imports are kept so that server reflection can resolve every type it hands out.
    compiler.include_imports(true).include_source_info(true);
    for proto in PROTOS {
        compiler.open_file(proto)?;
    }
    std::fs::write(
        out_dir.join("file_descriptor_set.bin"),
        compiler.encode_file_descriptor_set(),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
