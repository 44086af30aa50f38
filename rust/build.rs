//! Generates the Rust types of dsxir.optimizer_session.v1 from ../proto with
//! prost-build. protoc (and the google/protobuf/*.proto it includes) comes from
//! the protoc-bin-vendored crate, so no system protoc is needed.

use std::path::PathBuf;

fn main() {
    let manifest_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    // The schema: ../proto in a checkout; the packaged crate (make dist-rust)
    // carries a copy in proto/.
    let packaged = manifest_dir.join("proto");
    let proto_root = if packaged.is_dir() {
        packaged
    } else {
        manifest_dir.join("..").join("proto")
    };
    let protos = [
        proto_root.join("dsxir/optimizer_session/v1/term.proto"),
        proto_root.join("dsxir/optimizer_session/v1/checkpoint.proto"),
    ];
    for p in &protos {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    println!("cargo:rerun-if-changed=build.rs");

    let protoc = protoc_bin_vendored::protoc_bin_path().expect("vendored protoc");
    let include = protoc_bin_vendored::include_path().expect("vendored protoc include path");
    let mut config = prost_build::Config::new();
    config
        .protoc_executable(protoc)
        .compile_protos(&protos, &[proto_root, include])
        .expect("compile protos");
}
