#!/usr/bin/env bash
# Run every test of the workspace against real services:
#
#   scripts/test.sh [extra cargo test arguments]
#
# Starts (or reuses) the project-local MariaDB and Redis (scripts/db-up.sh, which installs them
# with apt-get on a machine that never had them), then runs `cargo test --workspace`. The
# integration tests spawn the daemons they need themselves. Then the short soak
# (scripts/soak.sh --short: 300 clients for a minute on the debug build, nothing acked may be
# lost or duplicated, no daemon may die); TT_SKIP_SOAK=1 leaves it out.
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/env.sh
. scripts/env.sh

bash scripts/db-up.sh
cargo build --workspace --bins
cargo test --workspace "$@"
[[ "${TT_SKIP_SOAK:-0}" == 1 ]] || bash scripts/soak.sh --short
