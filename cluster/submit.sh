#!/usr/bin/env bash
# Submit a PAD command to a running Ray cluster.
#   RAY_ADDRESS=http://HEAD:8265 cluster/submit.sh annotate manifests/pad-llava558k.yaml --out s3://BUCKET/pad
# The HF token, if needed, must already be in the cluster nodes' environment; it is never passed here.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${RAY_ADDRESS:?set RAY_ADDRESS to the cluster's dashboard address, e.g. http://HEAD:8265}"
exec ray job submit --address "$RAY_ADDRESS" --working-dir . --runtime-env cluster/runtime_env.yaml -- pad "$@"
