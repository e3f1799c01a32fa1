#!/usr/bin/env bash
# sipreg registrar benchmark: SIPp over loopback UDP against a release build.
#
#   cargo build --release --workspace && bench/bench.sh
#
# Prints, for open registration (plain), digest auth (REGISTER -> 401 -> REGISTER -> 200),
# digest auth with the Lua policy scripts/bench_auth.lua (lua-auth: authenticate + bind
# in Lua, passwords from a table the script builds), and digest auth with the credentials
# of the alias-directory plugin (plugin-auth: HA1 from its CSV file), with 10,000 users:
#   - the highest rate sustained for STEP_S seconds with 0 failed calls, 0 retransmissions
#     and at least 95% of the target rate achieved;
#   - sipreg's CPU microseconds per registration at a fixed FIXED_RATE (5,000/s), from
#     /proc (all threads);
#   - sipreg's memory (RSS) with 10,000 and with 100,000 bindings;
#   - the Lua policy's overhead: lua-auth's CPU per registration against auth's, in percent;
#   - the CPU per registration of udp-floor (bench/floor), a server that only copies five
#     header lines into a 200: the share of one receive and one send per message; for
#     plain and auth (--challenge: 401 to a REGISTER without Authorization, nothing
#     checked), each answered at once and with its 200 held for a group fdatasync every
#     10 ms (--log, sipreg's default store delay): what durability alone costs here;
#   - calls through sipreg's proxy: a SIPp caller calls bob, a registered SIPp UAS
#     (INVITE, 180, 200, ACK, BYE, 200 with Record-Route): the highest calls/s with 0
#     failed calls and 0 retransmissions, and sipreg's CPU microseconds per call at
#     FIXED_CALLS (1,000/s). Both SIPp instances share CPU 1.
#   - stores: digest auth (as "auth") with each location store, memory, embedded (log
#     and redb file in the work folder, every 200 after its log append) and redis (a redis-server
#     started here on REDIS_PORT, append-only file with fsync every second): the highest
#     rate (from 2,000/s up) and the CPU per registration of sipreg (Redis's own CPU not
#     counted; Redis shares CPU 1 with SIPp);
#   - restart: an embedded store filled with RESTART_BINDINGS (1,000,000) bindings by
#     bench/fill (fill-store), then the time from starting sipreg on it to its UDP port
#     being bound, and its RSS then.
# The "register", "memory" and "calls" sections use the memory store, as before stores
# existed, so that their figures compare with earlier runs.
# SECTIONS picks what runs (default: "register memory floor calls stores restart").
# sipreg runs on CPU 0 and SIPp on CPU 1 (taskset), like ../shared/bench/compare.sh.
# Every SIPp run is bounded by -m and -timeout; only the sipreg started here is stopped.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${SIPREG_BIN:-$HERE/../target/release/sipreg}
FLOOR=${FLOOR_BIN:-$HERE/../target/release/udp-floor}
LUA=${SIPREG_LUA:-$HERE/../scripts/bench_auth.lua}
DIRECTORY_SO=${DIRECTORY_SO:-$HERE/../target/release/libalias_directory.so}
STEP_S=${STEP_S:-3}
FIXED_RATE=${FIXED_RATE:-5000}
PORT=${PORT:-5071}
UAC_PORT=${UAC_PORT:-5081}
UAS_PORT=${UAS_PORT:-5091}
FIXED_CALLS=${FIXED_CALLS:-1000}
REDIS_PORT=${REDIS_PORT:-6391}
RESTART_BINDINGS=${RESTART_BINDINGS:-1000000}
FILL=${FILL_BIN:-$HERE/../target/release/fill-store}
SECTIONS=${SECTIONS:-register memory floor calls stores restart}
USERS=10000
BIG=100000
for b in sipp taskset awk; do command -v $b >/dev/null || { echo "missing $b (apt-get install sip-tester)"; exit 2; }; done
[ -x "$BIN" ] || { echo "no $BIN: run cargo build --release --workspace"; exit 2; }
[ -x "$FLOOR" ] || { echo "no $FLOOR: run cargo build --release --workspace"; exit 2; }
[ -f "$DIRECTORY_SO" ] || { echo "no $DIRECTORY_SO: run cargo build --release --workspace"; exit 2; }
command -v python3 >/dev/null || { echo "missing python3 (writes the plugin's HA1 file)"; exit 2; }
[ -x "$FILL" ] || { echo "no $FILL: run cargo build --release --workspace"; exit 2; }
command -v redis-server >/dev/null || { echo "missing redis-server (apt-get install redis-server)"; exit 2; }
WORK=$(mktemp -d /tmp/sipreg-bench.XXXXXX)
trap 'stop; stop_uas; stop_redis; rm -rf "$WORK"' EXIT
log() { printf '%s %s\n' "$(date +%T)" "$*" >&2; }

