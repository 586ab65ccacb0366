-- The second, adversarial PostgreSQL fixture (tests/test_pg_hard.py): keys of every
-- awkward kind, tables without keys, TOASTed values, odd identifiers, partitioning of
-- every kind, identity/sequence states, objects of every kind, comments, grants, and a
-- database whose own settings (TimeZone, DateStyle, IntervalStyle, search_path,
-- lc_monetary, extra_float_digits) differ from the defaults: the dump must not depend on them.
CREATE EXTENSION IF NOT EXISTS btree_gist;
CREATE SCHEMA "ext schema";
CREATE EXTENSION IF NOT EXISTS hstore SCHEMA "ext schema";
CREATE SCHEMA "we ird.""schema""";
CREATE SCHEMA h;
SET search_path = h, public;

-- keys of every kind; tables without one
CREATE TABLE h.dups (a int, b text, c numeric);
INSERT INTO h.dups VALUES (1, 'x', 1.0), (1, 'x', 1.0), (1, 'x', 1.0), (NULL, NULL, NULL), (NULL, NULL, NULL), (1, 'x', 1.00);
CREATE TABLE h.uniq_nopk (a int, b text, UNIQUE (a, b));
INSERT INTO h.uniq_nopk VALUES (1, 'a'), (1, NULL), (1, NULL), (NULL, 'b');
CREATE TABLE h.textpk (k text PRIMARY KEY, v int);
INSERT INTO h.textpk VALUES ('a', 1), ('B', 2), ('_', 3), ('ä', 4), ('', 5), ('A', 6), ('b', 7), ('Ä', 8), (' ', 9), ('a b', 10), ('ab', 11), ('1', 12), ('ß', 13), ('ss', 14);
CREATE COLLATION h.und_ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE COLLATION h.de (provider = icu, locale = 'de-DE');
CREATE TABLE h.icu_pk (k text COLLATE h.de PRIMARY KEY, ci text COLLATE h.und_ci);
INSERT INTO h.icu_pk VALUES ('a', 'A'), ('B', 'b'), ('ä', 'Ä'), ('z', 'Z'), ('Z', 'z');
CREATE TABLE h.comp_pk (i int, t text, v text, PRIMARY KEY (i, t));
INSERT INTO h.comp_pk SELECT g % 3, chr(65 + g % 40), 'v' || g FROM generate_series(1, 60) g ON CONFLICT DO NOTHING;
CREATE TABLE h.uuid_pk (id uuid PRIMARY KEY, n int);
INSERT INTO h.uuid_pk VALUES ('00000000-0000-0000-0000-000000000000', 1), ('ffffffff-ffff-ffff-ffff-ffffffffffff', 2), ('7fffffff-0000-0000-0000-000000000001', 3);
CREATE TABLE h.bytea_pk (id bytea PRIMARY KEY, n int);
INSERT INTO h.bytea_pk VALUES ('\x', 1), ('\x00', 2), ('\xff', 3), ('\x0a', 4), ('\x5c', 5), ('\x0000', 6);
CREATE TABLE h.numeric_pk (id numeric PRIMARY KEY, n int);
INSERT INTO h.numeric_pk VALUES ('NaN', 1), ('Infinity', 2), ('-Infinity', 3), (0, 4), (1.5, 5), (-1e-30, 6), (1e30, 7), (2.000, 8);
CREATE TABLE h.ts_pk (id timestamp PRIMARY KEY, tz timestamptz, d date);
INSERT INTO h.ts_pk VALUES ('infinity', 'infinity', 'infinity'), ('-infinity', '-infinity', '-infinity'),
  ('2001-02-03 04:05:06.789012', '2001-02-03 04:05:06.789012+05:30', '2001-02-03'), ('0044-03-15 12:00 BC', '0044-03-15 12:00+00 BC', '0044-03-15 BC');
