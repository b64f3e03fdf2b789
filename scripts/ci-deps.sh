#!/usr/bin/env bash
# Installs the system tools the test suite drives: git (fixture repositories,
# `git daemon` for remote tests), ssh-keygen and gpg (keys and signed commits
# for the signature tests), openssl (certificates in the API-server harness
# where used). Debian package names; idempotent; needs root only to install.
set -euo pipefail
declare -A pkg=([git]=git [ssh-keygen]=openssh-client [gpg]=gnupg [openssl]=openssl)
missing=()
for cmd in "${!pkg[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${pkg[$cmd]}")
done
if [ -x /usr/lib/git-core/git-daemon ] || command -v git-daemon >/dev/null 2>&1; then :; else missing+=(git-daemon-sysvinit); fi
if [ ${#missing[@]} -eq 0 ]; then
  echo "system tools present: git ssh-keygen gpg openssl git-daemon"
  exit 0
fi
echo "installing: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
  echo "run as root, or install: apt-get install ${missing[*]}" >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
