#!/usr/bin/env bash
# Installs the Debian packages the build needs (when missing). Needs root, or prints the command.
set -euo pipefail
# build: compiler, CMake, OpenBLAS (OpenMP build), zlib, SQLite, jansson (JSON), libcsv,
# OpenSSL's libcrypto (sha256);
# tests: sqlite3 (the shell, for schema checks), python3-sentencepiece (tokenizer parity, optional)
pkgs=(build-essential cmake pkg-config libopenblas-openmp-dev zlib1g-dev libsqlite3-dev
      libjansson-dev libcsv-dev libssl-dev sqlite3 python3-sentencepiece)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing packages: ${missing[*]}" >&2
  echo "install them with: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
