#!/usr/bin/env bash
# Registrations over connections: TCP, TLS, WS and WSS side by side, in one run, with a
# load client of our own (bench/conn-load; SIPp here has no TLS).
#
#   cargo build --release -p sipreg -p sipreg-bench-conn-load && bench/connections.sh
#
# sipreg (release, memory store, open registration) runs on CPU 0, the client on CPU 1.
# Prints, per transport:
#   - registrations per second over CONNECTIONS (1,000) established connections, each
#     refreshing its own binding as fast as its 200s come, for DURATION (5) seconds, and sipreg's
#     CPU microseconds per registration over that window (from /proc);
#   - for TLS and WSS: handshakes per second (HANDSHAKERS, 8, tasks opening and closing
#     connections; WSS: handshake + upgrade) and sipreg's CPU per handshake;
#   - sipreg's memory per open connection: RSS with IDLE (1,000) idle connections less
#     RSS before, divided by IDLE (a fresh sipreg for each transport).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${SIPREG_BIN:-$HERE/../target/release/sipreg}
LOAD=${LOAD_BIN:-$HERE/../target/release/conn-load}
CONNECTIONS=${CONNECTIONS:-1000}
SECONDS_EACH=${DURATION:-5}
HANDSHAKERS=${HANDSHAKERS:-8}
IDLE=${IDLE:-1000}
for b in "$BIN" "$LOAD"; do
  [ -x "$b" ] || { echo "missing $b: cargo build --release -p sipreg -p sipreg-bench-conn-load" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
ulimit -n 65536 2>/dev/null || true
"$BIN" cert --self-signed --host localhost --out "$work/certs" >/dev/null
cat > "$work/sipreg.toml" <<TOML
[server]
listen = ["udp:127.0.0.1:25060", "tcp:127.0.0.1:25060", "tls:127.0.0.1:25061", "ws:127.0.0.1:28080", "wss:127.0.0.1:28443"]
domains = ["127.0.0.1"]
tcp_max_per_source = 100000
tcp_idle_timeout = 600
[auth]
challenge = "off"
[store]
type = "memory"
[tls]
cert = "certs/cert.pem"
key = "certs/key.pem"
TOML
start() {
  (cd "$work" && RUST_LOG=warn exec taskset -c 0 "$BIN" run --config sipreg.toml 2> "$work/sipreg.log" > /dev/null) &
  pid=$!
  for _ in $(seq 50); do ss -ltn | grep -q ':28443 ' && break; sleep 0.1; done
}
stop() { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$pid/status"; }
declare -A port=([tcp]=25060 [tls]=25061 [ws]=28080 [wss]=28443)
load() { taskset -c 1 "$LOAD" --target "127.0.0.1:${port[$1]}" --transport "$1" --ca "$work/certs/cert.pem" --server-pid "$pid" "${@:2}"; }
start
echo "# registrations over $CONNECTIONS connections, ${SECONDS_EACH}s each (sipreg on CPU 0, client on CPU 1)"
for t in tcp tls ws wss; do load "$t" --mode register --connections "$CONNECTIONS" --seconds "$SECONDS_EACH"; done
echo "# handshakes ($HANDSHAKERS tasks, ${SECONDS_EACH}s)"
for t in tcp tls wss; do load "$t" --mode handshake --connections "$HANDSHAKERS" --seconds "$SECONDS_EACH"; done
stop
echo "# memory per open connection ($IDLE idle connections, each registered once; a fresh sipreg each)"
mkfifo "$work/hold"
for t in tcp tls ws wss; do
  start
  before=$(rss)
  load "$t" --mode idle --connections "$IDLE" < "$work/hold" > "$work/ready" &
  holder=$!
  exec 3> "$work/hold"   # the client holds its connections until this closes
  for _ in $(seq 600); do grep -q ready "$work/ready" && break; sleep 0.1; done
  sleep 0.5
  after=$(rss)
  printf 'transport=%s rss_before=%s KiB rss_with_%s=%s KiB per_connection=%s bytes\n' \
    "$t" "$before" "$IDLE" "$after" $(( (after - before) * 1024 / IDLE ))
  exec 3>&-
  wait "$holder"
  stop
done
