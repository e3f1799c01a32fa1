#!/usr/bin/env bash
# A SIPREG_BIN for ../shared/bench/compare.sh that runs sipreg with the memory location
# store, like the Kamailio it is compared with (usrloc db_mode 0: memory only).
# compare.sh writes its configuration without a [store] table, so since the embedded
# store became the default it measures sipreg writing every binding to disk (fsync'd group
# commits) against a Kamailio that writes nothing. This wrapper adds
#   [store]
#   type = "memory"
# to a copy of the configuration it is given and execs sipreg in its place (same PID, so
# compare.sh measures sipreg's own CPU).
#
#   SIPREG_BIN=bench/memory-store.sh ../shared/bench/compare.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${SIPREG_REAL_BIN:-$HERE/../target/release/sipreg}
args=("$@")
for i in "${!args[@]}"; do
  if [ "${args[$i]}" = --config ] && [ $((i + 1)) -lt ${#args[@]} ]; then
    cfg=${args[$((i + 1))]}
    copy="${cfg%.toml}.memory.toml"
    { cat "$cfg"; printf '\n[store]\ntype = "memory"\n'; } > "$copy"
    args[$((i + 1))]=$copy
  fi
done
exec "$BIN" "${args[@]}"
