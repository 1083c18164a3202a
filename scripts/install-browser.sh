#!/usr/bin/env bash
# Install what the browser tests need from Debian's packages, if missing: chromium (driven by
# Playwright, whose own browser download does not work here) and a CJK font (Chinese text in
# their screenshots). Exits non-zero when it cannot (no apt-get, no root).
set -euo pipefail

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
dpkg -s fonts-wqy-zenhei >/dev/null 2>&1 || need+=(fonts-wqy-zenhei)
if [ "${#need[@]}" -gt 0 ]; then
    if ! command -v apt-get >/dev/null; then
        echo "error: the browser tests need Debian's chromium at /usr/bin/chromium; no apt-get here" >&2
        exit 1
    fi
    sudo=()
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            echo "error: installing ${need[*]} needs root (apt-get install -y ${need[*]})" >&2
            exit 1
        fi
    fi
    echo "installing ${need[*]} from Debian's packages"
    "${sudo[@]}" apt-get update -q
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q "${need[@]}"
fi

