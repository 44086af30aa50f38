# Rust binding (rust/): prost types generated at build time by build.rs, with
# the protoc of the protoc-bin-vendored crate (no system protoc). Cargo.lock
# pins every crate; --locked refuses to change it.
.PHONY: testee-rust test-rust

TESTEE_TARGETS += testee-rust
TEST_TARGETS += test-rust

RUST_CARGO ?= cargo

testee-rust: ## the Rust conformance testee (release build of the example testee)
	cd rust && $(RUST_CARGO) build --release --locked --example testee

test-rust: ## cargo fmt --check, clippy and cargo test
	cd rust && $(RUST_CARGO) fmt --check
	cd rust && $(RUST_CARGO) clippy --release --locked --all-targets -- -D warnings
	cd rust && $(RUST_CARGO) test --release --locked
