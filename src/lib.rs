//! `teamtalk`: the workspace's root package.
//!
//! It holds no server code. It owns the cross-crate integration tests under `tests/` (which start
//! real daemons against the project-local MariaDB and Redis from `scripts/db-up.sh`) and the
//! criterion benches under `benches/`. The servers live in `services/`, the reactor in `netlib/`,
//! the wire contract in `proto/`.