users_csv() { # $1 = count, $2 = file
  awk -v n="$1" 'BEGIN { print "SEQUENTIAL"; for (i = 0; i < n; i++) {
    u = sprintf("user%04d", i); p = sprintf("pw-%04d", i);
    printf "%s;%s;[authentication username=%s password=%s]\n", u, p, u, p } }' > "$2"
}

STORE=memory
config() { # $1 = plain|auth|lua-auth, $2 = users; the store is $STORE
  echo "[server]"; echo "listen = [\"udp:127.0.0.1:$PORT\"]"; echo "domains = [\"127.0.0.1\"]"
  echo "[registrar]"; echo "max_contacts = 10"
  echo "[store]"; echo "type = \"$STORE\""
  case $STORE in
    embedded) echo "path = \"$WORK/location-$1.redb\"" ;;
    redis) echo "url = \"redis://127.0.0.1:$REDIS_PORT/0\"" ;;
  esac
  if [ "$1" = lua-auth ]; then
    echo "[[hooks]]"; echo "type = \"lua\""; echo "script = \"$LUA\""
  fi
  if [ "$1" = plugin-auth ]; then
    echo "[[hooks]]"; echo "type = \"plugin\""; echo "path = \"$DIRECTORY_SO\""
    echo "config = { file = \"$WORK/directory.csv\" }"
  fi
  echo "[auth]"
  [ "$STORE" = redis ] && echo "nonce_secret = \"bench\""
  if [ "$1" = plugin-auth ]; then
    echo "challenge = \"www\""; echo "realm = \"127.0.0.1\""; echo "algorithms = [\"MD5\"]"
  elif [ "$1" != plain ]; then
    echo "challenge = \"www\""; echo "realm = \"127.0.0.1\""; echo "algorithms = [\"MD5\"]"
    awk -v n="$2" 'BEGIN { for (i = 0; i < n; i++)
      printf "[[aliases]]\nalias = \"user%04d@127.0.0.1\"\npassword = \"pw-%04d\"\n", i, i }'
  else
    echo "challenge = \"off\""
  fi
}

