#!/usr/bin/env bash
# The same bootstrap `meshboot apply` does, done the way it is done by hand today: one `kubectl`
# process per object, in sequence, then the istioctl-style remote secrets
# (`create-remote-secret --name=<src> > src.yaml` once per source, then one `kubectl apply` per
# destination). Used by `cargo bench -p mesh-cli --bench apply` as the baseline; it can also be
# run on its own against any clusters.
#
# usage: kubectl-baseline.sh KUBECONFIG RENDER_DIR MESHBOOT CLUSTER...
#   RENDER_DIR  output of `meshboot render -f mesh.yaml -o RENDER_DIR` (one folder per cluster)
#   MESHBOOT    the meshboot binary (its `remote-secret` is istioctl create-remote-secret)
#   CLUSTER     kubeconfig context names, which are also the cluster names; every ordered pair
#               gets a remote secret (multi-primary)
# Prints `objects=<n> remote_secrets=<n> kubectl_processes=<n>` on the last line.
set -euo pipefail

if [ "$#" -lt 4 ]; then
  echo "usage: $0 KUBECONFIG RENDER_DIR MESHBOOT CLUSTER..." >&2
  exit 2
fi
kubeconfig=$1
render_dir=$2
meshboot=$3
shift 3
clusters=("$@")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

objects=0
processes=0
for cluster in "${clusters[@]}"; do
  for file in "$render_dir/$cluster"/[0-9]*.yaml; do
    # One object per file, as a person pasting manifests one at a time would apply them.
    rm -f "$work"/doc-*.yaml
    awk -v prefix="$work/doc-" '
      BEGIN { n = 0; out = sprintf("%s%04d.yaml", prefix, n) }
      /^---[[:space:]]*$/ { n++; out = sprintf("%s%04d.yaml", prefix, n); next }
      { print > out }
    ' "$file"
    for doc in "$work"/doc-*.yaml; do
      [ -s "$doc" ] || continue
      kubectl --kubeconfig "$kubeconfig" --context "$cluster" apply -f "$doc" >/dev/null
      objects=$((objects + 1))
      processes=$((processes + 1))
    done
  done
done

secrets=0
for src in "${clusters[@]}"; do
  "$meshboot" remote-secret --kubeconfig "$kubeconfig" --context "$src" --name "$src" \
    >"$work/remote-secret-$src.yaml" 2>/dev/null
  for dst in "${clusters[@]}"; do
    [ "$src" = "$dst" ] && continue
    kubectl --kubeconfig "$kubeconfig" --context "$dst" apply -f "$work/remote-secret-$src.yaml" >/dev/null
    secrets=$((secrets + 1))
    processes=$((processes + 1))
  done
done

echo "objects=$objects remote_secrets=$secrets kubectl_processes=$processes"
