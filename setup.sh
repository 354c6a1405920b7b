#!/usr/bin/env bash
# gnnrec's one set-up script: installs what a fresh Debian machine with only the Rust
# toolchain lacks, then builds and runs what was asked.
#
#   ./setup.sh demo        set up, build, and run the demo (the default)
#   ./setup.sh test        set up, then the gate: fmt, clippy (warnings denied), all tests
#   ./setup.sh bench ARGS  set up, then run gnnrec-bench ARGS (see tests/src/bin/gnnrec-bench.rs)
#
# Everything is built in release mode into one target directory outside the clone
# ($CARGO_TARGET_DIR, default ~/.cache/gnnrec/target): RocksDB's C++ takes 15-20 minutes
# to compile on 2 cores the first time, and later runs (CI included) reuse it.
set -euo pipefail
cd "$(dirname "$0")"

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/gnnrec/target}"
mkdir -p "$CARGO_TARGET_DIR"

have_libclang() {
    ldconfig -p 2>/dev/null | grep -q 'libclang.*\.so' ||
        compgen -G '/usr/lib/llvm-*/lib/libclang*.so*' >/dev/null
}

install_prerequisites() {
    if have_libclang && command -v clang >/dev/null; then
        return
    fi
    echo "setup: installing libclang-dev and clang (RocksDB's bindings need them)" >&2
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null; then
            sudo="sudo"
        else
            echo "setup: libclang-dev and clang are missing and this user cannot install them;" >&2
            echo "setup: ask an administrator to run: apt-get install -y libclang-dev clang" >&2
            exit 2
        fi
    fi
    if ! command -v apt-get >/dev/null; then
        echo "setup: no apt-get here: install libclang (libclang-dev) and clang with your package manager" >&2
        exit 2
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq libclang-dev clang >/dev/null
}

install_prerequisites
if ! command -v cargo >/dev/null; then
    echo "setup: cargo is missing: install the Rust toolchain (https://rustup.rs)" >&2
    exit 2
fi

case "${1:-demo}" in
demo)
    cargo build --release -p gnnrec-shell
    db="$(mktemp -d)/demo.gnnrec"
    echo "demo: a fresh database in $db, loaded with tests/data/demo/interactions.csv"
    "$CARGO_TARGET_DIR/release/gnnrec-shell" "$db" -f tests/data/demo/demo.gq
    echo "demo: explore it with $CARGO_TARGET_DIR/release/gnnrec-shell $db"
    ;;
test)
    cargo fmt --all -- --check
    cargo clippy --release --workspace --all-targets -- -D warnings
    cargo test --release --workspace
    ;;
bench)
    shift
    cargo build --release -p gnnrec-tests --bin gnnrec-bench
    "$CARGO_TARGET_DIR/release/gnnrec-bench" "$@"
    ;;
*)
    echo "usage: ./setup.sh [demo | test | bench ARGS]" >&2
    exit 2
    ;;
esac
