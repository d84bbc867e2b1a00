#!/usr/bin/env bash
# Start the whole local system:
#
#   scripts/up.sh
#
# Today: the project-local MariaDB and Redis with the TeamTalk schema and the demo users
# (user1 … user100, password 123456). The daemons join here as they are built.
# Stop with scripts/down.sh.
set -euo pipefail
cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/env.sh
. scripts/env.sh

bash scripts/db-up.sh

cat <<MSG

TeamTalk local stack is up.
  MariaDB  127.0.0.1:$TT_MYSQL_PORT  database $TT_MYSQL_DB, user $TT_MYSQL_USER / $TT_MYSQL_PASSWORD
  Redis    127.0.0.1:$TT_REDIS_PORT
  Demo users: user1 … user100, password 123456
  SQL shell:  mariadb --defaults-file=$TT_MYSQL_CNF -uroot $TT_MYSQL_DB
Stop it with: scripts/down.sh
MSG
