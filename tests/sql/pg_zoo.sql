-- A PostgreSQL type zoo for the round-trip test (tests/test_pg.py): every built-in type
-- family, arrays, ranges, json/jsonb, NaN/±Infinity, bytea with every byte value, text
-- edge cases, quoted unicode identifiers, several schemas, sequences, identity and
-- generated columns, partitioned and inherited tables, views, materialized views,
-- functions and procedures, triggers, domains, enums, comments and extensions.
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE EXTENSION IF NOT EXISTS citext;
CREATE SCHEMA zoo;
CREATE SCHEMA "Ünïcødé ☃ schema";
COMMENT ON SCHEMA zoo IS 'the type zoo';

CREATE TYPE zoo.mood AS ENUM ('sad', 'ok', 'happy', 'it''s "quoted"');
CREATE TYPE zoo.pair AS (a integer, b text);
CREATE DOMAIN zoo.posint AS integer CHECK (VALUE > 0);
CREATE DOMAIN zoo.email AS citext CHECK (VALUE ~ '@');
CREATE TYPE zoo.floatrange AS RANGE (subtype = float8, subtype_diff = float8mi);

CREATE TABLE zoo.numbers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    i2 smallint, i4 integer, i8 bigint,
    n numeric, n10 numeric(20, 6),
    r4 real, r8 double precision,
    m money,
    s serial,
    b boolean,
    halved bigint GENERATED ALWAYS AS (i8 / 2) STORED
);
INSERT INTO zoo.numbers (i2, i4, i8, n, n10, r4, r8, m, b) VALUES
 (-32768, -2147483648, -9223372036854775808, 'NaN', -99999999999999.999999, 'NaN', 'NaN', '-92233720368547758.08', false),
 (32767, 2147483647, 9223372036854775807, '123456789012345678901234567890.123456789', 0, 'Infinity', 'Infinity', '92233720368547758.07', true),
 (0, 0, 0, '-0.000000000000000000001', 1.5, '-Infinity', '-Infinity', 0, NULL),
 (NULL, NULL, NULL, NULL, NULL, 1.17549435e-38, 2.2250738585072014e-308, NULL, NULL),
 (1, 1, 1, '1e-100', 3, 3.4028235e38, 1.7976931348623157e308, 0.01, true),
 (2, 2, 2, 0.1, 0.1, 0.1, 0.1, 0.1, false),
 (3, 3, 3, 'Infinity', 1, -0.0, -0.0, 1, false);

