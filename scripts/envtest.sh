#!/usr/bin/env bash
# Provisions kube-apiserver + etcd for gitops-kube's integration tests.
# The script itself ships inside the gitops-kube crate (its test harness runs
# it on first use, so `cargo test --workspace --all-features` needs no prior
# step); this entry point keeps `bash scripts/envtest.sh [DEST]` working.
exec bash "$(dirname "$0")/../gitops-kube/scripts/envtest.sh" "$@"