SRV=""
start() { # $1 = config file, or "floor" and its options for the do-nothing server
  if [ "$1" = floor ]; then
    shift
    taskset -c 0 "$FLOOR" "$@" "127.0.0.1:$PORT" > "$WORK/floor.log" 2>&1 &
  else
    RUST_LOG=warn taskset -c 0 "$BIN" run --config "$1" > "$WORK/sipreg.log" 2>&1 &
  fi
  SRV=$!
  listening udp "$PORT" || { log "sipreg did not bind :$PORT"; cat "$WORK/sipreg.log" >&2; exit 1; }
}
listening() { # $1 = udp|tcp, $2 = port: waits (10 s at most) until something is bound there
  for _ in $(seq 100); do
    grep -q ":$(printf '%04X' "$2") " "/proc/net/$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}
stop() { [ -n "$SRV" ] && kill "$SRV" 2>/dev/null && wait "$SRV" 2>/dev/null; SRV=""; }
REDIS=""
start_redis() {
  (cd "$WORK" && taskset -c 1 redis-server --port $REDIS_PORT --bind 127.0.0.1 --save "" \
     --appendonly yes --appendfsync everysec --dir "$WORK" > "$WORK/redis.log" 2>&1) &
  REDIS=$!
  listening tcp "$REDIS_PORT" || { log "redis-server did not listen on :$REDIS_PORT"; cat "$WORK/redis.log" >&2; exit 1; }
}
stop_redis() { [ -n "$REDIS" ] && kill "$REDIS" 2>/dev/null && wait "$REDIS" 2>/dev/null; REDIS=""; }
UAS=""
stop_uas() { [ -n "$UAS" ] && kill "$UAS" 2>/dev/null && wait "$UAS" 2>/dev/null; UAS=""; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$SRV/stat"; }
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$SRV/status"; }

# run_sipp scenario csv rate calls -> prints "successful failed retrans elapsed_s"
run_sipp() {
  local out=$WORK/sipp.out t0 t1
  t0=$(date +%s%N)
  (cd "$WORK" && taskset -c 1 timeout $(( $4 / $3 + 30 )) sipp 127.0.0.1:$PORT -sf "$HERE/sipp/$1" \
     -inf "$2" -i 127.0.0.1 -p $UAC_PORT -r "$3" -m "$4" -l $(( $3 * 2 )) -buff_size 4194304 \
     -timeout $(( $4 / $3 + 20 ))s -nostdin -trace_stat -stf stat.csv -fd 1 > "$out" 2>&1)
  t1=$(date +%s%N)
  # SIPp's elapsed time has a resolution of one second: the wall clock is used instead.
  awk -F';' -v ns=$(( t1 - t0 )) 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    { s = $col["SuccessfulCall(C)"]; f = $col["FailedCall(C)"]; r = $col["Retransmissions(C)"] }
    END { printf "%d %d %d %.3f\n", s, f, r, ns / 1e9 }' "$WORK/stat.csv"
  rm -f "$WORK"/stat.csv "$WORK"/*_.csv
}

# ramp scenario csv start_rate label -> prints the highest rate held for STEP_S seconds
# with 0 failed calls, 0 retransmissions and at least 95% of the target achieved (+20%
# a step).
ramp() {
  local rate=$3 best=0 calls ok fail retr el achieved
  while :; do
    calls=$(( rate * STEP_S ))
    read -r ok fail retr el < <(run_sipp "$1" "$2" $rate $calls)
    achieved=$(awk -v n="$ok" -v t="$el" 'BEGIN { printf "%d", (t > 0) ? n / t : 0 }')
    log "$4: target $rate/s achieved $achieved/s ok=$ok failed=$fail retrans=$retr"
    if [ "$fail" = 0 ] && [ "$retr" = 0 ] && [ "$ok" = "$calls" ] && [ "$achieved" -ge $(( rate * 95 / 100 )) ]; then
      best=$rate; rate=$(( rate + rate / 5 ))
    else
      break
    fi
    [ $rate -gt 200000 ] && break
  done
  echo $best
}

declare -A CPU_US
measure() { # $1 = plain|auth|lua-auth, $2 = the row's name (default: $1)
  local kind=$1 scen=uac_register.xml
  [ "$kind" != plain ] && scen=uac_register_auth.xml
  config "$kind" $USERS > "$WORK/$kind.toml"
  start "$WORK/$kind.toml"
  read -r ok fail retr _ < <(run_sipp $scen "$WORK/users.csv" 5000 $USERS)
  [ "$fail" = 0 ] || log "$kind warm-up: $fail failed"
  local mem10k; mem10k=$(rss_kib)
  local calls=$(( FIXED_RATE * STEP_S )) t0 t1 hz; hz=$(getconf CLK_TCK)
  t0=$(cpu_ticks); read -r ok fail retr _ < <(run_sipp $scen "$WORK/users.csv" $FIXED_RATE $calls); t1=$(cpu_ticks)
  local us_per_reg; us_per_reg=$(awk -v d=$(( t1 - t0 )) -v hz="$hz" -v n="$ok" 'BEGIN { printf "%.1f", (n > 0) ? d / hz * 1e6 / n : 0 }')
  local best; best=$(ramp $scen "$WORK/users.csv" "${RAMP_FROM:-$(( FIXED_RATE * 2 ))}" "${2:-$kind}")
  stop
  CPU_US[$kind]=$us_per_reg
  printf '| %-8s | %9s | %8s | %9s |\n' "${2:-$kind}" "$best" "$us_per_reg" "$(( mem10k / 1024 )) MiB"
}

# CPU per registration of a server that only copies five header lines into a 200: what one
# receive and one send per message cost here, whatever the registrar does.
# floor_us scenario [udp-floor options]
floor_us() {
  local scenario=$1; shift
  rm -f "$WORK/floor.wal"
  start floor "$@"
  read -r ok _ < <(run_sipp "$scenario" "$WORK/users.csv" 5000 $USERS)
  local calls=$(( FIXED_RATE * STEP_S )) t0 t1 hz; hz=$(getconf CLK_TCK)
  t0=$(cpu_ticks); read -r ok _ < <(run_sipp "$scenario" "$WORK/users.csv" $FIXED_RATE $calls); t1=$(cpu_ticks)
  stop
  awk -v d=$(( t1 - t0 )) -v hz="$hz" -v n="$ok" 'BEGIN { printf "%.1f", (n > 0) ? d / hz * 1e6 / n : 0 }'
}

# Calls through the proxy: bob (a SIPp UAS) registered, a SIPp caller at a given rate.
measure_calls() {
  { echo "[server]"; echo "listen = [\"udp:127.0.0.1:$PORT\"]"; echo "domains = [\"127.0.0.1\"]"
    echo "[auth]"; echo "challenge = \"off\""
    echo "[proxy]"; echo "record_route = true"; } > "$WORK/calls.toml"
  start "$WORK/calls.toml"
  (cd "$WORK" && taskset -c 1 sipp -sf "$HERE/sipp/uas_call.xml" -i 127.0.0.1 -p $UAS_PORT \
     -buff_size 4194304 -timeout 600s -nostdin > "$WORK/uas.out" 2>&1) &
  UAS=$!
  (cd "$WORK" && timeout 20 sipp 127.0.0.1:$PORT -sf "$HERE/sipp/register_uas.xml" -key uas_port $UAS_PORT \
     -i 127.0.0.1 -p $UAC_PORT -m 1 -timeout 10s -nostdin > "$WORK/reg.out" 2>&1) \
     || { log "bob did not register"; cat "$WORK/reg.out" >&2; exit 1; }
  printf 'SEQUENTIAL\nx;\n' > "$WORK/one.csv"
  read -r ok fail retr _ < <(run_sipp uac_call.xml "$WORK/one.csv" 500 1000)
  [ "$fail" = 0 ] || log "calls warm-up: $fail failed"
  local calls=$(( FIXED_CALLS * STEP_S )) t0 t1 hz; hz=$(getconf CLK_TCK)
  t0=$(cpu_ticks); read -r ok fail retr _ < <(run_sipp uac_call.xml "$WORK/one.csv" $FIXED_CALLS $calls); t1=$(cpu_ticks)
  local us_per_call; us_per_call=$(awk -v d=$(( t1 - t0 )) -v hz="$hz" -v n="$ok" 'BEGIN { printf "%.1f", (n > 0) ? d / hz * 1e6 / n : 0 }')
  local best; best=$(ramp uac_call.xml "$WORK/one.csv" $(( FIXED_CALLS * 2 )) calls)
  stop_uas; stop
  echo "Calls through the proxy (INVITE/180/200/ACK/BYE/200, Record-Route, UDP): max $best calls/s with 0 failed and 0 retransmitted; sipreg CPU $us_per_call us per call at ${FIXED_CALLS}/s"
}

users_csv $USERS "$WORK/users.csv"
# the alias-directory file: the same users, HA1 = MD5(user:127.0.0.1:password)
python3 - "$WORK/directory.csv" $USERS <<'PY'
import hashlib, sys
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        u, p = f"user{i:04d}", f"pw-{i:04d}"
        f.write(f"{u}@127.0.0.1,udp tcp,{u},{hashlib.md5(f'{u}:127.0.0.1:{p}'.encode()).hexdigest()}\n")
PY
log "sipreg $BIN (STEP_S=$STEP_S, FIXED_RATE=$FIXED_RATE, SECTIONS=$SECTIONS)"
section() { [[ " $SECTIONS " == *" $1 "* ]]; }
if section register; then
  echo "| variant | max reg/s (0 fail, 0 retrans) | CPU us/reg at ${FIXED_RATE}/s | RSS, 10k bindings |"
  echo "|---|---|---|---|"
  measure plain
  measure auth
  measure lua-auth
  measure plugin-auth
  echo
  awk -v a="${CPU_US[auth]}" -v l="${CPU_US[lua-auth]}" 'BEGIN {
    printf "Lua policy overhead (lua-auth against auth, CPU per registration): %+.1f %%\n", (a > 0) ? (l - a) * 100 / a : 0 }'
  awk -v a="${CPU_US[auth]}" -v p="${CPU_US[plugin-auth]}" 'BEGIN {
    printf "Plugin overhead (plugin-auth, credentials from alias-directory, against auth): %+.1f %%\n", (a > 0) ? (p - a) * 100 / a : 0 }'
fi

if section memory; then
  # memory with 100,000 bindings (open registration, 100k distinct users)
  users_csv $BIG "$WORK/big.csv"
  config plain 0 > "$WORK/big.toml"
  start "$WORK/big.toml"
  empty=$(rss_kib)
  read -r ok fail retr _ < <(run_sipp uac_register.xml "$WORK/big.csv" 10000 $BIG)
  echo
  echo "RSS: empty $(( empty / 1024 )) MiB; with $ok bindings $(( $(rss_kib) / 1024 )) MiB (failed=$fail retrans=$retr)"
  stop
fi
if section floor; then
  echo
  echo "Floor (udp-floor: receive, copy 5 header lines, send; no parsing, no state), us of CPU per registration at ${FIXED_RATE}/s:"
  echo
  echo "| udp-floor | plain | auth (401 without a check, then 200) |"
  echo "|---|---|---|"
  echo "| answers at once | $(floor_us uac_register.xml) | $(floor_us uac_register_auth.xml --challenge) |"
  echo "| 200 after an fdatasync per 10 ms group (--log) | $(floor_us uac_register.xml --log "$WORK/floor.wal") | $(floor_us uac_register_auth.xml --challenge --log "$WORK/floor.wal") |"
fi
if section calls; then
  echo
  measure_calls
fi
if section stores; then
  echo
  echo "Digest auth with each location store:"
  echo
  echo "| store | max reg/s (0 fail, 0 retrans) | CPU us/reg at ${FIXED_RATE}/s | RSS, 10k bindings |"
  echo "|---|---|---|---|"
  for STORE in memory embedded redis; do
    [ "$STORE" = redis ] && start_redis
    RAMP_FROM=2000 measure auth "$STORE"
    [ "$STORE" = redis ] && stop_redis
  done
  STORE=memory
fi
if section restart; then
  echo
  log "filling an embedded store with $RESTART_BINDINGS bindings"
  "$FILL" "$WORK/restart.redb" "$RESTART_BINDINGS" >&2 || { log "fill-store failed"; exit 1; }
  { echo "[server]"; echo "listen = [\"udp:127.0.0.1:$PORT\"]"
    echo "[auth]"; echo "challenge = \"off\""
    echo "[store]"; echo "path = \"$WORK/restart.redb\""; } > "$WORK/restart.toml"
  t0=$(date +%s%N)
  start "$WORK/restart.toml"
  t1=$(date +%s%N)
  echo "Restart with $RESTART_BINDINGS bindings (embedded store, $(( $(stat -c %s "$WORK/restart.redb") / 1048576 )) MiB file): $(awk -v ns=$(( t1 - t0 )) 'BEGIN { printf "%.2f", ns / 1e9 }') s from start to serving; RSS then $(( $(rss_kib) / 1024 )) MiB"
  stop
fi
