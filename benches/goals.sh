#!/usr/bin/env bash
# Prints the goals table of issue 14 ("cost proportional to change") with
# the ratios measured side by side by the criterion benches.
#
#   bash benches/goals.sh              # run the benches, then print the table
#   NO_RUN=1 bash benches/goals.sh     # print the table from the last runs
#   GOALS_100K=1 bash benches/goals.sh # also reconcile, plan and memory at 100,000 objects
#   MEASURE=3                          # criterion --measurement-time (seconds)
#   CRITERION_HOME=DIR                 # where criterion writes (and the table reads)
set -euo pipefail
cd "$(dirname "$0")/.."
criterion="${CRITERION_HOME:-${CARGO_TARGET_DIR:-target}/criterion}"
args=(--warm-up-time 1 --measurement-time "${MEASURE:-3}")
mem_sizes=(10000)
if [ -n "${GOALS_100K:-}" ]; then
    export GITOPS_BENCH_100K=1
    mem_sizes+=(100000)
fi
mem_out="${criterion}/goals-memory.txt"
if [ -z "${NO_RUN:-}" ]; then
    cargo bench -p gitops-benches --bench reconcile -- "${args[@]}"
    if [ -n "${GOALS_100K:-}" ]; then
        GITOPS_BENCH_OBJECTS=100000 cargo bench -p gitops-benches --bench reconcile -- "${args[@]}"
    fi
    cargo bench -p gitops-benches --bench plan -- "${args[@]}"
    mkdir -p "$criterion"
    cargo bench -p gitops-benches --bench render -- "${args[@]}" generated-10k \
        | tee /dev/stderr | grep '^render_paired' > "${criterion}/goals-render-paired.txt"
    : > "$mem_out"
    for n in "${mem_sizes[@]}"; do
        # One process per size: resident memory is per process.
        cargo bench -p gitops-benches --bench memory -- "$n" | grep '^memory/' >> "$mem_out"
        cargo bench -p gitops-benches --bench memory -- runtime "$n" | grep '^memory/' >> "$mem_out"
    done
fi
python3 - "$criterion" "$mem_out" "${criterion}/goals-render-paired.txt" <<'PY'
import json, os, re, sys
root, mem_out, paired_out = sys.argv[1], sys.argv[2], sys.argv[3]

def median(group, bench):
    path = os.path.join(root, group, bench, "new", "estimates.json")
    try:
        with open(path) as f:
            return json.load(f)["median"]["point_estimate"] / 1e6  # ms
    except OSError:
        return None

def ms(v):
    return "—" if v is None else (f"{v:.2f} ms" if v < 100 else f"{v:.0f} ms")

rows = []
def row(goal, target, measured, ok):
    rows.append((goal, target, measured, "yes" if ok else ("?" if ok is None else "no")))

for n, label, goal in (("10000", "10k", 100), ("100000", "100k", 300)):
    cold, noop, one = (median(f"reconcile_{n}", b) for b in ("cold", "noop", "one_file_commit"))
    if cold is None and n != "10000":
        continue
    r = cold / noop if cold and noop else None
    row(f"no-op resync vs cold ({label})", "≥ 50×", f"{r:.1f}× ({ms(noop)} vs {ms(cold)})" if r else "—", r and r >= 50)
    r = cold / one if cold and one else None
    row(f"one-file commit vs cold ({label})", f"≥ {goal}×", f"{r:.1f}× ({ms(one)} vs {ms(cold)})" if r else "—", r and r >= goal)
for n in ("1000", "10000", "100000"):
    render, plan, pure = (median(f"plan_{n}", b) for b in ("render_cold", "plan", "plan_pure"))
    if render is None:
        continue
    share = plan / render if plan else None
    target = "< 10% of render" + (", < 1 s" if n == "100000" else "")
    ok = share is not None and share < 0.10 and (n != "100000" or plan < 1000)
    row(f"plan, 1% drift ({n})", target,
        f"{share*100:.1f}% ({ms(plan)} vs render {ms(render)}; pure plan {ms(pure)})" if share else "—", ok)
floor = median("render_generated-10k", "serde_yaml_floor")
for bench, how in (("render_cold", ""), ("render_cold_1thread", ", one thread")):
    cold_r = median("render_generated-10k", bench)
    r = cold_r / floor if floor and cold_r else None
    row(f"render vs serde_yaml parse (10k){how}", "≤ 1.3×",
        f"{r:.2f}× ({ms(cold_r)} vs {ms(floor)})" if r else "—", r and r <= 1.3)
try:
    for line in open(paired_out):
        m = re.match(r"render_paired(_1thread)?/generated-10k: (.*)", line)
        if m:
            how = ", one thread" if m.group(1) else ""
            p = {k: float(v) for k, v in (kv.split("=") for kv in m.group(2).split())}
            row(f"render vs serde_yaml parse (10k){how}, in pairs", "≤ 1.3×",
                f"{p['ratio']:.2f}× median of {p['pairs']:.0f} pairs (range {p['ratio_min']:.2f}–{p['ratio_max']:.2f}; "
                f"{ms(p['render_cold_ms'])} vs {ms(p['floor_ms'])})", p["ratio"] <= 1.3)
except OSError:
    pass
mem = {}
try:
    for line in open(mem_out):
        m = re.match(r"memory/(\w+)/(\d+): objects=(\d+) (.*)", line)
        if m:
            fields = dict(kv.split("=") for kv in m.group(4).split())
            mem[(m.group(1), m.group(2))] = (int(m.group(3)), {k: float(v) for k, v in fields.items()})
except OSError:
    pass
for (what, n), (objects, f) in sorted(mem.items()):
    if what != "reconcile":
        continue
    rt = mem.get(("runtime", n))
    if rt:
        # The runtime's share, measured apart (its objects and inventory),
        # scaled to the objects of this reconcile.
        share = lambda k: rt[1][k] * rt[0] / objects
        own = f["resident_kb_per_object"] - share("resident_kb_per_object")
        heap = f["heap_kb_per_object"] - share("heap_kb_per_object")
        kept = f["kept_heap_kb_per_object"] - share("heap_kb_per_object")
        row(f"resident per object ({objects} objects)", "≤ 8 KB",
            f"{own:.1f} KB agent (heap {heap:.1f} KB, {kept:.1f} KB once the report is dropped; "
            f"{f['resident_kb_per_object']:.1f} KB with the in-memory runtime's {rt[1]['resident_kb_per_object']:.1f} KB)",
            own <= 8)
    else:
        kb = f["resident_kb_per_object"]
        row(f"resident per object ({objects} objects)", "≤ 8 KB", f"{kb:.1f} KB with the runtime", kb <= 8)
w = [max(len(r[i]) for r in rows + [("goal", "target", "measured", "met")]) for i in range(4)]
print()
for r_ in [("goal", "target", "measured", "met")] + rows:
    print(" | ".join(c.ljust(w[i]) for i, c in enumerate(r_)))
PY
