#!/usr/bin/env bash
# Provision a real Kubernetes API server for gitops-kube's integration tests:
# kube-apiserver v1.20.2 and etcd 3.4.23, built offline from Debian bookworm's
# `kubernetes` source package (every Go dependency vendored) with Debian's
# Go 1.19. No Docker, no download outside Debian's archive.
#
# Adapted from the project's shared envtest recipe (shared/envtest/build.sh):
# same build, plus: the binary packages (Go, make, rsync, etcd) are fetched
# with a private apt state too, so nothing on the machine changes and a fresh
# machine whose apt lists were never updated works; a lock against concurrent
# builds; a check that the binaries run.
#
# Usage:   bash scripts/envtest.sh [DEST]   (or this file: gitops-kube/scripts/envtest.sh)
#          DEST defaults to $GITOPS_ENVTEST_DIR or ~/.cache/gitops-envtest/v1.20.2
# Result:  DEST/bin/kube-apiserver and DEST/bin/etcd; prints DEST/bin last.
# Then:    GITOPS_ENVTEST_BIN=DEST/bin cargo test -p gitops-kube --features testing
# Idempotent: returns at once when both binaries are already there and run.
# Cold cost: about 5 minutes on 2 cores and ~2.5 GB of scratch in $TMPDIR
# (removed afterwards). Needs: bash, apt-get, dpkg, tar, awk (Debian base).
set -euo pipefail

K8S_SRC_VERSION=1.20.5+really1.20.2-1.1+deb12u1
DEST=${1:-${GITOPS_ENVTEST_DIR:-$HOME/.cache/gitops-envtest/v1.20.2}}

have_binaries() {
  [ -x "$DEST/bin/kube-apiserver" ] && [ -x "$DEST/bin/etcd" ] &&
    "$DEST/bin/kube-apiserver" --version >/dev/null 2>&1 &&
    "$DEST/bin/etcd" --version >/dev/null 2>&1
}

if have_binaries; then echo "$DEST/bin"; exit 0; fi
mkdir -p "$DEST/bin"

# One build at a time per DEST (a second caller waits, then finds the result).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$DEST/.build.lock"
  flock 9
  if have_binaries; then echo "$DEST/bin"; exit 0; fi
fi

log() { echo "envtest: $*" >&2; }
W=$(mktemp -d "${TMPDIR:-/tmp}/gitops-envtest-build.XXXXXX")
trap 'rm -rf "$W"' EXIT
mkdir -p "$W"/{apt/lists/partial,apt/cache/archives/partial,apt/parts,debs,root}
cd "$W"

# A private apt configuration: deb + deb-src lines for the Debian mirrors this
# machine already uses (deb822 .sources files and the classic sources.list).
{
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk 'BEGIN{RS=""; FS="\n"} /Types:[^\n]*deb/ {u="";s="";c="";k="";
      for(i=1;i<=NF;i++){ if($i ~ /^URIs:/){sub(/^URIs: */,"",$i);u=$i}
        if($i ~ /^Suites:/){sub(/^Suites: */,"",$i);s=$i}
        if($i ~ /^Components:/){sub(/^Components: */,"",$i);c=$i}
        if($i ~ /^Signed-By:/){sub(/^Signed-By: */,"",$i);k=" [signed-by=" $i "]"} }
      n=split(s,ss," "); for(j=1;j<=n;j++) { print "deb" k " " u " " ss[j] " " c;
                                               print "deb-src" k " " u " " ss[j] " " c } }' "$f"
  done
  if [ -f /etc/apt/sources.list ]; then
    sed -n 's/^deb \(.*\)$/deb \1\ndeb-src \1/p' /etc/apt/sources.list
  fi
} > apt/sources.list
if ! grep -q . apt/sources.list; then
  log "no Debian apt sources found in /etc/apt; cannot fetch the kubernetes source package"
  exit 1
fi
APTO=(-o APT::Sandbox::User=root -o "Dir::Etc::SourceList=$W/apt/sources.list"
      -o "Dir::Etc::SourceParts=$W/apt/parts" -o "Dir::State::Lists=$W/apt/lists"
      -o "Dir::Cache=$W/apt/cache")

log "updating a private apt index"
apt-get "${APTO[@]}" update -qq
log "downloading the kubernetes source package"
if ! apt-get "${APTO[@]}" source --download-only "kubernetes=$K8S_SRC_VERSION" >/dev/null 2>&1; then
  log "kubernetes=$K8S_SRC_VERSION not offered; taking the archive's kubernetes source"
  apt-get "${APTO[@]}" source --download-only kubernetes >/dev/null
fi
log "downloading Go 1.19, make, rsync and etcd (unpacked here, not installed)"
(cd debs && apt-get "${APTO[@]}" download -qq golang-1.19-go golang-1.19-src make rsync libpopt0 \
   golang-github-modern-go-reflect2-dev etcd-server >/dev/null &&
   for f in *.deb; do dpkg -x "$f" ../root; done)

ORIG=$(ls kubernetes_*.orig.tar.gz | head -n1)
tar xzf "$ORIG"
SRC=$(ls -d kubernetes-*/ | head -n1)
cd "$SRC"
# The vendored reflect2 v1.0.1 crashes under Go >= 1.18 (SIGSEGV in mapiterinit on
# the first custom-resource write); Debian's reflect2 1.0.2 fixes it.
rm -rf vendor/github.com/modern-go/reflect2 && mkdir vendor/github.com/modern-go/reflect2
cp "$W"/root/usr/share/gocode/src/github.com/modern-go/reflect2/*.go \
   "$W"/root/usr/share/gocode/src/github.com/modern-go/reflect2/*.s vendor/github.com/modern-go/reflect2/
export PATH="$W/root/usr/lib/go-1.19/bin:$W/root/usr/bin:$PATH" GOROOT="$W/root/usr/lib/go-1.19" \
  LD_LIBRARY_PATH="$W/root/usr/lib/x86_64-linux-gnu:$W/root/lib/x86_64-linux-gnu" \
  GOCACHE="$W/gocache" GOPROXY=off GOFLAGS= CGO_ENABLED=0
log "building kube-apiserver (a few minutes)"
make WHAT=cmd/kube-apiserver >/dev/null
install -m 0755 _output/bin/kube-apiserver "$DEST/bin/kube-apiserver"
install -m 0755 "$W/root/usr/bin/etcd" "$DEST/bin/etcd"
if ! have_binaries; then
  log "the built binaries do not run"
  exit 1
fi
echo "$DEST/bin"
