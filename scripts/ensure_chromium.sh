#!/usr/bin/env bash
# The browser test drives a real headless Chromium (Debian's chromium and chromium-driver; a
# Chinese font so its screenshots show the labels). Install whatever is missing when we may
# (root), one progress line per package; otherwise say what to install. Browsers are never downloaded by a test tool.
set -euo pipefail
missing=()
for pkg in chromium chromium-driver fonts-wqy-microhei; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "the browser test needs: apt-get install ${missing[*]} (run as root)" >&2
    exit 0  # the test itself then fails with the same message; nothing else depends on it
fi
echo "installing ${missing[*]} for the browser test (apt-get; a minute or two)"
echo "  updating the package lists"
apt-get update -qq
for pkg in "${missing[@]}"; do
    echo "  installing $pkg"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg" >/dev/null
done