CREATE TABLE zoo.texts (
    k text COLLATE "C" PRIMARY KEY,
    t text, vc varchar(50), c char(5), ci citext, nm name, "char" "char"
);
INSERT INTO zoo.texts VALUES
 ('empty', '', '', '', '', '', 'a'),
 ('null', NULL, NULL, NULL, NULL, NULL, NULL),
 ('tabs', E'a\tb\nc\rd\\e', E'\t', E'\n', 'MiXeD', 'x', E'\t'),
 ('backslash-N', '\N', E'\\N', 'N', '\.', '\.', 'N'),
 ('quotes', $$'"`$$, $q$$$q$, '''', '"', '"', ''''),
 ('unicode', '☃ 😀 ä ß 中文 ‮rtl', 'Ω', 'é', 'ÄÖÜ', '漢字', 'z'),
 ('long', repeat('x', 100000), repeat('y', 50), 'abcde', repeat('Z', 3000), 'n', '.'),
 ('controls', E'\x01\x02\x1f\x7f', E'\b\f', E'\x07', 'a', 'b', E'\x01'),
 ('trailing ', 'space ', ' lead', 'a  ', ' ', ' ', ' '),
 ('Zeta', 'upper', 'u', 'u', 'u', 'u', 'u'),
 ('alpha', 'lower', 'l', 'l', 'l', 'l', 'l');

CREATE TABLE zoo.bytes (id int PRIMARY KEY, b bytea);
INSERT INTO zoo.bytes SELECT 1, string_agg(set_byte('\x00'::bytea, 0, g), ''::bytea ORDER BY g) FROM generate_series(0, 255) g;
INSERT INTO zoo.bytes VALUES (2, ''), (3, NULL), (4, '\x5c4e'), (5, gen_random_bytes(64));
INSERT INTO zoo.bytes SELECT 100 + g, set_byte('\x00'::bytea, 0, g) FROM generate_series(0, 255) g;

CREATE TABLE zoo.times (
    id int PRIMARY KEY,
    d date, t time, tz timetz, ts timestamp, tstz timestamptz, iv interval, ts0 timestamp(0)
);
INSERT INTO zoo.times VALUES
 (1, 'infinity', '24:00:00', '23:59:59.999999+14', 'infinity', 'infinity', '178000000 years', 'epoch'),
 (2, '-infinity', '00:00', '00:00-12', '-infinity', '-infinity', '-1 day -00:00:01', '1999-12-31 23:59:59'),
 (3, '4713-01-01 BC', '12:34:56.789', '12:00+05:45', '294276-12-31 23:59:59.999999', '2000-01-01 00:00:00+03', '1 mon 2 days 03:04:05.678901', '2038-01-19 03:14:08'),
 (4, '2024-02-29', NULL, NULL, NULL, NULL, NULL, NULL),
 (5, '5874897-12-31', '23:59:59.999999', '00:00:00+00', '2000-01-01', '1970-01-01 00:00:00+00', '-178000000 years', '2026-03-29 01:30:00');

CREATE TABLE zoo.misc (
    id int PRIMARY KEY,
    u uuid, j json, jb jsonb, x xml,
    ip inet, cid cidr, mac macaddr, mac8 macaddr8,
    bits bit(8), vbits varbit,
    p point, l line, ls lseg, bx box, pth path, pg polygon, ci circle,
    tsv tsvector, tsq tsquery,
    o oid, rc regclass, rt regtype, pl pg_lsn, txs pg_snapshot,
    mood zoo.mood, pr zoo.pair, pi zoo.posint, em zoo.email
);
INSERT INTO zoo.misc VALUES
 (1, gen_random_uuid(), '{"b": 1, "a": [1, 2.50, null], "s": "\u00e9\t"}', '{"b": 1, "a": [1, 2.50, null], "n": {"x": "\u2603"}}', '<a x="1">t&amp;</a>',
  '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03', '08:00:2b:01:02:03:04:05',
  B'10101010', B'1', '(1.5,-2)', '{1,2,3}', '[(0,0),(1,1)]', '((0,0),(1,1))', '[(0,0),(1,1),(2,0)]', '((0,0),(1,1),(2,0))', '<(0,0),5>',
  'a fat cat:1A sat', 'fat & (rat | cat)', 4294967295, 'zoo.misc', 'zoo.mood[]', '16/B374D848', '10:20:10,14,15',
  'it''s "quoted"', ROW(1, 'a,b"c'), 7, 'A@B.example'),
 (2, NULL, 'null', '[]', NULL, '::1', '::/0', NULL, NULL, B'00000000', B'', NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  '', NULL, 0, NULL, NULL, NULL, NULL, 'sad', ROW(NULL, NULL), NULL, NULL),
 (3, '00000000-0000-0000-0000-000000000000', '  {"spaces" :  true }  ', '{"k": "\\\"\n"}', '<?xml version="1.0"?><r/>',
  '2001:db8::1/128', '2001:db8::/32', 'ff:ff:ff:ff:ff:ff', 'ff:ff:ff:ff:ff:ff:ff:ff', B'11111111', repeat('1', 100)::varbit,
  '(NaN,Infinity)', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'happy', NULL, 1, 'x@y');

CREATE TABLE zoo.arrays_ranges (
    id int PRIMARY KEY,
    ia int[], ta text[], na numeric[][], ja jsonb[], ba bytea[], ea zoo.mood[],
    r4 int4range, r8 int8range, nr numrange, tsr tsrange, tstzr tstzrange, dr daterange,
    fr zoo.floatrange, mr int4multirange
);
INSERT INTO zoo.arrays_ranges VALUES
 (1, '{1,NULL,3}', ARRAY['a b', 'NULL', NULL, '', '{}', '"q"', 'x,y', E'back\\slash'], '{{1,2},{3,NaN}}', ARRAY['{"a":1}'::jsonb, 'null'], ARRAY['\x00ff'::bytea, NULL], '{sad,happy}',
  '[1,10)', '(,)', '[-Infinity,NaN]'::text::numrange, '[2000-01-01,infinity)', '(-infinity,2000-01-01 00:00+00]', 'empty',
  '[1.5,2.5]', '{[1,3),[5,7)}'),
 (2, '{}', '{}', '{}', '{}', '{}', '{}', NULL, NULL, NULL, NULL, NULL, NULL, NULL, '{}'),
 (3, '[0:2]={7,8,9}', ARRAY[E'tab\there', E'nl\nhere', 'ü'], '{{{1}}}', NULL, NULL, NULL,
  '[-2147483648,2147483647)', '[1,1]', '(0,0]'::text::numrange, NULL, NULL, '[2024-01-01,2024-12-31]', '(,0)', NULL);

-- no primary key: an order-free digest; duplicate rows on purpose
CREATE TABLE zoo.nokey (a int, b text);
INSERT INTO zoo.nokey VALUES (1, 'dup'), (1, 'dup'), (NULL, NULL), (2, E'x\ny');

-- quoted unicode identifiers, another schema
CREATE TABLE "Ünïcødé ☃ schema"."Tåble ""quoted"" 😀" (
    "ID" int PRIMARY KEY, "Spaced Column" text, "ünï" text DEFAULT 'défaut', "select" int
);
INSERT INTO "Ünïcødé ☃ schema"."Tåble ""quoted"" 😀" VALUES (1, 'x', 'ü', 1), (2, NULL, DEFAULT, NULL);
COMMENT ON TABLE "Ünïcødé ☃ schema"."Tåble ""quoted"" 😀" IS 'a comment with ''quotes'' and ☃';
COMMENT ON COLUMN "Ünïcødé ☃ schema"."Tåble ""quoted"" 😀"."Spaced Column" IS 'column comment';

-- sequences
CREATE SEQUENCE zoo.counter INCREMENT 7 START 100 MINVALUE 1 MAXVALUE 1000000 CACHE 3 CYCLE;
SELECT nextval('zoo.counter'), nextval('zoo.counter');
CREATE SEQUENCE zoo.unused;
CREATE TABLE zoo.serials (id serial PRIMARY KEY, big bigserial, note text,
                          idd int GENERATED BY DEFAULT AS IDENTITY (START 50));
INSERT INTO zoo.serials (note) SELECT 'row ' || g FROM generate_series(1, 20) g;

-- partitioned (range and list, with a default partition) and inherited tables
CREATE TABLE zoo.events (id bigint NOT NULL, at date NOT NULL, payload text, PRIMARY KEY (id, at))
    PARTITION BY RANGE (at);
CREATE TABLE zoo.events_2023 PARTITION OF zoo.events FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE zoo.events_2024 PARTITION OF zoo.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')
    PARTITION BY LIST (id);
CREATE TABLE zoo.events_2024_a PARTITION OF zoo.events_2024 FOR VALUES IN (400, 401, 402, 403);
CREATE TABLE zoo.events_2024_rest PARTITION OF zoo.events_2024 DEFAULT;
CREATE TABLE zoo.events_default PARTITION OF zoo.events DEFAULT;
CREATE INDEX events_payload ON zoo.events (payload);
INSERT INTO zoo.events SELECT g, DATE '2023-01-01' + g, CASE WHEN g % 3 = 0 THEN 'a' ELSE 'p' || g END
    FROM generate_series(1, 800) g;
CREATE TABLE zoo.animal (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE zoo.cat (lives int DEFAULT 9) INHERITS (zoo.animal);
INSERT INTO zoo.animal VALUES (1, 'generic');
INSERT INTO zoo.cat VALUES (2, 'tom', 7), (3, 'felix', DEFAULT);

-- constraints, foreign keys, indexes of every kind
CREATE TABLE zoo.parent (id int PRIMARY KEY, code text UNIQUE, CHECK (id > 0));
CREATE TABLE zoo.child (
    id int PRIMARY KEY, parent_id int REFERENCES zoo.parent (id) ON DELETE CASCADE DEFERRABLE,
    during tsrange, EXCLUDE USING gist (during WITH &&)
);
INSERT INTO zoo.parent SELECT g, 'c' || g FROM generate_series(1, 50) g;
INSERT INTO zoo.child SELECT g, g, tsrange('2020-01-01'::timestamp + g * interval '1 day', '2020-01-01'::timestamp + (g + 1) * interval '1 day') FROM generate_series(1, 50) g;
CREATE INDEX child_parent_partial ON zoo.child (parent_id) WHERE parent_id > 10;
CREATE INDEX misc_jb ON zoo.misc USING gin (jb jsonb_path_ops);
CREATE INDEX texts_expr ON zoo.texts (lower(t) DESC NULLS LAST) INCLUDE (vc);
CREATE INDEX numbers_brin ON zoo.numbers USING brin (i4);
CREATE UNIQUE INDEX misc_hash ON zoo.misc (id, (u::text));
CREATE INDEX misc_hash2 ON zoo.misc USING hash (u);

-- views, materialized views, functions, procedures, triggers, rules
CREATE VIEW zoo.happy AS SELECT id, mood FROM zoo.misc WHERE mood = 'happy' WITH CASCADED CHECK OPTION;
CREATE MATERIALIZED VIEW zoo.event_counts AS SELECT payload, count(*) AS n FROM zoo.events GROUP BY payload;
CREATE UNIQUE INDEX event_counts_payload ON zoo.event_counts (payload);
CREATE MATERIALIZED VIEW zoo.never_filled AS SELECT 1 AS one WITH NO DATA;
CREATE FUNCTION zoo.add(a int, b int DEFAULT 1) RETURNS int LANGUAGE sql IMMUTABLE STRICT AS $$ SELECT a + b $$;
CREATE FUNCTION zoo.touch() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
  NEW.note := coalesce(NEW.note, '') || ' $touched$ ''q''';
  RETURN NEW;
END
$body$;
CREATE PROCEDURE zoo.bump(n int) LANGUAGE plpgsql AS $$ BEGIN PERFORM nextval('zoo.counter'); END $$;
CREATE TRIGGER serials_touch BEFORE UPDATE ON zoo.serials FOR EACH ROW WHEN (OLD.note IS DISTINCT FROM NEW.note)
    EXECUTE FUNCTION zoo.touch();
CREATE RULE animal_no_delete AS ON DELETE TO zoo.animal WHERE OLD.id = 1 DO INSTEAD NOTHING;
CREATE AGGREGATE zoo.mysum(int) (SFUNC = zoo.add, STYPE = int, INITCOND = '0');
COMMENT ON FUNCTION zoo.add(int, int) IS 'adds';
ALTER TABLE zoo.texts ALTER COLUMN t SET STATISTICS 500;
CREATE STATISTICS zoo.num_stats (dependencies) ON i2, i4 FROM zoo.numbers;

-- an empty table, and a table with only a generated column beside the key
CREATE TABLE zoo.empty (id int PRIMARY KEY, x text);
CREATE TABLE public.plain (id int PRIMARY KEY, g int GENERATED ALWAYS AS (id + 1) STORED);
INSERT INTO public.plain SELECT g FROM generate_series(1, 10) g;
