#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 60) each, one after the other, and prints
# for each its executions and crashes; exit 1 if any crashed. Needs the nightly toolchain
# and cargo-fuzz (`cargo install cargo-fuzz`). Each target starts from the seeds in
# fuzz/seeds/ (RFC 4475's torture messages, the SIPp scenarios' REGISTERs) and keeps
# what it finds in fuzz/corpus/<target> (not committed). A crash is in
# fuzz/artifacts/<target>/: make it a regression test, then fix it.
#
#   fuzz/run.sh 600      # 6 targets x 10 min = 1 hour
set -uo pipefail
cd "$(dirname "$0")"
SECONDS_EACH=${1:-60}
TARGETS=${TARGETS:-"sip_message digest frame wal register websocket"}
crashed=0
for t in $TARGETS; do
  mkdir -p "corpus/$t" "artifacts/$t"
  log=$(mktemp)
  cargo +nightly fuzz run "$t" "corpus/$t" seeds -- -max_total_time="$SECONDS_EACH" \
    -max_len=8192 -rss_limit_mb=2048 -print_final_stats=1 > "$log" 2>&1
  rc=$?
  execs=$(grep -m1 '^stat::number_of_executed_units' "$log" | awk '{print $2}')
  found=$(find "artifacts/$t" -type f -name 'crash-*' -o -type f -name 'leak-*' -o -type f -name 'timeout-*' -o -type f -name 'oom-*' | wc -l)
  printf '%-12s %10s execs in %ss, %s crash(es), exit %s\n' "$t" "${execs:-?}" "$SECONDS_EACH" "$found" "$rc"
  if [ "$rc" -ne 0 ] || [ "$found" -gt 0 ]; then crashed=1; tail -30 "$log"; fi
  rm -f "$log"
done
exit $crashed
