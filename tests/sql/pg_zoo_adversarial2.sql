-- The fourth adversarial PostgreSQL fixture (tests/test_pg_adversarial2.py): OID alias
-- values the restore must resolve in the new database, and a table restored alone
-- (--table) with the post-data entries that are its own.
CREATE SCHEMA z4;

-- regclass values naming an index, a constraint's index, a sequence, a view, a
-- materialized view and a composite type (the indexes exist only once post-data ran)
CREATE TABLE z4.t (id int PRIMARY KEY, v text);
CREATE INDEX t_v ON z4.t (v);
CREATE SEQUENCE z4.s;
CREATE VIEW z4.vw AS SELECT 1 AS x;
CREATE MATERIALIZED VIEW z4.mv AS SELECT 1 AS x;
CREATE TYPE z4.comp AS (a int);
CREATE DOMAIN z4.rel AS regclass;
CREATE TABLE z4.refs (id int PRIMARY KEY, rc regclass, rcs regclass[], dr z4.rel);
INSERT INTO z4.refs VALUES (1, 'z4.t', '{z4.t_v,NULL}', 'z4.refs_pkey'), (2, 'z4.t_v', '{}', NULL),
    (3, 'z4.t_pkey', NULL, 'z4.t_v'), (4, 'z4.s', '{z4.s,z4.vw}', NULL), (5, 'z4.vw', NULL, NULL),
    (6, 'z4.mv', '{z4.mv}', NULL), (7, 'z4.comp', NULL, 'z4.comp');
CREATE INDEX refs_rc ON z4.refs (rc);

-- primary keys of OID alias values: they sort by OID, which the new objects do not keep
-- (the tables are created in another order: z4.b before z4.a here, by name there)
CREATE TABLE z4.b (id int PRIMARY KEY);
CREATE TABLE z4.a (id int PRIMARY KEY);
CREATE TYPE z4.e AS ENUM ('x');
CREATE TABLE z4.regpk (rc regclass PRIMARY KEY, v text);
INSERT INTO z4.regpk VALUES ('z4.b', 'b'), ('z4.a', 'a'), ('z4.regpk', 'self'), ('z4.comp', 'type');
CREATE TABLE z4.typk (t regtype, n int, PRIMARY KEY (n, t));
INSERT INTO z4.typk VALUES ('z4.e', 1), ('int4', 1), ('z4.a', 1), ('z4.comp', 1), ('z4.e[]', 1);
CREATE TABLE z4.rowpk (r z4.rel[] PRIMARY KEY);
INSERT INTO z4.rowpk VALUES ('{z4.b}'), ('{z4.a}'), ('{z4.a,z4.b}');

-- a table restored alone: a NOT VALID check (with a comment), row level security, its
-- place in a publication, a disabled trigger, a rule, statistics, a foreign key, and a
-- child table restored with it
CREATE TABLE z4.parent (id int PRIMARY KEY);
INSERT INTO z4.parent VALUES (1);
CREATE TABLE z4.alone (id int PRIMARY KEY, pid int REFERENCES z4.parent, v text, n int);
INSERT INTO z4.alone VALUES (1, 1, 'a', -1), (2, NULL, NULL, 5);
ALTER TABLE z4.alone ADD CONSTRAINT alone_n_pos CHECK (n > 0) NOT VALID;
COMMENT ON CONSTRAINT alone_n_pos ON z4.alone IS 'not valid';
ALTER TABLE z4.alone ENABLE ROW LEVEL SECURITY;
CREATE POLICY alone_pol ON z4.alone USING (v IS NOT NULL);
CREATE PUBLICATION z4_pub FOR TABLE z4.alone, z4.parent;
CREATE FUNCTION z4.trg() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER alone_trg BEFORE INSERT ON z4.alone FOR EACH ROW EXECUTE FUNCTION z4.trg();
ALTER TABLE z4.alone DISABLE TRIGGER alone_trg;
CREATE RULE alone_rule AS ON DELETE TO z4.alone WHERE OLD.id = 1 DO INSTEAD NOTHING;
CREATE STATISTICS z4.alone_st ON id, n FROM z4.alone;
CREATE INDEX alone_v ON z4.alone (v);
COMMENT ON INDEX z4.alone_v IS 'an index of the table';
COMMENT ON STATISTICS z4.alone_st IS 'its statistics';
COMMENT ON TRIGGER alone_trg ON z4.alone IS 'its trigger';
COMMENT ON POLICY alone_pol ON z4.alone IS 'its policy';
CREATE TABLE z4.alone_child (id int PRIMARY KEY, aid int REFERENCES z4.alone ON DELETE CASCADE);
INSERT INTO z4.alone_child VALUES (1, 1);

-- a role with settings of its own in this database (ALTER ROLE … IN DATABASE, set by the
-- test: it names the database)
DO $$ BEGIN CREATE ROLE z4_reader NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;

-- restored alone too: a partition (its parent has a key and an index, which ATTACH
-- PARTITION would make for it), a child whose default uses its parent's serial sequence
-- (left as it is), and a partition of a tree hashed on an enum (refused alone)
CREATE TABLE z4.parted (id int, at date, v text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE z4.part1 PARTITION OF z4.parted FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');
CREATE TABLE z4.part2 PARTITION OF z4.parted FOR VALUES FROM ('2021-01-01') TO ('2022-01-01');
CREATE INDEX parted_v ON z4.parted (v);
INSERT INTO z4.parted SELECT g, DATE '2020-01-01' + g % 700, 'v' || g FROM generate_series(1, 300) g;
CREATE TABLE z4.serial_parent (id serial PRIMARY KEY, v text);
CREATE TABLE z4.serial_kid (extra int) INHERITS (z4.serial_parent);
INSERT INTO z4.serial_parent (v) VALUES ('a');
INSERT INTO z4.serial_kid (v, extra) VALUES ('b', 1);
CREATE TYPE z4.mood AS ENUM ('sad', 'happy');
CREATE TABLE z4.by_mood (m z4.mood, n int) PARTITION BY HASH (m);
CREATE TABLE z4.by_mood0 PARTITION OF z4.by_mood FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE z4.by_mood1 PARTITION OF z4.by_mood FOR VALUES WITH (MODULUS 2, REMAINDER 1);
INSERT INTO z4.by_mood VALUES ('sad', 1), ('happy', 2);
