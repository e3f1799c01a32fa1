#!/usr/bin/env bash
# Puts SIP.js (from the npm registry, its ES modules as published: no bundler needed)
# into vendor/sip.js/ beside the page. Run once; ./test.sh runs it when it is missing.
set -euo pipefail
cd "$(dirname "$0")"
version=0.21.2
[ -f vendor/sip.js/lib/index.js ] && [ "$(cat vendor/sip.js/VERSION 2>/dev/null)" = "$version" ] && exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "sip.js@$version" >/dev/null)
rm -rf vendor/sip.js
mkdir -p vendor/sip.js
tar xzf "$tmp"/sip.js-"$version".tgz -C vendor/sip.js --strip-components=1 package/lib package/LICENSE.md
echo "$version" > vendor/sip.js/VERSION
echo "vendor.sh: SIP.js $version in $(pwd)/vendor/sip.js"
