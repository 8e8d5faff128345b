#!/usr/bin/env bash
# Install every Debian package the project needs to build, test and run its demo, and any packages
# named as arguments (make bench passes the ones only the benchmark needs).
# Idempotent: prints nothing and changes nothing when everything is there.
set -euo pipefail

packages=(
    build-essential pkg-config
    erlang-nox erlang-dev rebar3
    librabbitmq-dev libjansson-dev libhiredis-dev libssl-dev
    rabbitmq-server redis-server
    check valgrind
    clang libclang-rt-14-dev openssl
)
packages+=("$@")

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# Debian starts rabbitmq-server and redis-server after installing them; the project runs its own
# instances on private ports, so keep the system services from starting (policy-rc.d 101 = deny).
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" > /dev/null
    $sudo chmod +x "$policy"
    trap '$sudo rm -f "$policy"' EXIT
fi
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
