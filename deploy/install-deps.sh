#!/usr/bin/env bash
# Installs the Debian 12 packages that shaper's build and tests need.
# Idempotent: packages already present are not touched, and when everything is
# there it prints nothing and exits 0. Needs root (apt-get).
set -euo pipefail

# Build: compilers, meson, and the five libraries the product is built on,
# plus the helpers DESIGN.md names (CLI11, fmt, nlohmann-json, benchmark).
build_pkgs=(
  build-essential g++ pkg-config meson ninja-build
  dpdk dpdk-dev libdpdk-dev
  libbpf-dev libxdp-dev bpftool clang llvm libclang-rt-14-dev
  libyaml-dev libyaml-cpp-dev prometheus-cpp-dev libcivetweb-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev libfmt-dev nlohmann-json3-dev
  libelf-dev zlib1g-dev
)
# Tests: traffic, namespaces, packet crafting, a real Prometheus, plots,
# and node/npm for the JSON-schema check (ajv).
test_pkgs=(
  iperf3 iproute2 ethtool iputils-ping curl python3-scapy python3-yaml
  prometheus gnuplot-nox
)

want=("${build_pkgs[@]}")
if [[ "${1:-}" != "--build-only" ]]; then
  want+=("${test_pkgs[@]}")
  # node + npm run ajv for the policy-schema test. Some images ship a nodejs
  # that bundles npm (and conflicts with Debian's npm package): only ask apt
  # for them when the commands are missing.
  command -v node >/dev/null || want+=(nodejs)
  command -v npm >/dev/null || want+=(npm)
fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run as root (sudo $0) to install them" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
