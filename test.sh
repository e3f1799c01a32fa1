#!/usr/bin/env bash
# Runs sipreg's whole test suite on a fresh Debian machine: installs what the tests need
# when it is missing (SIPp from the package sip-tester; redis-server, which the Redis
# tests start on loopback ports of their own; Chromium and ChromeDriver, which check the
# status page; sipvicious's svwar and svcrack, and fail2ban's fail2ban-regex, which
# attack the server and check the documented filter; baresip, a softphone that registers
# over UDP, TCP and TLS; SIP.js for the WebRTC demo, which two headless Chromiums run;
# aioice, a STUN client; pjsua2, a softphone over TLS; PostgreSQL, the sql-directory
# plugin's database, which its tests start in a folder of their own),
# then runs every test.
#
#   ./test.sh            # what CI runs
set -euo pipefail
cd "$(dirname "$0")"

need_apt=()
command -v sipp >/dev/null 2>&1 || need_apt+=(sip-tester)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
command -v svcrack >/dev/null 2>&1 || need_apt+=(sipvicious)
command -v fail2ban-regex >/dev/null 2>&1 || need_apt+=(fail2ban)
command -v baresip >/dev/null 2>&1 || need_apt+=(baresip)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need_apt+=(postgresql)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "test.sh: installing ${need_apt[*]}" >&2
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# From PyPI: aioice, a STUN implementation that asks the UDP SIP port for a binding;
# pjsua2-python, PJSIP's library, a softphone that registers over TLS.
python3 -c "import aioice" 2>/dev/null || python3 -m pip install --quiet aioice
python3 -c "import pjsua2" 2>/dev/null || python3 -m pip install --quiet pjsua2-python

# SIP.js for the WebRTC demo (examples/webrtc/), from the npm registry, once.
examples/webrtc/vendor.sh

cargo test --workspace
