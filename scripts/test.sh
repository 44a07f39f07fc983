#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need, checks
# formatting and lints, then runs every test. The tests start their own
# throwaway servers (PostgreSQL, ...) on 127.0.0.1 and stop them afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-test-deps.sh
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
# The Dockerfile's build command, exactly (tests/cli/deploy.rs keeps the two
# the same): no container engine is available here, so CI proves the image's
# build step by running it.
cargo build --release --locked --bin atc
cargo test --all-targets --locked
# The web UI in headless Chromium against a real `atc quickstart` (tests/web).
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
(cd tests/web && ATC_BIN="$target_dir/debug/atc" npm test)
# The test node agent's own unit tests (Go, as root, no API server).
(cd tests/k8s && go test ./node/)
