-- Adversarial MariaDB cases that tests/sql/zoo.sql does not cover. Loaded with the
-- mariadb client (utf8mb4, --binary-mode) into an empty database selected on the command
-- line. Cases the server itself cannot round-trip are left out, with the reason, in
-- tests/test_roundtrip_adversarial.py.
SET time_zone = '+02:00';
SET sql_mode = '';

-- Numbers: negative zeros, the FLOAT/DOUBLE extremes and denormals, DECIMAL(65,30).
CREATE TABLE num_edges (
  id INT PRIMARY KEY,
  f FLOAT, d DOUBLE, u FLOAT UNSIGNED, dec65 DECIMAL(65,30), dec0 DECIMAL(65,0), d1 DECIMAL(3,2)
);
INSERT INTO num_edges VALUES
 (1, -0.0, -0.0, 0, -0.000000000000000000000000000000, -99999999999999999999999999999999999999999999999999999999999999999, -0.00),
 (2, -3.4028234e38, -1.7976931348623157e308, 3.4028234e38, 12345678901234567890123456789012345.123456789012345678901234567890, 99999999999999999999999999999999999999999999999999999999999999999, 9.99),
 (3, 1.17549435e-38, 2.2250738585072014e-308, 1.4e-45, -0.000000000000000000000000000001, 0, -9.99),
 (4, 1.1754942e-38, 4.9406564584124654e-324, NULL, NULL, NULL, NULL),
 (5, 0.1, 0.1, 0.1, 0.1, 1, 0.1),
 (6, 3.0000002, 1e22, 16777216, 1e-30, -1, 0.01),
 (-2147483648, 123456.7, -1e-320, 1, 1, 1, 1);

-- BIT of every width edge, YEAR, TIME and DATETIME extremes.
CREATE TABLE bits_times (
  id BIGINT UNSIGNED PRIMARY KEY,
  b1 BIT(1) NOT NULL DEFAULT b'1', b2 BIT(2), b63 BIT(63), b64 BIT(64) DEFAULT b'1010',
  y YEAR, t6 TIME(6), t1 TIME(1), dt6 DATETIME(6), ts6 TIMESTAMP(6) NULL, d DATE
);
INSERT INTO bits_times VALUES
 (0, b'0', b'11', b'111111111111111111111111111111111111111111111111111111111111111', 0xFFFFFFFFFFFFFFFF, 2155, '-838:59:59.000000', '-838:59:58.9', '9999-12-31 23:59:59.999999', '2038-01-19 05:14:07.999999', '9999-12-31'),
 (18446744073709551615, b'1', b'00', 0, 0, 1901, '838:59:59.000000', '838:59:59.0', '1000-01-01 00:00:00.000000', '1970-01-01 02:00:01.000000', '1000-01-01'),
 (9223372036854775808, b'1', NULL, NULL, NULL, 0, '-00:00:00.999999', '00:00:00.1', '0000-00-00 00:00:00.000000', '0000-00-00 00:00:00.000000', '0000-00-00'),
 (9223372036854775807, b'0', b'10', 1, 0x8000000000000001, 2000, '00:00:00', NULL, '2000-02-30 00:00:00', NULL, '2000-00-15');

-- TIMESTAMPs around DST changes, written in a +02:00 session (stored UTC).
CREATE TABLE dst (id INT PRIMARY KEY, ts TIMESTAMP(6) NULL, ts0 TIMESTAMP NOT NULL DEFAULT '2000-01-01 00:00:00');
INSERT INTO dst VALUES (1, '2026-03-29 03:30:00.5', '2026-10-25 02:59:59'), (2, '2026-10-25 02:00:00.000001', '2026-03-29 02:00:00'), (3, NULL, '1970-01-01 02:00:01');

