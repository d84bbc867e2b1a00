-- TeamTalk development/test seed data. Load after sql/schema.sql into the same database.
--
-- * IMAdmin: the original's only seed row (PHP admin login admin / admin).
-- * IMDepart: one top-level department, id 1.
-- * IMUser: user1 .. user11100 with ids 1 .. 11100, all in department 1, status 0 (may log in),
--   plaintext password 123456 stored with the original's salted scheme (storage-file.md §2.7):
--     password = lower-hex md5( lower-hex md5('123456') + salt )
--   salt = (id * 7919) mod 10000 as a decimal string without leading zeros (1-4 digits, e.g.
--   user1 -> '7919', user24 -> '56'), so this file is deterministic. Spec test vector: salt
--   '1234' gives 'b605e86d02eef8bfd0646f6a704c17c9'.
--   Fixed times (1704067200 = 2024-01-01 00:00:00 UTC) keep the rows identical on every load.
--   The avatar URLs have the shape of msfs URLs; no such files exist on a fresh msfs, and the
--   clients fall back to their default picture.
--   Which tests use which users, the range tt-load uses by default and the soak range
--   (user1101 .. user11100, scripts/soak.sh): the table in services/testkit/src/users.rs.
--
-- Idempotent: rows are keyed by their fixed primary ids and upserted, so loading this file
-- again adds nothing and puts the seeded rows back to the values below; other rows are left
-- alone. Portable: no CTEs or procedures (MySQL 5.7 / MariaDB 10.x and later).

SET NAMES utf8mb4;

INSERT INTO `IMAdmin` (`id`, `uname`, `pwd`, `status`, `created`, `updated`)
VALUES (1, 'admin', '21232f297a57a5a743894a0e4a801fc3', 0, 0, 0)
ON DUPLICATE KEY UPDATE
  `uname` = VALUES(`uname`), `pwd` = VALUES(`pwd`), `status` = VALUES(`status`),
  `created` = VALUES(`created`), `updated` = VALUES(`updated`);

INSERT INTO `IMDepart` (`id`, `departName`, `priority`, `parentId`, `status`, `created`, `updated`)
VALUES (1, 'Engineering', 0, 0, 0, 1704067200, 1704067200)
ON DUPLICATE KEY UPDATE
  `departName` = VALUES(`departName`), `priority` = VALUES(`priority`),
  `parentId` = VALUES(`parentId`), `status` = VALUES(`status`),
  `created` = VALUES(`created`), `updated` = VALUES(`updated`);

-- ids 1..11100 from four digit tables (thousands 0..11 x hundreds x tens x units, cut at 11100):
-- 1..1100 for the tests and tt-load, 1101..11100 for the soak.
INSERT INTO `IMUser` (`id`, `sex`, `name`, `domain`, `nick`, `password`, `salt`, `phone`,
                      `email`, `avatar`, `departId`, `status`, `created`, `updated`,
                      `push_shield_status`, `sign_info`)
SELECT
  u.n,
  IF(u.n % 2 = 1, 1, 2),                                  -- odd ids male (1), even female (2)
  CONCAT('user', u.n),
  CONCAT('user', u.n),
  CONCAT('User ', u.n),
  MD5(CONCAT(MD5('123456'), u.salt)),
  u.salt,
  CONCAT('138', LPAD(u.n, 8, '0')),                        -- 11 digits: 13800000001 ...
  CONCAT('user', u.n, '@example.com'),
  CONCAT('http://127.0.0.1:8700/g0/000/000/1704067200000000_', LPAD(u.n, 12, '0'), '.png'),
  1,
  0,
  1704067200,
  1704067200,
  0,
  CONCAT('Hi, I am user', u.n, '.')
FROM (
  SELECT k.n, CAST((k.n * 7919) % 10000 AS CHAR) AS salt
  FROM (
    SELECT th.d * 1000 + h.d * 100 + t.d * 10 + o.d + 1 AS n
    FROM (SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL
          SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL
          SELECT 8 UNION ALL SELECT 9 UNION ALL SELECT 10 UNION ALL SELECT 11) AS th
    CROSS JOIN
         (SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL
          SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL
          SELECT 8 UNION ALL SELECT 9) AS h
    CROSS JOIN
         (SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL
          SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL
          SELECT 8 UNION ALL SELECT 9) AS t
    CROSS JOIN
         (SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL
          SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL
          SELECT 8 UNION ALL SELECT 9) AS o
  ) AS k
  WHERE k.n <= 11100
) AS u
ORDER BY u.n
ON DUPLICATE KEY UPDATE
  `sex` = VALUES(`sex`), `name` = VALUES(`name`), `domain` = VALUES(`domain`),
  `nick` = VALUES(`nick`), `password` = VALUES(`password`), `salt` = VALUES(`salt`),
  `phone` = VALUES(`phone`), `email` = VALUES(`email`), `avatar` = VALUES(`avatar`),
  `departId` = VALUES(`departId`), `status` = VALUES(`status`),
  `created` = VALUES(`created`), `updated` = VALUES(`updated`),
  `push_shield_status` = VALUES(`push_shield_status`), `sign_info` = VALUES(`sign_info`);

