# Sourced by .ci/install-*.sh: Debian packages for the integration tests, installed as
# root without starting any daemon. Not executable on its own.

require_root() {
    if [[ $(id -u) -ne 0 ]]; then
        echo "$1: must run as root" >&2
        exit 1
    fi
}

# Print the packages among "$@" that are not installed, one a line.
missing_packages() {
    local pkg
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
            echo "$pkg"
        fi
    done
}

# apt-get install "$@", with maintainer scripts forbidden to start daemons (containers
# often lack an init anyway): a policy-rc.d that says no, removed again if it was ours.
install_without_starting_daemons() {
    export DEBIAN_FRONTEND=noninteractive
    policy=/usr/sbin/policy-rc.d
    created_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        created_policy=1
    fi
    trap '[[ $created_policy -eq 1 ]] && rm -f "$policy"' EXIT
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "$@"
}