-- Strings: NULL vs '' vs 'NULL' vs '\N', multi-byte charsets whose code units hold TAB,
-- LF and backslash bytes (U+0A09 is 0A 09 in UTF-16, U+5C5C is 5C 5C, U+095C is 09 5C).
CREATE TABLE strs (
  id INT PRIMARY KEY,
  v VARCHAR(20), t TEXT,
  u16 VARCHAR(20) CHARACTER SET utf16 COLLATE utf16_bin,
  u16le VARCHAR(20) CHARACTER SET utf16le,
  ucs CHAR(10) CHARACTER SET ucs2 COLLATE ucs2_bin,
  u32 TEXT CHARACTER SET utf32,
  gb VARCHAR(20) CHARACTER SET gbk,
  b5 VARCHAR(20) CHARACTER SET big5,
  bin BINARY(3), c CHAR(4) CHARACTER SET latin1 COLLATE latin1_bin,
  ascii_c VARCHAR(5) CHARACTER SET ascii
) DEFAULT CHARSET=latin1 COLLATE latin1_swedish_ci;
INSERT INTO strs VALUES
 (1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (2, '', '', '', '', '', '', '', '', '', '', ''),
 (3, 'NULL', 'NULL', 'NULL', 'NULL', 'NULL', 'NULL', 'NULL', 'NULL', 'NUL', 'NULL', 'NULL'),
 (4, '\\N', '\\N', '\\N', '\\N', '\\N', '\\N', '\\N', '\\N', '\\N', '\\N', '\\N'),
 (5, 'a\tb\nc\\d', CONCAT('x', CHAR(0), CHAR(13), CHAR(26)),
  _utf16 0x0A09095C5C5C000A0009005C, _utf16le 0x090A5C095C0A, _ucs2 0x0A090A0A5C5C, _utf32 0x00000A0900000009,
  _gbk 0x955C965C, _big5 0xA45CA55C, 0x5C090A, 'a\t ', 'x\\'),
 (6, ' lead', 'trail  ', 'ਉड़', '屜', 'ਊ', '😀𝄞', '乗', '許功', 0x000000, '   ', '  ');

-- ENUM/SET with hostile members, a 64-member SET with every bit set.
CREATE TABLE enum_set (
  id INT PRIMARY KEY,
  e ENUM('', 'a,b', 'it''s', 'back\\slash', '✓€', ' sp', 'NULL', '0', '1') NULL,
  e2 ENUM('x') NOT NULL,
  s64 SET('m01','m02','m03','m04','m05','m06','m07','m08','m09','m10','m11','m12','m13','m14','m15','m16',
          'm17','m18','m19','m20','m21','m22','m23','m24','m25','m26','m27','m28','m29','m30','m31','m32',
          'm33','m34','m35','m36','m37','m38','m39','m40','m41','m42','m43','m44','m45','m46','m47','m48',
          'm49','m50','m51','m52','m53','m54','m55','m56','m57','m58','m59','m60','m61','m62','m63','m64'),
  s SET('', 'q"', 'é') NULL
) DEFAULT CHARSET=utf8mb4;
INSERT INTO enum_set VALUES (1, '', 'x', 'm01,m02,m03,m04,m05,m06,m07,m08,m09,m10,m11,m12,m13,m14,m15,m16,m17,m18,m19,m20,m21,m22,m23,m24,m25,m26,m27,m28,m29,m30,m31,m32,m33,m34,m35,m36,m37,m38,m39,m40,m41,m42,m43,m44,m45,m46,m47,m48,m49,m50,m51,m52,m53,m54,m55,m56,m57,m58,m59,m60,m61,m62,m63,m64', ''),
 (2, 'a,b', 'x', 'm64', 'q",é'), (3, 'it''s', '', '', NULL), (4, 'back\\slash', 'x', 'm01', 'é'),
 (5, '✓€', 'x', NULL, ''), (6, ' sp', 'x', 'm32,m33', NULL), (7, 'NULL', 'x', '', ''), (8, '0', 'x', '', ''), (9, '1', 'x', '', ''), (10, NULL, 'x', '', '');
INSERT INTO enum_set (id, e, e2, s64, s) VALUES (11, 'nope', 'nope', 'm01', 'é');

-- Columns loaded through @vN variables at position 10 and more, after columns loaded
-- by name at positions 1 and 2 (@v1 is a prefix of @v10, @v2 of @v21).
CREATE TABLE many_cols (
  id INT PRIMARY KEY, c1 VARCHAR(5), c2 CHAR(3), c3 INT, c4 INT, c5 INT, c6 INT, c7 INT, c8 INT, c9 INT,
  e10 ENUM('x', 'y'), b11 BIT(3), c12 INT, c13 INT, c14 INT, c15 INT, c16 INT, c17 INT, c18 INT, c19 INT,
  c20 INT, s21 SET('p', 'q')
);
INSERT INTO many_cols VALUES (1, '007', '08', 1, 2, 3, 4, 5, 6, 7, 'y', b'101', 1, 2, 3, 4, 5, 6, 7, 8, 9, 'p,q'),
 (2, 'abc', 'x y', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);

-- Columns whose names look like the user variables LOAD DATA reads BIT/ENUM/SET through.
CREATE TABLE at_cols (id INT PRIMARY KEY, `@x` VARCHAR(5), `@v1` INT DEFAULT 9, `@` INT, e ENUM('a', 'b'), `@v4` BIT(2));
INSERT INTO at_cols VALUES (1, 'val', 5, 6, 'b', b'11'), (2, NULL, NULL, NULL, NULL, NULL), (3, '', 0, 0, 'a', b'0');

-- Defaults, generated columns with indexes, invisible columns, ON UPDATE (6), CHECKs
-- with names that need quoting, comments with quotes, newlines and backslashes.
CREATE TABLE `gen ``cols``` (
  id INT NOT NULL AUTO_INCREMENT,
  a INT NOT NULL DEFAULT 3,
  b INT DEFAULT (a + 1),
  u CHAR(36) DEFAULT (uuid()),
  dt DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
  ts TIMESTAMP(6) NULL DEFAULT NULL ON UPDATE CURRENT_TIMESTAMP(6),
  v INT AS (a * b) VIRTUAL,
  s VARCHAR(40) AS (CONCAT(a, '-', IFNULL(b, 'x'))) STORED,
  vv INT AS (v + 1) VIRTUAL,
  inv VARCHAR(10) INVISIBLE DEFAULT 'hid',
  inv2 INT INVISIBLE NULL,
  note VARCHAR(50) COMMENT 'col ''quoted'' "dq" back\\slash\nnewline',
  PRIMARY KEY (id),
  KEY ix_v (v) COMMENT 'index ''c''\nmultiline',
  UNIQUE KEY ux_s (s),
  KEY `ix two` (vv, a DESC),
  CONSTRAINT `chk ``a`` ü` CHECK (a >= 0),
  CONSTRAINT `chk.b` CHECK (b IS NULL OR b <> a),
  CONSTRAINT `multi line` CHECK (note <> 'x\ny')
) ENGINE=InnoDB AUTO_INCREMENT=500 COMMENT='tbl ''quoted''\nnewline \\ back';
INSERT INTO `gen ``cols``` (id, a, b, u, dt, ts, inv, inv2, note) VALUES
 (1, 1, 2, 'fixed-uuid', '2020-01-01 00:00:00.000001', '2020-01-01 00:00:00', 'i1', 1, 'n'),
 (2, 5, NULL, NULL, '2021-01-01 00:00:00', NULL, NULL, NULL, NULL),
 (3, 0, 7, '', '1999-12-31 23:59:59.999999', '2038-01-19 05:14:07.999999', '', 0, '');

-- Indexes: FULLTEXT, SPATIAL, prefix, descending, ignored, long unique (USING HASH),
-- unique keys on nullable columns holding NULL duplicates.
CREATE TABLE idx (
  id INT PRIMARY KEY,
  title VARCHAR(200), body TEXT, g POINT NOT NULL, bl BLOB, n1 INT NULL, n2 VARCHAR(10) NULL,
  FULLTEXT KEY ft (title, body),
  SPATIAL KEY sp (g),
  KEY pre (title(10), body(20)),
  KEY descend (n1 DESC, id),
  KEY ign (n2) IGNORED,
  UNIQUE KEY lu (bl),
  UNIQUE KEY nu (n1, n2)
) ENGINE=InnoDB;
INSERT INTO idx VALUES
 (1, 'hello world', 'full text body', POINT(1, 1), 'blob1', NULL, NULL),
 (2, 'hello again', 'another body', POINT(2, 2), NULL, NULL, NULL),
 (3, 'third', NULL, POINT(-1, -1), NULL, 1, NULL),
 (4, 'fourth', NULL, POINT(0, 0), 'blob2', 1, NULL),
 (5, NULL, NULL, POINT(0, 0), '', 1, 'x');

-- A table with only a unique key on nullable columns (no usable row order).
CREATE TABLE only_nullable_unique (a INT NULL, b VARCHAR(5) NULL, UNIQUE KEY (a, b));
INSERT INTO only_nullable_unique VALUES (NULL, NULL), (NULL, NULL), (1, NULL), (1, NULL), (1, 'x');

-- Foreign keys: composite, to a unique key of a table later by name, self-referencing,
-- with a name that needs quoting, and rows that violate them (loaded with checks off).
SET foreign_key_checks = 0;
CREATE TABLE `a fk child` (id INT PRIMARY KEY, p1 INT, p2 VARCHAR(5), s INT, KEY (p2),
  CONSTRAINT `fk ``q`` ü` FOREIGN KEY (p1, p2) REFERENCES `z fk parent` (k1, k2) ON DELETE CASCADE ON UPDATE RESTRICT,
  FOREIGN KEY (s) REFERENCES `a fk child` (id) ON DELETE SET NULL);
CREATE TABLE `z fk parent` (id INT PRIMARY KEY, k1 INT NOT NULL, k2 VARCHAR(5) NOT NULL, UNIQUE KEY uk (k1, k2), KEY (id, k2));
INSERT INTO `z fk parent` VALUES (1, 1, 'a');
INSERT INTO `a fk child` VALUES (1, 1, 'a', NULL), (2, 9, 'orph', 1), (3, NULL, NULL, 3);
SET foreign_key_checks = 1;

-- Composite PK with strings that differ only by case or trailing spaces (NO PAD keeps
-- 'a' and 'a ' apart; a _bin PAD SPACE collation keeps 'a' and 'A' apart).
CREATE TABLE case_pk (
  k VARCHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin NOT NULL,
  k2 VARCHAR(10) CHARACTER SET latin1 COLLATE latin1_bin NOT NULL,
  ci VARCHAR(10) COLLATE utf8mb4_general_ci,
  PRIMARY KEY (k, k2)
);
INSERT INTO case_pk VALUES ('a', 'a', 'A'), ('a ', 'a', 'a '), ('A', 'a', 'a'), ('a  ', 'A', 'Ä'), ('', '', ''), (' ', 'b', ' ');
CREATE TABLE ci_pk (k VARCHAR(10) COLLATE utf8mb4_unicode_ci PRIMARY KEY, v INT);
INSERT INTO ci_pk VALUES ('A ', 1), ('b', 2), ('ñ', 3), ('ß', 4);

-- AUTO_INCREMENT counters above max(id), per engine; MyISAM per-group counters.
CREATE TABLE ai_inno (id BIGINT UNSIGNED AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB AUTO_INCREMENT=9000;
INSERT INTO ai_inno (id, v) VALUES (1, 1), (18446744073709551000, 2);
CREATE TABLE ai_empty (id INT AUTO_INCREMENT PRIMARY KEY) AUTO_INCREMENT=12345;
CREATE TABLE ai_my (grp CHAR(2) NOT NULL, id MEDIUMINT NOT NULL AUTO_INCREMENT, PRIMARY KEY (grp, id)) ENGINE=MyISAM AUTO_INCREMENT=77;
INSERT INTO ai_my (grp) VALUES ('a'), ('a'), ('b'), ('a');
CREATE TABLE ai_secondary (a INT NOT NULL, id INT NOT NULL AUTO_INCREMENT, c VARCHAR(5), PRIMARY KEY (a), KEY (c), KEY ai (id)) AUTO_INCREMENT=10;
INSERT INTO ai_secondary (a, c) VALUES (1, 'x'), (2, 'y');
CREATE TABLE ai_aria (id INT AUTO_INCREMENT PRIMARY KEY, v TEXT) ENGINE=Aria TRANSACTIONAL=0 PAGE_CHECKSUM=1 AUTO_INCREMENT=40;
INSERT INTO ai_aria (v) VALUES ('x'), (NULL);

-- Table options.
-- A MERGE table: its rows are those of its underlying tables.
CREATE TABLE merge_a (id INT NOT NULL, v VARCHAR(5), KEY (id)) ENGINE=MyISAM;
CREATE TABLE merge_b LIKE merge_a;
INSERT INTO merge_a VALUES (1, 'a'), (2, 'a');
INSERT INTO merge_b VALUES (3, 'b');
CREATE TABLE merge_all (id INT NOT NULL, v VARCHAR(5), KEY (id)) ENGINE=MRG_MyISAM UNION=(merge_a, merge_b) INSERT_METHOD=LAST;
CREATE TABLE opt_compressed (id INT PRIMARY KEY, v VARCHAR(100)) ENGINE=InnoDB ROW_FORMAT=COMPRESSED KEY_BLOCK_SIZE=4;
INSERT INTO opt_compressed VALUES (1, REPEAT('z', 100));
CREATE TABLE opt_redundant (id INT PRIMARY KEY, v TEXT) ENGINE=InnoDB ROW_FORMAT=REDUNDANT STATS_PERSISTENT=0 STATS_AUTO_RECALC=0 STATS_SAMPLE_PAGES=7;
INSERT INTO opt_redundant VALUES (1, 'r');
CREATE TABLE opt_myisam (id INT PRIMARY KEY, v CHAR(10), KEY (v)) ENGINE=MyISAM CHECKSUM=1 DELAY_KEY_WRITE=1 PACK_KEYS=1 MAX_ROWS=1000 MIN_ROWS=10 ROW_FORMAT=FIXED;
INSERT INTO opt_myisam VALUES (1, 'a'), (2, NULL);
-- Options InnoDB accepts only with innodb_strict_mode=0 (kept in SHOW CREATE TABLE).
SET SESSION innodb_strict_mode = 0;
CREATE TABLE lax_fixed (id INT PRIMARY KEY, v CHAR(3)) ENGINE=InnoDB ROW_FORMAT=FIXED;
INSERT INTO lax_fixed VALUES (1, 'f');
CREATE TABLE lax_kbs (id INT PRIMARY KEY, v TEXT, KEY (v(10))) ENGINE=InnoDB ROW_FORMAT=DYNAMIC KEY_BLOCK_SIZE=8;
INSERT INTO lax_kbs VALUES (1, 'k');
SET SESSION innodb_strict_mode = 1;
-- A MEMORY table larger than the default max_heap_table_size (16 MiB; VARCHAR rows are
-- fixed-length in MEMORY: about 4 KB each here).
SET SESSION max_heap_table_size = 64 * 1024 * 1024;
CREATE TABLE mem_big (id INT PRIMARY KEY, v VARCHAR(1000)) ENGINE=MEMORY;
INSERT INTO mem_big SELECT seq, CHAR(65 + seq % 26) FROM seq_1_to_5000;
SET SESSION max_heap_table_size = DEFAULT;
CREATE TABLE col_compressed (id INT PRIMARY KEY, b BLOB COMPRESSED, t VARCHAR(1000) COMPRESSED CHARACTER SET utf8mb4);
INSERT INTO col_compressed VALUES (1, REPEAT(0x00FF0A5C09, 3000), REPEAT('ü\n', 300)), (2, NULL, ''), (3, '', NULL);

-- Partitioning: RANGE COLUMNS with subpartitions, LIST, KEY, comments.
CREATE TABLE p_range_cols (
  id INT NOT NULL, d DATE NOT NULL, c VARCHAR(5) NOT NULL, PRIMARY KEY (id, d, c)
) PARTITION BY RANGE COLUMNS (d, c) SUBPARTITION BY HASH (id) SUBPARTITIONS 2 (
  PARTITION p2000 VALUES LESS THAN ('2000-01-01', 'm') COMMENT 'before ''2000''',
  PARTITION p2020 VALUES LESS THAN ('2020-01-01', MAXVALUE),
  PARTITION pmax VALUES LESS THAN (MAXVALUE, MAXVALUE)
);
INSERT INTO p_range_cols SELECT seq, '1990-01-01' + INTERVAL seq * 37 DAY, CHAR(97 + seq % 26) FROM seq_1_to_500;
CREATE TABLE p_list (id INT NOT NULL, r INT, PRIMARY KEY (id)) PARTITION BY LIST (id MOD 3) (
  PARTITION p0 VALUES IN (0), PARTITION p1 VALUES IN (1, NULL), PARTITION p2 VALUES IN (2, -1, -2));
INSERT INTO p_list SELECT CAST(seq AS SIGNED) - 50, seq FROM seq_1_to_100;
CREATE TABLE p_key (id INT NOT NULL, v VARCHAR(10), PRIMARY KEY (id)) PARTITION BY KEY (id) PARTITIONS 4;
INSERT INTO p_key SELECT seq, seq FROM seq_1_to_200;
CREATE TABLE p_key_sub (id INT NOT NULL, y INT NOT NULL, PRIMARY KEY (id, y))
  PARTITION BY RANGE (y) SUBPARTITION BY KEY (id) (
    PARTITION a VALUES LESS THAN (10) (SUBPARTITION a1, SUBPARTITION a2),
    PARTITION b VALUES LESS THAN MAXVALUE (SUBPARTITION b1 COMMENT 'sub', SUBPARTITION b2));
INSERT INTO p_key_sub SELECT seq, seq % 20 FROM seq_1_to_100;

-- Sequences: descending, cycling (with a cycle done), exhausted, NOCACHE; their state.
CREATE SEQUENCE seq_desc START WITH -1 INCREMENT BY -3 MINVALUE -100 MAXVALUE -1 CACHE 5 NOCYCLE;
SELECT NEXTVAL(seq_desc), NEXTVAL(seq_desc), NEXTVAL(seq_desc);
CREATE SEQUENCE seq_cycled START WITH 1 INCREMENT BY 1 MINVALUE 1 MAXVALUE 3 NOCACHE CYCLE;
SELECT NEXTVAL(seq_cycled), NEXTVAL(seq_cycled), NEXTVAL(seq_cycled), NEXTVAL(seq_cycled), NEXTVAL(seq_cycled);
CREATE SEQUENCE seq_nocache START WITH 10 INCREMENT BY 10 NOCACHE;
SELECT NEXTVAL(seq_nocache);
CREATE SEQUENCE seq_desc_cycle START WITH 5 INCREMENT BY -2 MINVALUE 0 MAXVALUE 5 CACHE 2 CYCLE;
SELECT NEXTVAL(seq_desc_cycle), NEXTVAL(seq_desc_cycle), NEXTVAL(seq_desc_cycle), NEXTVAL(seq_desc_cycle);
CREATE SEQUENCE seq_unused START WITH 7 INCREMENT BY 7;
-- Restarted below its START value (SETVAL alone cannot move it back there).
CREATE SEQUENCE seq_restarted START WITH 100 MINVALUE 1 INCREMENT BY 1 CACHE 3;
ALTER SEQUENCE seq_restarted RESTART WITH 5;
SELECT NEXTVAL(seq_restarted);
CREATE SEQUENCE seq_restarted_desc START WITH -1 INCREMENT BY -1 MINVALUE -50 MAXVALUE 50 CYCLE;
ALTER SEQUENCE seq_restarted_desc RESTART WITH 20;
CREATE SEQUENCE `seq ``quoted`` ü` START WITH 100 INCREMENT BY 1;
SELECT NEXTVAL(`seq ``quoted`` ü`);
-- A DEFAULT from a sequence that comes later by name (MariaDB prints the database name
-- in it: nextval(`db`.`seq`)).
CREATE TABLE `aa uses seq` (id INT NOT NULL DEFAULT NEXTVAL(`seq ``quoted`` ü`) PRIMARY KEY,
  v BIGINT DEFAULT (NEXTVAL(seq_nocache) + 1));
INSERT INTO `aa uses seq` (v) VALUES (1);
INSERT INTO `aa uses seq` () VALUES ();

-- Identifiers: 64 characters, case-only differences, reserved words, leading digits,
-- dots and slashes (file-name encoded by the server), non-ASCII.
CREATE TABLE `a_table_name_that_is_exactly_sixty_four_characters_long_xxxxxxxx` (
  `a_column_name_that_is_exactly_sixty_four_characters_long_yyyyyyy` INT PRIMARY KEY,
  `1st` INT, `key` INT, `TABLE` INT, `select` INT, `d.o.t` INT, `sl/ash\\` INT, `ünïcödé—ß` INT
);
INSERT INTO `a_table_name_that_is_exactly_sixty_four_characters_long_xxxxxxxx` VALUES (1, 2, 3, 4, 5, 6, 7, 8);
CREATE TABLE `Case` (id INT PRIMARY KEY, v VARCHAR(5));
CREATE TABLE `case` (id INT PRIMARY KEY, v VARCHAR(5));
INSERT INTO `Case` VALUES (1, 'upper');
INSERT INTO `case` VALUES (1, 'lower'), (2, 'lower');
CREATE TABLE `_moodump_restore` (file VARCHAR(255) PRIMARY KEY, note TEXT);  -- the restore's own progress table name
INSERT INTO `_moodump_restore` VALUES ('mine', 'a user table');
CREATE TABLE `123` (`456` INT PRIMARY KEY, `#x` INT, ` lead` INT);
INSERT INTO `123` VALUES (1, 2, 3);
CREATE TABLE `a/b\\c.d@e#f` (id INT PRIMARY KEY);
INSERT INTO `a/b\\c.d@e#f` VALUES (1);
CREATE TABLE `Ελληνικά ✓` (`κλειδί` INT PRIMARY KEY, `τιμή` VARCHAR(10) COMMENT 'σχόλιο ✓') COMMENT 'πίνακας';
INSERT INTO `Ελληνικά ✓` VALUES (1, 'ένα');

-- Rows: a table with 0 rows, one with 1 row, a wide one (1000 columns), a big one
-- split into many key ranges, megabyte values with every byte.
CREATE TABLE zero_rows (id INT PRIMARY KEY, b LONGBLOB);
CREATE TABLE one_row (id INT PRIMARY KEY, b LONGBLOB);
INSERT INTO one_row VALUES (42, NULL);
SET SESSION group_concat_max_len = 1000000;
SELECT CONCAT('CREATE TABLE wide (id INT PRIMARY KEY, ',
              GROUP_CONCAT(CONCAT('c', seq, ' TINYINT DEFAULT ', seq % 100) ORDER BY seq SEPARATOR ', '),
              ') ENGINE=InnoDB ROW_FORMAT=DYNAMIC') INTO @ddl FROM seq_1_to_1000;
PREPARE st FROM @ddl; EXECUTE st; DEALLOCATE PREPARE st;
INSERT INTO wide (id) VALUES (1), (2);
UPDATE wide SET c1 = NULL, c1000 = -128 WHERE id = 2;
CREATE TABLE big (id INT PRIMARY KEY, n INT NOT NULL, s VARCHAR(100), b MEDIUMBLOB, KEY (n), KEY (s(10)));
INSERT INTO big SELECT CAST(seq AS SIGNED) * 7 - 3500, seq % 13, MD5(seq), IF(seq % 97 = 0, UNHEX(REPEAT(MD5(seq), 50)), NULL) FROM seq_1_to_3000;
INSERT INTO big VALUES (-2147483648, 0, 'min', NULL), (2147483647, 0, 'max', NULL);
CREATE TABLE mega (id INT PRIMARY KEY, b LONGBLOB, t LONGTEXT CHARACTER SET utf8mb4);
INSERT INTO mega SELECT 1, REPEAT((SELECT GROUP_CONCAT(CHAR(seq) SEPARATOR '') FROM seq_0_to_255), 12288), REPEAT('😀\t\n\\', 200000);
INSERT INTO mega VALUES (2, REPEAT(0x5C, 3000000), REPEAT(CHAR(10), 2500000));

-- Application-time periods (WITHOUT OVERLAPS) and a versioned table with a column left
-- out of versioning.
CREATE TABLE app_period (
  id INT NOT NULL, s DATE NOT NULL, e DATE NOT NULL, v INT,
  PERIOD FOR p(s, e),
  PRIMARY KEY (id, p WITHOUT OVERLAPS)
);
INSERT INTO app_period VALUES (1, '2020-01-01', '2020-06-01', 1), (1, '2020-06-01', '2021-01-01', 2);
SET time_zone = '+00:00';
CREATE TABLE versioned_partial (id INT PRIMARY KEY, v INT, nv INT WITHOUT SYSTEM VERSIONING) WITH SYSTEM VERSIONING;
INSERT INTO versioned_partial VALUES (1, 1, 1);
UPDATE versioned_partial SET v = 2;
UPDATE versioned_partial SET nv = 5;
CREATE TABLE versioned_parts (id INT PRIMARY KEY, v INT) WITH SYSTEM VERSIONING
  PARTITION BY SYSTEM_TIME (PARTITION p_hist HISTORY, PARTITION p_cur CURRENT);
INSERT INTO versioned_parts VALUES (1, 1), (2, 2);
UPDATE versioned_parts SET v = v + 10;
DELETE FROM versioned_parts WHERE id = 2;
SET time_zone = '+02:00';
CREATE SEQUENCE seq_exhausted START WITH 1 MAXVALUE 3 NOCACHE NOCYCLE;
SELECT NEXTVAL(seq_exhausted), NEXTVAL(seq_exhausted), NEXTVAL(seq_exhausted);

-- MariaDB's own types.
CREATE TABLE own_types (id INT PRIMARY KEY, i4 INET4, i6 INET6, u UUID, i4n INET4 NOT NULL DEFAULT '0.0.0.0', UNIQUE KEY (u));
INSERT INTO own_types VALUES (1, '255.255.255.255', '::', '00000000-0000-0000-0000-000000000000', '10.9.10.92'),
 (2, NULL, 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 'ffffffff-ffff-ffff-ffff-ffffffffffff', '0.0.0.0'),
 (3, '9.10.92.0', '::a09:5c0a', '0a095c0a-0a09-5c0a-0a09-5c0a0a095c0a', '92.92.9.10');

-- Views: column lists, check options, security, algorithms, a view on a function,
-- dependencies against name order, names that contain each other's names.
CREATE FUNCTION `fn ``q`` ü`(x INT) RETURNS INT DETERMINISTIC COMMENT 'fn ''c''' RETURN x * 2;
CREATE VIEW zz_base (k, doubled) AS SELECT id, `fn ``q`` ü`(id) FROM big WHERE id > 0;
CREATE ALGORITHM=MERGE DEFINER=CURRENT_USER SQL SECURITY INVOKER VIEW yy_mid AS SELECT k FROM zz_base WHERE doubled > 10;
CREATE ALGORITHM=TEMPTABLE VIEW ww_temp AS SELECT COUNT(*) AS n FROM yy_mid;
CREATE VIEW xx_top AS SELECT k FROM yy_mid WITH LOCAL CHECK OPTION;
CREATE VIEW `v` AS SELECT 1 AS one;
CREATE VIEW `vv` AS SELECT one FROM `v`;
CREATE VIEW `a view ``with`` ticks` (`col ``1```, `col 2`) AS SELECT k, 'lit;$$/*x*/' FROM xx_top;
CREATE VIEW v_seq AS SELECT NEXTVAL(seq_unused) AS n, PREVIOUS VALUE FOR `seq ``quoted`` ü` AS p, (SELECT COUNT(*) FROM `case`) AS c;
CREATE VIEW v_union AS SELECT id FROM `case` UNION ALL SELECT id FROM `Case`;

-- Stored programs with DELIMITER-hostile bodies, characteristics, other sql_modes.
DELIMITER ~~
CREATE PROCEDURE `hostile proc`(IN a VARCHAR(20), INOUT b TEXT)
  NOT DETERMINISTIC MODIFIES SQL DATA SQL SECURITY DEFINER
  COMMENT 'semi; ''q'' $$ END;'
BEGIN
  -- a comment; with END; and $$
  # hash comment ;;
  /* block ; comment END $$ */
  DECLARE x VARCHAR(50) DEFAULT 'END; $$ ;; //';
  SET b = CONCAT(IFNULL(b, ''), a, x, "dq;", '\\;', 'DELIMITER ;');
  IF a = 'END' THEN SET b = 'end'; END IF;
END~~
CREATE FUNCTION fn_semis() RETURNS TEXT CHARSET utf8mb4 NO SQL DETERMINISTIC
BEGIN
  DECLARE s TEXT DEFAULT ';;;';
  RETURN CONCAT(s, '$$', '~~', '😀', ";\n;");
END~~
CREATE TRIGGER `trg ``a`` 1` BEFORE INSERT ON `gen ``cols``` FOR EACH ROW
BEGIN
  IF NEW.note = 'END;' THEN SET NEW.note = '$$;'; END IF; -- END;
END~~
CREATE TRIGGER trg_a_2 BEFORE INSERT ON `gen ``cols``` FOR EACH ROW FOLLOWS `trg ``a`` 1` SET NEW.a = NEW.a~~
CREATE TRIGGER trg_a_0 BEFORE INSERT ON `gen ``cols``` FOR EACH ROW PRECEDES `trg ``a`` 1` SET NEW.b = NEW.b~~
CREATE TRIGGER trg_after AFTER DELETE ON `gen ``cols``` FOR EACH ROW INSERT INTO zero_rows (id) VALUES (OLD.id)~~
CREATE TRIGGER trg_upd_big AFTER UPDATE ON big FOR EACH ROW SET @n = NEW.n~~
DELIMITER ;
SET sql_mode = 'PIPES_AS_CONCAT,ANSI_QUOTES,IGNORE_SPACE,NO_BACKSLASH_ESCAPES,STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO';
CREATE FUNCTION "fn_pipes"() RETURNS VARCHAR(20) DETERMINISTIC RETURN 'a' || 'b\';
SET sql_mode = 'ORACLE';
DELIMITER ~~
CREATE PROCEDURE ora_proc(a IN NUMBER, b OUT VARCHAR2) AS
  x NUMBER := 0;
BEGIN
  x := a * 2;
  b := 'v=' || x;
END;
~~
CREATE PACKAGE "pkg ü" AS
  FUNCTION f RETURN INT;
  PROCEDURE p(a INT);
END;
~~
CREATE PACKAGE BODY "pkg ü" AS
  cnt INT := 0;  -- state; END;
  FUNCTION f RETURN INT AS BEGIN RETURN cnt; END;
  PROCEDURE p(a INT) AS BEGIN cnt := a || ';$$'; END;
END;
~~
DELIMITER ;
SET sql_mode = '';
DELIMITER ~~
CREATE AGGREGATE FUNCTION agg_sum(x INT) RETURNS INT
BEGIN
  DECLARE s INT DEFAULT 0;
  DECLARE CONTINUE HANDLER FOR NOT FOUND RETURN s;
  LOOP FETCH GROUP NEXT ROW; SET s = s + x; END LOOP;
END~~
DELIMITER ;
SET NAMES latin1;
CREATE PROCEDURE proc_latin1() SELECT 'café' AS c;
SET NAMES utf8mb4;

-- Events: enabled and disabled, ENDS, NOT PRESERVE, created in another time zone and
-- sql_mode.
SET time_zone = '+09:30';
SET sql_mode = 'NO_ZERO_DATE';
DELIMITER ~~
CREATE EVENT `ev ``q`` ü` ON SCHEDULE EVERY 3 HOUR STARTS '2035-01-01 00:00:00' ENDS '2036-01-01 00:00:00'
  ON COMPLETION NOT PRESERVE DISABLE COMMENT 'ev ''c'' ;' DO BEGIN SET @a = ';'; SET @b = 'END'; END~~
DELIMITER ;
CREATE EVENT ev_enabled_future ON SCHEDULE AT '2037-01-01 00:00:00' ON COMPLETION PRESERVE ENABLE DO SET @x = 1;
CREATE EVENT ev_slave ON SCHEDULE EVERY 1 MINUTE STARTS '2037-06-01 00:00:00' DISABLE ON SLAVE DO SET @y = 1;
-- Events whose schedule is over (created while it was not; the scheduler is off): the
-- server drops, or refuses, such an event when it is created now.
SET TIMESTAMP = UNIX_TIMESTAMP('2001-01-01 00:00:00');
CREATE EVENT ev_past_once ON SCHEDULE AT '2002-01-01 00:00:00' ON COMPLETION NOT PRESERVE ENABLE DO SET @p = 1;
CREATE EVENT ev_past_kept ON SCHEDULE AT '2002-01-01 00:00:00' ON COMPLETION PRESERVE ENABLE DO SET @p = 2;
CREATE EVENT ev_past_ended ON SCHEDULE EVERY 1 DAY STARTS '2001-06-01 00:00:00' ENDS '2002-01-01 00:00:00' ENABLE DO SET @p = 3;
SET TIMESTAMP = DEFAULT;
SET sql_mode = '';
SET time_zone = '+02:00';
