#!/usr/bin/env bash
# Side by side, whole process against whole process: CPU time (user+sys) of
# the `render` example (gitops-kustomize) and of `kubectl kustomize` on the
# 10 largest roots of the shared corpus (by output size). Each command runs
# RUNS times (default 5); the table shows the medians and the ratio.
#
#   cargo build --release -p gitops-examples --example render
#   bash benches/kustomize-vs-kubectl.sh [RUNS]
#
# `render` walks the root's whole repository into its snapshot (--root), as
# it reads a commit, but reads the bytes only of the files a build can
# read (those under a kustomization's folder: kustomize's load restrictor);
# kubectl reads only the files the build needs.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
render=${RENDER:-$here/target/release/examples/render}
corpus=${CORPUS:-$here/../shared/corpus/kustomize}
runs=${1:-5}

[ -x "$render" ] || { echo "missing $render: cargo build --release -p gitops-examples --example render" >&2; exit 1; }
command -v kubectl >/dev/null || { echo "kubectl not installed" >&2; exit 1; }
[ -d "$corpus" ] || { echo "corpus not found at $corpus" >&2; exit 1; }

roots=(
  kueue/test/e2e/config/multikueue/extended-shard-0
  kueue/config/alpha-enabled
  kueue/config/dev
  kueue/test/e2e/config/extended
  kueue/config/default
  kueue/test/e2e/config/multikueue/extended-shard-1
  kueue/test/e2e/config/default
  kueue/test/e2e/config/baseline
  kueue/test/e2e/config/certmanager
  kueue/test/e2e/config/multikueue/baseline
)

# CPU seconds (user+sys of the child, from bash's `times`, to the
# millisecond) of one run of "$@", output discarded.
cpu() {
  ( "$@" >/dev/null 2>&1; times ) | tail -n1 |
    awk '{ split($1, u, /[ms]/); split($2, s, /[ms]/); printf "%.3f\n", u[1] * 60 + u[2] + s[1] * 60 + s[2] }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

cd "$corpus"
printf '%-52s %10s %10s %8s\n' root "render s" "kubectl s" ratio
worst=
for root in "${roots[@]}"; do
  repo=${root%%/*}
  # Same output (as YAML documents) first: a speed-up of a wrong build means nothing.
  if ! diff -q <("$render" --root "$repo" "$root" | python3 -c 'import sys,yaml,json; print(sorted(json.dumps(d, sort_keys=True) for d in yaml.safe_load_all(sys.stdin) if d is not None))') \
               <(kubectl kustomize "$root" | python3 -c 'import sys,yaml,json; print(sorted(json.dumps(d, sort_keys=True) for d in yaml.safe_load_all(sys.stdin) if d is not None))') >/dev/null; then
    echo "$root: outputs differ" >&2
    exit 1
  fi
  r=$(for _ in $(seq "$runs"); do cpu "$render" --root "$repo" "$root"; done | median)
  k=$(for _ in $(seq "$runs"); do cpu kubectl kustomize "$root"; done | median)
  ratio=$(awk -v r="$r" -v k="$k" 'BEGIN { printf "%.1f", (r > 0 ? k / r : 0) }')
  printf '%-52s %10.3f %10.3f %7sx\n' "$root" "$r" "$k" "$ratio"
  worst=$(printf '%s\n%s\n' "$worst" "$ratio" | sed '/^$/d' | sort -n | head -n1)
done
echo "lowest ratio: ${worst}x (goal: >= 10x on each root)"
