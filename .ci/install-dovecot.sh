#!/usr/bin/env bash
# Install Dovecot's POP3 server for the integration tests, leaving the system Dovecot
# instance stopped and disabled: the tests start private instances on loopback from their
# own config dirs (tests/dovecot.py). Idempotent; must run as root.
set -euo pipefail
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/debian-packages.sh"
require_root install-dovecot.sh

# dovecot-pop3d pulls in dovecot-core (the master, auth, passwd-file, Maildir, TLS).
mapfile -t missing < <(missing_packages dovecot-core dovecot-pop3d)
if ((${#missing[@]})); then
    install_without_starting_daemons "${missing[@]}"
fi

# Make sure the system instance is not running and will not start at boot: the package
# enables it (systemd symlinks and SysV rc links) even where no init could start it.
if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    systemctl disable --now dovecot.service dovecot.socket >/dev/null 2>&1 || true
elif command -v deb-systemd-helper >/dev/null 2>&1; then
    deb-systemd-helper disable dovecot.service dovecot.socket >/dev/null 2>&1 || true
fi
if command -v update-rc.d >/dev/null 2>&1 && [[ -e /etc/init.d/dovecot ]]; then
    update-rc.d dovecot disable >/dev/null 2>&1 || true
fi
if [[ -s /run/dovecot/master.pid ]] && kill -0 "$(cat /run/dovecot/master.pid)" 2>/dev/null; then
    doveadm stop >/dev/null 2>&1 || kill "$(cat /run/dovecot/master.pid)" 2>/dev/null || true
fi

command -v dovecot >/dev/null
test -x /usr/lib/dovecot/pop3
id dovenull >/dev/null
id dovecot >/dev/null
echo "install-dovecot.sh: dovecot $(dovecot --version 2>/dev/null | cut -d' ' -f1) ready (system instance stopped)"
