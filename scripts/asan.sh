#!/usr/bin/env bash
# AddressSanitizer: run iomgr's end-to-end tests (real io_uring, loopback sockets, temp
# files) with AddressSanitizer and LeakSanitizer, which report use after free, buffer
# overflows, double frees and leaked allocations in the Rust code of iomgr and the tests.
#
#   scripts/asan.sh                      # the tests below (about 3 minutes on 2 cores)
#   scripts/asan.sh --test net           # other cargo test arguments instead of the list
#
# What it covers: the `tests/` crate's cancel, cancel_churn, net, fs, time, runtime,
# ring_limits, multishot, launch and dump tests, and the registered-buffer, registered-file,
# registered-memory and buffer-pool tests (fixed_bufs, fixed_files, fixed_memory, buf_pool,
# whose pools hand out raw memory): ops submitted, completed, cancelled and abandoned (also
# between the completions of a multishot or SEND_ZC op); runtimes dropped with
# ops in flight; tasks aborted. What it cannot see: the kernel's own reads and writes of our
# buffers (they are not instrumented); tests/tests/cancel_churn.rs checks those with canary
# buffers instead.
#
# `allocator_may_return_null=1`: fs's test of a file too large to allocate asks for 1 TiB and
# expects the allocation to fail (an error, not an abort), which ASan otherwise turns into a
# crash.
#
# LeakSanitizer is on (ASAN_OPTIONS=detect_leaks=1, the default on x86_64 Linux): the
# runtime's thread-locals (the current runtime, the test executors' wakers) are destroyed
# when each test thread exits, and the global registry of runtimes stays reachable, so
# neither is reported. Set ASAN_OPTIONS=detect_leaks=0 where LeakSanitizer cannot run
# (under ptrace, or in a sandbox that forbids it).
#
# Needs a nightly toolchain (sanitizers are unstable); without one it prints
# "skipped: no nightly toolchain" and exits 0. Builds for an explicit --target so that the
# proc macros run uninstrumented; artifacts go to $CARGO_TARGET_DIR/x86_64-unknown-linux-gnu.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "asan: skipped: no nightly toolchain"
    exit 0
fi
target="$(rustc +nightly -vV | sed -n 's/^host: //p')"
case "$target" in
    x86_64-unknown-linux-gnu | aarch64-unknown-linux-gnu) ;;
    *)
        echo "asan: skipped: AddressSanitizer is not set up for $target here"
        exit 0
        ;;
esac

if [ "$#" -eq 0 ]; then
    set -- --test cancel --test cancel_churn --test net --test fs --test time \
        --test runtime --test ring_limits --test multishot --test launch --test dump \
        --test buf_ring --test incoming --test send_zc --test linked_timeout --test buf_reader \
        --test vectored_all \
        --test fixed_bufs --test fixed_files --test fixed_memory --test buf_pool
fi

start=$SECONDS
echo "== asan: iomgr-tests under AddressSanitizer + LeakSanitizer ($target)"
RUSTFLAGS="${RUSTFLAGS:-} -Zsanitizer=address" \
    ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}" \
    cargo +nightly test --target "$target" -p iomgr-tests "$@"
echo "== asan: passed in $((SECONDS - start)) s"
