#!/usr/bin/env bash
# Install the Debian packages the tests need, only those missing (idempotent, quiet when done).
# PostgreSQL is installed by postgres.sh itself; Java and Maven come with the machine image.
set -euo pipefail
declare -A NEED=(
  [promtool]=prometheus
  [prometheus-alertmanager]=prometheus-alertmanager
  [chromium]=chromium
  [wrk]=wrk
  [curl]=curl
  [openssl]=openssl
  [fc-list]=fontconfig
)
missing=()
for cmd in "${!NEED[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || [[ -x /usr/bin/$cmd ]] || missing+=("${NEED[$cmd]}")
done
# CJK glyphs for the wallboard's 简体中文 labels in Chromium screenshots
[[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]] || missing+=(fonts-wqy-microhei)
((${#missing[@]})) || exit 0
if [[ $(id -u) -ne 0 ]]; then
  echo "missing Debian packages: ${missing[*]} (run as root, or apt-get install them)" >&2
  exit 1
fi
echo "installing Debian packages: ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
