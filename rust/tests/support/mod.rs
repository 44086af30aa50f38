//! What several test files share.

use std::path::PathBuf;

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
