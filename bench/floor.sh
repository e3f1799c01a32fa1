#!/usr/bin/env bash
# A SIPREG_BIN for ../shared/bench/compare.sh that runs udp-floor (bench/floor) in
# sipreg's place: Kamailio against a server that does no registrar work at all, measured
# by compare.sh's own method in the same run. Given `run --config FILE`, it takes the UDP
# address from FILE's `listen`, adds --challenge when FILE's [auth] challenges (the
# sipreg-auth variants) and, with FLOOR_DURABLE=1, --log (the 200s held for a group
# fdatasync every 10 ms, as sipreg's default store does) with the log beside FILE; then it
# execs udp-floor (same PID, so compare.sh measures the floor's own CPU).
#
#   SIPREG_BIN=bench/floor.sh ../shared/bench/compare.sh
#   FLOOR_DURABLE=1 SIPREG_BIN=bench/floor.sh ../shared/bench/compare.sh
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${FLOOR_BIN:-$HERE/../target/release/udp-floor}
cfg=""
while [ $# -gt 0 ]; do
  [ "$1" = --config ] && [ $# -gt 1 ] && cfg=$2
  shift
done
[ -n "$cfg" ] || { echo "floor.sh: no --config FILE" >&2; exit 2; }
addr=$(sed -n 's/^listen *= *\["udp:\([^"]*\)".*/\1/p' "$cfg" | head -1)
[ -n "$addr" ] || { echo "floor.sh: no udp listen address in $cfg" >&2; exit 2; }
opts=()
grep -q '^challenge *= *"\(www\|proxy\)"' "$cfg" && opts+=(--challenge)
if [ "${FLOOR_DURABLE:-0}" = 1 ]; then
  log="${cfg%.toml}.floor-log"
  rm -f "$log"
  opts+=(--log "$log")
fi
exec "$BIN" "${opts[@]}" "$addr"
