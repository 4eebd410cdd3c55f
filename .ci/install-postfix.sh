#!/usr/bin/env bash
# Install Postfix, Cyrus SASL tools, swaks and cairo (SVG to PNG in the diagram test) for
# the integration tests, leaving the system Postfix instance unconfigured and stopped: the
# tests start private instances on 127.0.0.1 from their own config dirs. Idempotent; must
# run as root.
set -euo pipefail
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/debian-packages.sh"
require_root install-postfix.sh

mapfile -t missing < <(missing_packages postfix sasl2-bin libsasl2-modules swaks \
    libnet-ssleay-perl libio-socket-ssl-perl libcairo2)
if ((${#missing[@]})); then
    # "No configuration" keeps the package from writing a live main.cf for the system instance.
    debconf-set-selections <<'SEL'
postfix postfix/main_mailer_type select No configuration
postfix postfix/mailname string test.local
SEL
    install_without_starting_daemons "${missing[@]}"
fi

# Make sure the system instance is not running (a package may have started it).
if postfix status >/dev/null 2>&1; then
    postfix stop >/dev/null 2>&1 || true
fi
if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    systemctl disable --now postfix >/dev/null 2>&1 || true
fi

command -v postfix >/dev/null
command -v saslpasswd2 >/dev/null
echo "install-postfix.sh: $(postconf -d -h mail_version 2>/dev/null | sed 's/^/postfix /') ready (system instance stopped)"