CREATE TYPE h.mood AS ENUM ('sad', 'happy');
ALTER TYPE h.mood ADD VALUE 'meh' BEFORE 'happy';
ALTER TYPE h.mood ADD VALUE 'abysmal' BEFORE 'sad';
ALTER TYPE h.mood ADD VALUE 'ecstatic';
CREATE TABLE h.enum_pk (m h.mood PRIMARY KEY, n int);
INSERT INTO h.enum_pk VALUES ('happy', 1), ('sad', 2), ('meh', 3), ('abysmal', 4), ('ecstatic', 5);
CREATE TABLE h.float_pk (f float8 PRIMARY KEY);
INSERT INTO h.float_pk VALUES ('NaN'), ('Infinity'), ('-Infinity'), ('-0'), (0.1), (1e-320), (5e-324);

-- wide and awkward values
CREATE TABLE h.wide (id int PRIMARY KEY, t text, b bytea);
INSERT INTO h.wide SELECT 1, string_agg(md5(g::text), E'\\\t\n\r') , NULL FROM generate_series(1, 200000) g;
INSERT INTO h.wide SELECT 2, NULL, string_agg(decode(md5(g::text), 'hex'), '\x5c0a0d09'::bytea) FROM generate_series(1, 250000) g;
INSERT INTO h.wide VALUES (3, E'line\n\\.\nafter\r\n\\.', NULL);
INSERT INTO h.wide SELECT 4, string_agg(chr(c), '' ORDER BY c), NULL FROM generate_series(1, 55295) c;
INSERT INTO h.wide SELECT 5, string_agg(chr(c), '' ORDER BY c), NULL FROM (SELECT generate_series(57344, 1114111, 97) c) s;
INSERT INTO h.wide VALUES (6, E'\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f\x10\x1b\x1f\x7f', E'\\x00');
CREATE TYPE h.pair AS (a int, b text, c numeric[]);
CREATE DOMAIN h.smallarr AS int[] CHECK (array_length(VALUE, 1) <= 3 AND VALUE[1] IS NOT NULL);
CREATE TYPE h.tsrng AS RANGE (subtype = timestamptz);
CREATE TABLE h.values (
  id int PRIMARY KEY,
  pairs h.pair[], md int[][][], nulls text[], da h.smallarr,
  rng h.tsrng, mr int8multirange, nmr nummultirange, dmr datemultirange,
  moods h.mood[], m money, iv interval, tstz timestamptz, tm time, ttz timetz,
  f4 real, f8 float8, n numeric, vb bit varying, b10 bit(10),
  tsv tsvector, tsq tsquery, x xml, lsn pg_lsn, m8 macaddr8, ip inet, cid cidr,
  rc regclass, rp regproc, rpr regprocedure, rt regtype, rn regnamespace, rcfg regconfig, rop regoperator,
  j json, jb jsonb, hs "ext schema".hstore, o oid
);
-- identifiers: a dot, a double quote, 63-byte names, spaces
CREATE TABLE "we ird.""schema"""."t.a""b" ("col.""x""" int PRIMARY KEY, "  " text);
INSERT INTO "we ird.""schema"""."t.a""b" VALUES (1, 'one'), (2, NULL);
CREATE TABLE h.t_abcdefghijklmnopqrstuvwxyz_abcdefghijklmnopqrstuvwxyz_0123456 (
  c_abcdefghijklmnopqrstuvwxyz_abcdefghijklmnopqrstuvwxyz_0123456 int PRIMARY KEY);
INSERT INTO h.t_abcdefghijklmnopqrstuvwxyz_abcdefghijklmnopqrstuvwxyz_0123456 VALUES (1), (2);

CREATE TABLE h."a/b" (x int PRIMARY KEY);
INSERT INTO h."a/b" VALUES (1);
CREATE TABLE h."..." ();
CREATE TABLE h."new
line; Type: ACL; Schema: x" ("c
d" text PRIMARY KEY, "-- Name: z; Type: INDEX" int);
INSERT INTO h."new
line; Type: ACL; Schema: x" VALUES (E'v\n', 1);
CREATE INDEX "idx
with newline" ON h."new
line; Type: ACL; Schema: x" ("-- Name: z; Type: INDEX");

