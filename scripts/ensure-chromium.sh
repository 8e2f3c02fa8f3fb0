#!/usr/bin/env bash
# Make sure Debian's chromium is installed for the browser tests (tests/web, marker "browser").
# The tests drive /usr/bin/chromium with Playwright; no browser is ever downloaded by Playwright.
# Installs the distribution package with apt-get when it is missing (needs root or sudo).
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
    echo "ensure-chromium: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM") present"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    echo "ensure-chromium: $CHROMIUM is missing and this user cannot run apt-get (no root, no sudo)." >&2
    echo "ensure-chromium: install it with: apt-get update && apt-get install -y chromium" >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-chromium: $CHROMIUM is missing and apt-get is not available; install chromium by hand." >&2
    exit 1
fi

echo "ensure-chromium: installing Debian chromium (apt-get update, then apt-get install chromium)"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update
"${SUDO[@]}" apt-get install -y --no-install-recommends chromium
"$CHROMIUM" --version
