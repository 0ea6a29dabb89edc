#!/usr/bin/env bash
# The local mesh sends traffic with the real curl and openssl, its Prometheus is Debian's
# prometheus server, and the lab report's page is checked in headless chromium. Install
# them with the system package manager when they are missing.
set -euo pipefail

# `ensure-tools.sh bench` also installs hey, the load generator of `make bench`.
tools=(curl openssl prometheus chromium)
[ "${1:-}" = bench ] && tools+=(hey)
missing=()
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing ${missing[*]} (needed by the local mesh)" >&2
if command -v apt-get >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
elif command -v brew >/dev/null 2>&1; then
  brew install "${missing[@]}"
else
  echo "error: please install ${missing[*]} with your package manager" >&2
  exit 1
fi
