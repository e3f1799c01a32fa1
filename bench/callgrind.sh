#!/usr/bin/env bash
# Instructions per registration, counted by callgrind: a figure that repeats on a noisy
# machine, where CPU microseconds move by 10 % between runs.
#
#   cargo build --release && bench/callgrind.sh
#
# For open registration (plain) and digest auth (REGISTER, 401, REGISTER with
# Authorization, 200), with the scenarios and users of bench.sh: sipreg runs under
# valgrind --tool=callgrind (memory store, RUST_LOG=warn); SIPp registers USERS users once
# (warm-up), the counters are zeroed, then the same users register again (refreshes, what a
# registrar mostly sees) and only those are counted. Prints user-space instructions per
# registration (start-up and warm-up excluded) and, with CACHE=1, callgrind's simulated
# L1 instruction and data read misses per registration. Under valgrind the CPU has no
# SHA extensions, so the nonce's HMAC-SHA-256 runs in software (about 14,000 of the auth
# figure; with SHA-NI far less). KEEP=DIR keeps callgrind's own files there (plain.out,
# auth.out) for callgrind_annotate, to see where two builds differ.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${SIPREG_BIN:-$HERE/../target/release/sipreg}
USERS=${USERS:-2000}
PORT=${PORT:-5990}
UAC_PORT=${UAC_PORT:-5991}
for b in sipp valgrind callgrind_control callgrind_annotate awk; do
  command -v $b >/dev/null || { echo "missing $b (apt-get install sip-tester valgrind)"; exit 2; }
done
[ -x "$BIN" ] || { echo "no $BIN: run cargo build --release"; exit 2; }
WORK=$(mktemp -d /tmp/sipreg-callgrind.XXXXXX)
VG=""
trap '[ -n "$VG" ] && kill "$VG" 2>/dev/null; rm -rf "$WORK"' EXIT

awk -v n="$USERS" 'BEGIN { print "SEQUENTIAL"; for (i = 0; i < n; i++) {
  u = sprintf("user%04d", i); p = sprintf("pw-%04d", i);
  printf "%s;%s;[authentication username=%s password=%s]\n", u, p, u, p } }' > "$WORK/users.csv"

config() { # $1 = plain|auth
  echo "[server]"; echo "listen = [\"udp:127.0.0.1:$PORT\"]"; echo "domains = [\"127.0.0.1\"]"
  echo "[registrar]"; echo "max_contacts = 10"
  echo "[store]"; echo "type = \"memory\""
  echo "[auth]"
  if [ "$1" = auth ]; then
    echo "challenge = \"www\""; echo "realm = \"127.0.0.1\""; echo "algorithms = [\"MD5\"]"
    awk -v n="$USERS" 'BEGIN { for (i = 0; i < n; i++)
      printf "[[aliases]]\nalias = \"user%04d@127.0.0.1\"\npassword = \"pw-%04d\"\n", i, i }'
  else
    echo "challenge = \"off\""
  fi
}

sipp_run() { # $1 = scenario; succeeds when every registration got its 200
  (cd "$WORK" && timeout $(( USERS / 100 + 60 )) sipp 127.0.0.1:$PORT -sf "$HERE/sipp/$1" \
     -inf "$WORK/users.csv" -i 127.0.0.1 -p $UAC_PORT -r 200 -m "$USERS" \
     -timeout $(( USERS / 100 + 40 ))s -nostdin > "$WORK/sipp.out" 2>&1)
}

count() { # $1 = plain|auth -> prints "instructions [I1 misses D1 read misses]" per registration
  local kind=$1 scen=uac_register.xml out=$WORK/cg.$1
  [ "$kind" = auth ] && scen=uac_register_auth.xml
  config "$kind" > "$WORK/$kind.toml"
  RUST_LOG=warn valgrind --tool=callgrind ${CACHE:+--cache-sim=yes} --callgrind-out-file="$out" \
    "$BIN" run --config "$WORK/$kind.toml" > "$WORK/valgrind.log" 2>&1 &
  VG=$!
  for _ in $(seq 300); do
    grep -q ":$(printf '%04X' "$PORT") " /proc/net/udp && break
    sleep 0.1
  done
  sipp_run "$scen" || { echo "$kind: warm-up failed" >&2; tail -5 "$WORK/sipp.out" >&2; return 1; }
  callgrind_control -z "$VG" > /dev/null 2>&1
  sipp_run "$scen" || { echo "$kind: counted run failed" >&2; tail -5 "$WORK/sipp.out" >&2; return 1; }
  callgrind_control -d "$VG" > /dev/null 2>&1
  kill "$VG"; wait "$VG" 2>/dev/null; VG=""
  [ -n "${KEEP:-}" ] && mkdir -p "$KEEP" && cp "$out".1 "$KEEP/$kind.out"
  callgrind_annotate "$out".1 2>/dev/null | awk -v n="$USERS" '/PROGRAM TOTALS/ {
    gsub(/,/, ""); if (NF > 8) printf "%.0f %.0f %.0f\n", $1 / n, $7 / n, $9 / n; else printf "%.0f\n", $1 / n; exit }'
}

echo "sipreg $BIN, $USERS users, refreshes counted"
for kind in plain auth; do
  read -r ir i1 d1 < <(count "$kind") || exit 1
  if [ -n "${CACHE:-}" ]; then
    printf '%-5s %8s instructions per registration, %s L1i misses, %s L1d read misses\n' "$kind" "$ir" "$i1" "$d1"
  else
    printf '%-5s %8s instructions per registration\n' "$kind" "$ir"
  fi
done
