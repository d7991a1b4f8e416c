#!/usr/bin/env bash
# Miri: run iomgr's library unit tests in the Miri interpreter, which reports undefined
# behaviour (aliasing violations under Stacked and Tree Borrows, use after free, leaks, data
# races, invalid values) in the code those tests reach.
#
#   scripts/miri.sh                 # everything below (about 5 minutes on 2 cores)
#   scripts/miri.sh sync::          # extra arguments go to the first run, e.g. a test filter
#
# What it covers: every unit test of the `iomgr` library (`cargo miri test -p iomgr --lib`),
# none of which needs an io_uring: the task cell, join handles, scheduler and wakers
# (`runtime::`), the coroutine primitives (`sync::`), the memory managers (`memory::`), the
# future combinators (`future::`), the slab (`util::`) and the ring-setup error messages
# (`driver::setup`). Heavy tests run fewer iterations under `cfg(miri)`. A unit test that
# builds a `Runtime` fails under Miri with a message saying to mark it
# `#[cfg_attr(miri, ignore)]`; the ops, sockets and files are covered by scripts/asan.sh.
#
# Runs: 1. all of the above under Stacked Borrows (Miri's default) with strict provenance;
#       2. the task tests (`runtime::`) again under Tree Borrows;
#       3. the code `#[iomgr::task]` generates: the twin tests (`tests/tests/task_twins.rs`,
#          `task_faithful.rs`), each task beside its `async fn`, run to completion and
#          dropped at every pending point, under Stacked and then Tree Borrows.
#
# Needs a nightly toolchain with the miri component
# (`rustup toolchain install nightly --component miri`); without one it prints
# "skipped: no nightly toolchain with miri" and exits 0, so CI machines without it pass.
# Uses $CARGO_TARGET_DIR (Miri builds in its `miri/` subdirectory).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo +nightly miri --version >/dev/null 2>&1; then
    echo "miri: skipped: no nightly toolchain with miri"
    exit 0
fi
cargo +nightly miri --version

start=$SECONDS
echo "== miri: library unit tests, Stacked Borrows, strict provenance"
MIRIFLAGS="${MIRIFLAGS:-} -Zmiri-strict-provenance" \
    cargo +nightly miri test -p iomgr --lib -- "$@"

echo "== miri: task cell, join handles and scheduler, Tree Borrows"
MIRIFLAGS="${MIRIFLAGS:-} -Zmiri-strict-provenance -Zmiri-tree-borrows" \
    cargo +nightly miri test -p iomgr --lib -- runtime::

echo "== miri: #[iomgr::task] tasks beside their async fns, Stacked then Tree Borrows"
MIRIFLAGS="${MIRIFLAGS:-} -Zmiri-strict-provenance" \
    cargo +nightly miri test -p iomgr-tests --test task_twins --test task_faithful
MIRIFLAGS="${MIRIFLAGS:-} -Zmiri-strict-provenance -Zmiri-tree-borrows" \
    cargo +nightly miri test -p iomgr-tests --test task_twins --test task_faithful

echo "== miri: passed in $((SECONDS - start)) s"