-- partitioning: hash (int and enum keys), list with default, range with sub-partitions
CREATE TABLE h.hp (id int, t text, PRIMARY KEY (id)) PARTITION BY HASH (id);
CREATE TABLE h.hp0 PARTITION OF h.hp FOR VALUES WITH (MODULUS 3, REMAINDER 0);
CREATE TABLE h.hp1 PARTITION OF h.hp FOR VALUES WITH (MODULUS 3, REMAINDER 1);
CREATE TABLE h.hp2 PARTITION OF h.hp FOR VALUES WITH (MODULUS 3, REMAINDER 2);
INSERT INTO h.hp SELECT g, 'r' || g FROM generate_series(1, 100) g;
-- hash of an enum is hash of its OID: different in the new database (pg_dump
-- --load-via-partition-root's case)
CREATE TABLE h.hpe (m h.mood, n int) PARTITION BY HASH (m);
CREATE TABLE h.hpe0 PARTITION OF h.hpe FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE h.hpe1 PARTITION OF h.hpe FOR VALUES WITH (MODULUS 2, REMAINDER 1);
INSERT INTO h.hpe SELECT m, 1 FROM unnest(enum_range(NULL::h.mood)) m;
CREATE TABLE h.hpci (k text COLLATE h.und_ci) PARTITION BY HASH (k);
CREATE TABLE h.hpci0 PARTITION OF h.hpci FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE h.hpci1 PARTITION OF h.hpci FOR VALUES WITH (MODULUS 2, REMAINDER 1);
INSERT INTO h.hpci VALUES ('a'), ('B'), ('ä'), ('x'), ('Y');
CREATE TABLE h.lp (k text, v int) PARTITION BY LIST (k);
CREATE TABLE h.lp_a PARTITION OF h.lp FOR VALUES IN ('a', 'A');
CREATE TABLE h.lp_null PARTITION OF h.lp FOR VALUES IN (NULL);
CREATE TABLE h.lp_def PARTITION OF h.lp DEFAULT PARTITION BY RANGE (v);
CREATE TABLE h.lp_def_lo PARTITION OF h.lp_def FOR VALUES FROM (MINVALUE) TO (0);
CREATE TABLE h.lp_def_hi PARTITION OF h.lp_def FOR VALUES FROM (0) TO (MAXVALUE);
INSERT INTO h.lp VALUES ('a', 1), ('A', 2), (NULL, 3), ('z', -5), ('z', 5), ('z', 5);

-- a partition attached with its columns in another order, and a dropped column
CREATE TABLE h.rp (a int, b text, c date) PARTITION BY RANGE (a);
CREATE TABLE h.rp_1 (junk int, c date, b text, a int);
ALTER TABLE h.rp_1 DROP COLUMN junk;
ALTER TABLE h.rp ATTACH PARTITION h.rp_1 FOR VALUES FROM (0) TO (100);
INSERT INTO h.rp VALUES (1, 'one', '2020-02-02');

-- inheritance with child data and a child with its own column
CREATE TABLE h.base (id int, note text);
CREATE TABLE h.kid (extra int) INHERITS (h.base);
CREATE TABLE h.kid2 (id int, note text, other text);
ALTER TABLE h.kid2 INHERIT h.base;
INSERT INTO h.base VALUES (1, 'base');
INSERT INTO h.kid VALUES (2, 'kid', 20), (2, 'kid', 20);
INSERT INTO h.kid2 VALUES (3, 'kid2', 'o');

-- identity and sequences in every state
CREATE TABLE h.ident (a int GENERATED ALWAYS AS IDENTITY (START 10 INCREMENT 5), b int GENERATED BY DEFAULT AS IDENTITY, t text,
  g text GENERATED ALWAYS AS (t || '!') STORED);
INSERT INTO h.ident (t) VALUES ('one'), ('two');
INSERT INTO h.ident (a, b, t) OVERRIDING SYSTEM VALUE VALUES (1000, 2000, 'overridden');
INSERT INTO h.ident (b, t) VALUES (-1, 'by default');
CREATE SEQUENCE h.loose INCREMENT -3 MINVALUE -100 MAXVALUE 50 START 40 CYCLE;
SELECT nextval('h.loose') FROM generate_series(1, 50);
CREATE SEQUENCE h.never_called START 77;
CREATE SEQUENCE h.set_false; SELECT setval('h.set_false', 33, false);
CREATE UNLOGGED TABLE h.unlogged (id int PRIMARY KEY, v text);
INSERT INTO h.unlogged VALUES (1, 'u');

-- functions, procedures, aggregates, operators, casts, text search
CREATE FUNCTION h.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.note := NEW.note || '+'; RETURN NEW; END $$;
CREATE FUNCTION h.stmt() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE FUNCTION h.pair_eq(h.pair, h.pair) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$ SELECT $1.a = $2.a $$;
CREATE OPERATOR h.=== (LEFTARG = h.pair, RIGHTARG = h.pair, FUNCTION = h.pair_eq, COMMUTATOR = OPERATOR(h.===));
CREATE FUNCTION h.mood_text(h.mood) RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT 1 $$;
CREATE CAST (h.mood AS int) WITH FUNCTION h.mood_text(h.mood);
CREATE AGGREGATE h.cat(text) (SFUNC = textcat, STYPE = text, INITCOND = '');
CREATE PROCEDURE h.p(INOUT x int) LANGUAGE sql AS $$ SELECT x + 1 $$;
CREATE TEXT SEARCH CONFIGURATION h.cfg (COPY = english);
ALTER TEXT SEARCH CONFIGURATION h.cfg ALTER MAPPING FOR word WITH simple;

INSERT INTO h.values VALUES
 (1, ARRAY[ROW(1, 'a"b', '{1.5,NaN}')::h.pair, ROW(NULL, NULL, NULL)::h.pair, NULL],
  '{{{1,2},{3,4}},{{5,NULL},{7,8}}}', '{NULL,"NULL",null,"",\\,"\"","{}"}', '{1,2}',
  '[2020-01-01 00:00+00,2021-01-01 00:00+00)', '{[1,3),[10,20)}', '{(-Infinity,0],[1.5,NaN]}', '{[2020-01-01,infinity)}',
  '{meh,abysmal}', 1234567.89, '1 year 2 mons -3 days 04:05:06.000007', '2024-06-01 12:34:56.123456+02', '23:59:59.999999', '01:02:03-07:30',
  '-0', 'NaN', 'Infinity', B'101', B'1100000011',
  $$'a':1A,2B 'b':3C 'it''s':4D$$, $$'a' & !('b' | 'c':*B) <-> 'd'$$, '<x a="1">  <y/>&lt;</x>', 'FFFFFFFF/FFFFFFFF', '08:00:2b:01:02:03:04:05', '::ffff:1.2.3.4/96', '192.168.0.0/16',
  'h.wide', 'h.touch', 'h.touch()', 'h.mood[]', 'h', 'h.cfg', 'h.===(h.pair,h.pair)',
  '{"a":1,  "a":2 , "b" : [ ] }', '{"a":1,  "a":2 , "b" : [ ] }', 'a=>1, "b c"=>NULL, "\\"=>"\""', 4294967295),
 (2, '{}', '{}', '{}', '{9}', 'empty', '{}', '{}', '{}', '{}', -0.01, '-178000000 years -1 mon -1 us', '-infinity', '00:00', '00:00+15:59',
  '1.17549435e-38', '4.9e-324', '-Infinity', B'', B'0000000000', '', '', '', '0/0', '00:00:00:00:00:00:00:00', '0.0.0.0/0', '::/0',
  '"we ird.""schema"""."t.a""b"', 'pg_catalog.now', 'pg_catalog.now()', 'integer', 'pg_catalog', 'simple', '+(integer,integer)',
  'null', 'null', '', 0),
 (3, NULL, '[2:3][-1:0]={{1,2},{3,4}}', '{a}', '{3}', '(,)', NULL, NULL, NULL, NULL, NULL, '0', '1999-12-31 23:59:59.999999-00:30', NULL, NULL,
  3.4028235e38, 1.7976931348623157e308, '-0.0000000000', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, '  [1, 2.50 ,  3e2]  ', '[1, 2.50, 3e2]', NULL, NULL);

-- constraints: deferrable, cascading, self-referencing, circular, exclusion
CREATE TABLE h.tree (id int PRIMARY KEY, parent int REFERENCES h.tree ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED);
INSERT INTO h.tree VALUES (1, NULL), (2, 1), (3, 2), (4, 99), (99, 4);
CREATE TABLE h.ca (id int PRIMARY KEY, b_id int);
CREATE TABLE h.cb (id int PRIMARY KEY, a_id int REFERENCES h.ca DEFERRABLE INITIALLY DEFERRED);
ALTER TABLE h.ca ADD FOREIGN KEY (b_id) REFERENCES h.cb DEFERRABLE INITIALLY DEFERRED;
BEGIN; INSERT INTO h.ca VALUES (1, 1); INSERT INTO h.cb VALUES (1, 1); COMMIT;
CREATE TABLE h.booking (room int, during tsrange, EXCLUDE USING gist (room WITH =, during WITH &&));
INSERT INTO h.booking VALUES (1, '[2020-01-01,2020-01-02)'), (1, '[2020-01-02,2020-01-03)'), (2, '[2020-01-01,2020-01-02)');

-- triggers, rules, policies, views
CREATE TRIGGER kid_touch BEFORE INSERT ON h.kid FOR EACH ROW EXECUTE FUNCTION h.touch();
CREATE TRIGGER kid_stmt AFTER UPDATE ON h.kid FOR EACH STATEMENT EXECUTE FUNCTION h.stmt();
CREATE CONSTRAINT TRIGGER tree_ct AFTER INSERT ON h.tree DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION h.stmt();
ALTER TABLE h.tree DISABLE TRIGGER tree_ct;
CREATE RULE base_log AS ON UPDATE TO h.base DO ALSO NOTIFY base_changed;
CREATE TABLE h.secret (id int PRIMARY KEY, owner name DEFAULT current_user, v text);
INSERT INTO h.secret VALUES (1, 'postgres', 's');
ALTER TABLE h.secret ENABLE ROW LEVEL SECURITY;
ALTER TABLE h.secret FORCE ROW LEVEL SECURITY;
CREATE POLICY mine ON h.secret USING (owner = current_user) WITH CHECK (v IS NOT NULL);
CREATE VIEW h.lv WITH (security_barrier) AS SELECT * FROM h.tree WHERE parent IS NOT NULL WITH LOCAL CHECK OPTION;
CREATE RECURSIVE VIEW h.chain (id, depth) AS SELECT id, 0 FROM h.tree WHERE parent IS NULL
  UNION ALL SELECT t.id, c.depth + 1 FROM h.tree t JOIN chain c ON t.parent = c.id;
CREATE MATERIALIZED VIEW h.mv AS SELECT m, count(*) FROM h.enum_pk GROUP BY m;
CREATE MATERIALIZED VIEW h.mv_on_mv AS SELECT * FROM h.mv;
CREATE MATERIALIZED VIEW h.mv_empty AS SELECT 1 AS x WITH NO DATA;

-- comments, statistics, grants
DO $$ BEGIN CREATE ROLE hard_reader NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
COMMENT ON SCHEMA h IS 'hard';
COMMENT ON TYPE h.mood IS 'moods';
COMMENT ON COLUMN h.values.pairs IS 'pairs';
COMMENT ON CONSTRAINT tree_parent_fkey ON h.tree IS 'self';
COMMENT ON POLICY mine ON h.secret IS 'policy';
COMMENT ON TRIGGER kid_touch ON h.kid IS 'trigger';
COMMENT ON SEQUENCE h.loose IS 'loose';
COMMENT ON MATERIALIZED VIEW h.mv IS 'mv';
COMMENT ON INDEX h.textpk_pkey IS 'pk index';
COMMENT ON AGGREGATE h.cat(text) IS 'agg';
COMMENT ON TEXT SEARCH CONFIGURATION h.cfg IS 'cfg';
COMMENT ON COLLATION h.de IS 'de';
ALTER TABLE h.values ALTER COLUMN j SET STATISTICS 1000;
ALTER TABLE h.values ALTER COLUMN x SET STORAGE EXTERNAL;
ALTER TABLE h.dups SET (fillfactor = 70, autovacuum_enabled = false);
GRANT USAGE ON SCHEMA h TO hard_reader;
GRANT SELECT (id, v) ON h.secret TO hard_reader;
ALTER DEFAULT PRIVILEGES IN SCHEMA h GRANT SELECT ON TABLES TO hard_reader;
RESET search_path;

-- no columns to COPY: none at all, or only a generated one
CREATE TABLE h.nocols ();
INSERT INTO h.nocols DEFAULT VALUES; INSERT INTO h.nocols DEFAULT VALUES;
CREATE TABLE h.onlygen (g int GENERATED ALWAYS AS (7) STORED);
INSERT INTO h.onlygen DEFAULT VALUES;
-- a constraint the rows break, NOT VALID; NULLS NOT DISTINCT; a publication
ALTER TABLE h.dups ADD CONSTRAINT big_a CHECK (a > 5) NOT VALID;
CREATE TABLE h.nnd (a int, b int, UNIQUE NULLS NOT DISTINCT (a, b));
INSERT INTO h.nnd VALUES (1, NULL), (NULL, NULL);
CREATE PUBLICATION hard_pub FOR TABLE h.textpk, TABLES IN SCHEMA "we ird.""schema""";

-- a CHECK whose function reads a table by its unqualified name (the database's own
-- search_path finds it): the rows load under that search_path, not pg_dump's empty one
CREATE TABLE h.limits (lo int);
INSERT INTO h.limits VALUES (0);
CREATE FUNCTION h.above_limit(int) RETURNS boolean LANGUAGE sql STABLE AS 'SELECT $1 > (SELECT min(lo) FROM limits)';
CREATE TABLE h.checked (a int CHECK (h.above_limit(a)));
INSERT INTO h.checked VALUES (1), (2);

-- text that looks like pg_dump's own: an entry header, a psql meta-command and an
-- OWNER TO line inside a comment string and a function body
COMMENT ON TABLE h.dups IS E'fake\n--\n-- Name: x; Type: ACL; Schema: -; Owner: -\n--\n\n\\restrict abc\nALTER TABLE h.dups OWNER TO nobody;\nend';
CREATE FUNCTION h.maint() RETURNS void LANGUAGE plpgsql AS $body$
BEGIN
--
-- Name: y; Type: ACL; Schema: -; Owner: -
--
EXECUTE 'SELECT 1';
ALTER TABLE h.dups OWNER TO postgres;
END
$body$;

-- large objects: contents, fixed and assigned OIDs, an empty one, a big one, comments,
-- an owner and grants
SELECT lo_from_bytea(424242, '\x00ff5c0a0d09'::bytea);
SELECT lo_from_bytea(0, ''::bytea);
SELECT lo_from_bytea(424243, (SELECT b FROM h.wide WHERE id = 2));
COMMENT ON LARGE OBJECT 424242 IS 'a large object';
ALTER LARGE OBJECT 424243 OWNER TO hard_reader;
GRANT SELECT ON LARGE OBJECT 424242 TO hard_reader;
GRANT UPDATE ON LARGE OBJECT 424242 TO PUBLIC;

-- a materialized view of text that the session's settings shape (the database's own
-- TimeZone, DateStyle, IntervalStyle, extra_float_digits): refreshed under them again
CREATE MATERIALIZED VIEW h.mv_text AS SELECT '2020-01-01 00:00+00'::timestamptz::text AS t,
    '1 day 2 hours'::interval::text AS i, '2020-02-03'::date::text AS d, 0.1::float8::text AS f;

-- last: an event trigger that refuses every DDL (pg_restore creates it after everything,
-- materialized view refreshes included)
CREATE FUNCTION h.no_ddl() RETURNS event_trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'no DDL here (%)', tg_tag; END $$;
CREATE EVENT TRIGGER no_ddl ON ddl_command_start EXECUTE FUNCTION h.no_ddl();
