-- Brings a database made by an earlier sql/schema.sql (or by the original's ttopen.sql) up to
-- the current schema. Idempotent: each step first checks whether it is needed, so loading this
-- file again changes nothing. scripts/db-up.sh loads it right after schema.sql on every run;
-- like schema.sql it does not select the database (`mariadb … teamtalk < sql/migrate.sql`).
--
-- Works on MariaDB and MySQL (5.7, 8): a stored procedure, created and dropped here, builds the
-- statements that name a table. The loading account needs the CREATE ROUTINE, ALTER ROUTINE,
-- ALTER, INDEX and CREATE TEMPORARY TABLES privileges on the database.
--
-- Step 1: the unique keys uniq_relateId_msgId (relateId, msgId) on IMMessage_0..7 and
-- uniq_groupId_msgId (groupId, msgId) on IMGroupMessage_0..7 (docs/RELIABILITY.md, "Message
-- ids"). A table that already stores one msg id twice in a conversation (the original's counter
-- reset, or a Redis that lost a counter) cannot take the key as it is, so those rows are given
-- new ids first: of the rows sharing an id, the one inserted first (lowest row id) keeps it,
-- each other one takes the conversation's highest msgId + 1, in row order. Nothing else of a
-- row changes and no row is removed. Run it while no daemon stores messages: a repeated id
-- stored between the renumbering and the ALTER makes the ALTER fail; loading the file again
-- then completes it.

DELIMITER //

DROP PROCEDURE IF EXISTS tt_unique_msg_id //

CREATE PROCEDURE tt_unique_msg_id(IN tbl VARCHAR(64), IN conv VARCHAR(64))
BEGIN
  DECLARE idx VARCHAR(64) DEFAULT CONCAT('uniq_', conv, '_msgId');
  DECLARE row_id INT DEFAULT NULL;
  IF NOT EXISTS (SELECT 1 FROM information_schema.STATISTICS
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = tbl AND INDEX_NAME = idx) THEN
    -- Every row that repeats the msg id of an earlier row of its conversation.
    DROP TEMPORARY TABLE IF EXISTS tt_repeated_msg;
    CREATE TEMPORARY TABLE tt_repeated_msg (id INT NOT NULL PRIMARY KEY, conv_id INT UNSIGNED NOT NULL);
    SET @tt_sql = CONCAT(
      'INSERT INTO tt_repeated_msg (id, conv_id) SELECT t.id, t.`', conv, '` FROM `', tbl, '` t ',
      'JOIN (SELECT `', conv, '` AS c, msgId, MIN(id) AS keep FROM `', tbl, '` ',
      'GROUP BY `', conv, '`, msgId HAVING COUNT(*) > 1) d ',
      'ON t.`', conv, '` = d.c AND t.msgId = d.msgId AND t.id <> d.keep');
    PREPARE tt_stmt FROM @tt_sql;
    EXECUTE tt_stmt;
    DEALLOCATE PREPARE tt_stmt;

    renumber: LOOP
      SET row_id = (SELECT MIN(id) FROM tt_repeated_msg);
      IF row_id IS NULL THEN
        LEAVE renumber;
      END IF;
      SET @tt_row = row_id;
      SET @tt_conv = (SELECT conv_id FROM tt_repeated_msg WHERE id = row_id);
      SET @tt_sql = CONCAT('SELECT MAX(msgId) + 1 INTO @tt_next FROM `', tbl, '` WHERE `', conv, '` = ?');
      PREPARE tt_stmt FROM @tt_sql;
      EXECUTE tt_stmt USING @tt_conv;
      DEALLOCATE PREPARE tt_stmt;
      SET @tt_sql = CONCAT('UPDATE `', tbl, '` SET msgId = ? WHERE id = ?');
      PREPARE tt_stmt FROM @tt_sql;
      EXECUTE tt_stmt USING @tt_next, @tt_row;
      DEALLOCATE PREPARE tt_stmt;
      DELETE FROM tt_repeated_msg WHERE id = row_id;
    END LOOP;
    DROP TEMPORARY TABLE tt_repeated_msg;

    SET @tt_sql = CONCAT('ALTER TABLE `', tbl, '` ADD UNIQUE KEY `', idx, '` (`', conv, '`, `msgId`)');
    PREPARE tt_stmt FROM @tt_sql;
    EXECUTE tt_stmt;
    DEALLOCATE PREPARE tt_stmt;
  END IF;
END //

DELIMITER ;

CALL tt_unique_msg_id('IMMessage_0', 'relateId');
CALL tt_unique_msg_id('IMMessage_1', 'relateId');
CALL tt_unique_msg_id('IMMessage_2', 'relateId');
CALL tt_unique_msg_id('IMMessage_3', 'relateId');
CALL tt_unique_msg_id('IMMessage_4', 'relateId');
CALL tt_unique_msg_id('IMMessage_5', 'relateId');
CALL tt_unique_msg_id('IMMessage_6', 'relateId');
CALL tt_unique_msg_id('IMMessage_7', 'relateId');
CALL tt_unique_msg_id('IMGroupMessage_0', 'groupId');
CALL tt_unique_msg_id('IMGroupMessage_1', 'groupId');
CALL tt_unique_msg_id('IMGroupMessage_2', 'groupId');
CALL tt_unique_msg_id('IMGroupMessage_3', 'groupId');
CALL tt_unique_msg_id('IMGroupMessage_4', 'groupId');
CALL tt_unique_msg_id('IMGroupMessage_5', 'groupId');
CALL tt_unique_msg_id('IMGroupMessage_6', 'groupId');
CALL tt_unique_msg_id('IMGroupMessage_7', 'groupId');

DROP PROCEDURE tt_unique_msg_id;
