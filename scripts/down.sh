#!/usr/bin/env bash
# Stop what scripts/up.sh started (data is kept under var/).
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
bash scripts/db-down.sh
