#!/usr/bin/env bash
# Regenerate every sample bundle from its scenario (deterministic: same bytes every time).
set -euo pipefail
cd "$(dirname "$0")"
EVTXDOC=${EVTXDOC:-../.venv/bin/evtxdoc}
for scenario in */scenario.yaml; do
  folder=$(dirname "$scenario")
  rm -rf "$folder/bundle"
  "$EVTXDOC" synth "$scenario" -o "$folder"
done
