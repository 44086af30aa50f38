//! What several test files share.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// The conformance testee, the example `testee`: `cargo test` builds every
/// example into `target/<profile>/examples`, next to the `deps/` folder the
/// tests run from.
pub fn testee_path() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's path");
    let profile = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps");
    let bin = profile
        .join("examples")
        .join(format!("testee{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} is not built (cargo test builds it, as does cargo build --example testee)",
        bin.display()
    );
    bin
}

/// Runs the testee with these arguments and this standard input, to its end.
#[allow(dead_code)]
pub fn run_testee(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(testee_path())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn testee");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().expect("testee output")
}

/// The types of the testee protocol (tests/conformance/proto/.../testee.proto).
#[allow(clippy::all, dead_code)]
pub mod conformance {
    include!(concat!(env!("OUT_DIR"), "/testee/dsxir.conformance.v1.rs"));
}

/// One size-delimited Request.
#[allow(dead_code)]
pub fn request(command: conformance::Command, input: &[u8]) -> Vec<u8> {
    use prost::Message;
    conformance::Request {
        command: command as i32,
        input: input.to_vec(),
        ..Default::default()
    }
    .encode_length_delimited_to_vec()
}

/// One size-delimited Request with a base checkpoint (`apply-delta`).
#[allow(dead_code)]
pub fn request_with_base(command: conformance::Command, input: &[u8], base: &[u8]) -> Vec<u8> {
    use prost::Message;
    conformance::Request {
        command: command as i32,
        input: input.to_vec(),
        base: base.to_vec(),
    }
    .encode_length_delimited_to_vec()
}

/// Every size-delimited Response of a serve loop's output.
#[allow(dead_code)]
pub fn responses(mut out: &[u8]) -> Vec<conformance::response::Result> {
    use prost::Message;
    let mut all = Vec::new();
    while !out.is_empty() {
        let response = conformance::Response::decode_length_delimited(&mut out).expect("Response");
        all.push(response.result.expect("a result"));
    }
    all
}
