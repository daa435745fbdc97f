#!/usr/bin/env bash
# Installs every build and test dependency of Herald from Debian 12 packages.
# Idempotent: does nothing when everything is already present. Needs root (or sudo).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libboost1.81-dev libboost-system1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  librocksdb-dev
  protobuf-compiler libprotobuf-dev
  libtomlplusplus-dev
  libssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libexpat1-dev
  libyaml-cpp-dev
  libhiredis-dev
  mosquitto nats-server redis-server prometheus
  clang-format clang-tidy
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
