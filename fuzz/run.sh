#!/usr/bin/env bash
# Long fuzz runs, kept out of `cargo test`: builds the libFuzzer targets with nightly and runs
# each for a bounded time, growing fuzz/corpus/<target>/ from fuzz/seeds/<target>/.
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]      (default 60 seconds, every target)
#
# Needs `rustup toolchain install nightly` and `cargo install cargo-fuzz`. Crashes land in
# fuzz/artifacts/<target>/; replay one with `cargo +nightly fuzz run -O -a -s none TARGET FILE`,
# then add it to tests/fuzz_regressions.rs once fixed. MARSAD_FUZZ_EXTRA=DIR adds DIR as
# read-only extra seeds (e.g. ../shared/corpus/feeds); what it yields stays out of the
# committed corpus unless you mean to commit it. MARSAD_FUZZ_CMIN=1 minimises each corpus after
# its run.
set -euo pipefail

seconds=${1:-60}
shift || true
cd "$(dirname "$0")"
all=(feed page charset config query url sitemap)
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${all[@]}")

# -s none: the library is safe Rust, so AddressSanitizer buys little and halves the speed;
# panics, timeouts and memory blow-ups are caught without it. -a keeps overflow checks.
flags=(-O -a -s none)
cargo +nightly fuzz build "${flags[@]}"

for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    extra=()
    [ -n "${MARSAD_FUZZ_EXTRA:-}" ] && extra=("$MARSAD_FUZZ_EXTRA")
    echo "== $target: ${seconds}s"
    # One process, one core (-jobs would fork workers); 10 s per input is a hang,
    # 2 GiB resident is a blow-up; both count as findings.
    cargo +nightly fuzz run "${flags[@]}" "$target" "corpus/$target" "seeds/$target" "${extra[@]}" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 2>&1 | grep -E '^#[0-9]+ +(INITED|DONE)|^stat::number_of_executed_units|^stat::average_exec_per_sec|panicked|ERROR|SUMMARY|Test unit written' || true
    if [ "${MARSAD_FUZZ_CMIN:-0}" = 1 ]; then
        cargo +nightly fuzz cmin "${flags[@]}" "$target" "corpus/$target" >/dev/null 2>&1
    fi
done
