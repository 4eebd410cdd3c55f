#!/usr/bin/env bash
# Install Debian's Chromium and its chromedriver for the web view's browser tests
# (tests/test_web_browser.py drives them with selenium; nothing is downloaded at test time).
# Idempotent; must run as root.
set -euo pipefail
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/debian-packages.sh"
require_root install-chromium.sh

mapfile -t missing < <(missing_packages chromium chromium-driver)
if ((${#missing[@]})); then
    install_without_starting_daemons "${missing[@]}"
fi

command -v chromium >/dev/null
command -v chromedriver >/dev/null
echo "install-chromium.sh: $(chromium --version 2>/dev/null | head -1) ready"
