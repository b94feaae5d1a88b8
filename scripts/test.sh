#!/usr/bin/env bash
# Install, then run every test. Integration tests use NEO4J_URI when set, else start their own
# throwaway local Neo4j + GDS (assembled from Maven Central on first use) and stop it after.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
