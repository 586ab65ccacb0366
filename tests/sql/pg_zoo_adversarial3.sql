-- The fifth adversarial PostgreSQL fixture (tests/test_pg_adversarial3.py).
CREATE SCHEMA z5;

-- partitions keyed on OID alias values by RANGE and LIST (a tree hashed on them is in
-- pg_zoo_adversarial2.sql): the tables are made so that their OIDs sort in another order
-- than their names, as a restore (pg_dump's order: by name) makes them
CREATE TABLE z5.zz (id int);
CREATE TABLE z5.mm (id int);
CREATE TABLE z5.aa (id int);
CREATE TABLE z5.by_rel (r regclass, n int) PARTITION BY RANGE (r);
CREATE TABLE z5.by_rel_lo PARTITION OF z5.by_rel FOR VALUES FROM (MINVALUE) TO ('z5.mm');
CREATE TABLE z5.by_rel_hi PARTITION OF z5.by_rel FOR VALUES FROM ('z5.mm') TO (MAXVALUE);
INSERT INTO z5.by_rel VALUES ('z5.zz', 1), ('z5.mm', 2), ('z5.aa', 3);
CREATE DOMAIN z5.rel AS regclass;
CREATE TABLE z5.by_dom (r z5.rel, n int) PARTITION BY RANGE (r);
CREATE TABLE z5.by_dom_lo PARTITION OF z5.by_dom FOR VALUES FROM (MINVALUE) TO ('z5.mm');
CREATE TABLE z5.by_dom_hi PARTITION OF z5.by_dom FOR VALUES FROM ('z5.mm') TO (MAXVALUE);
INSERT INTO z5.by_dom VALUES ('z5.zz', 1), ('z5.mm', 2), ('z5.aa', 3);
CREATE TYPE z5.e AS ENUM ('a');
CREATE TABLE z5.by_type (t regtype, n int) PARTITION BY LIST (t);
CREATE TABLE z5.by_type_e PARTITION OF z5.by_type FOR VALUES IN ('z5.e');
CREATE TABLE z5.by_type_d PARTITION OF z5.by_type DEFAULT;
INSERT INTO z5.by_type VALUES ('z5.e', 1), ('int4', 2), ('z5.e[]', 3);

-- restored alone by its partitioned parent's name (--table z5.logs): a range tree with a
-- sub-partitioned (hashed) partition, a default one, a partitioned index and key
CREATE TABLE z5.logs (id int, at date, v text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE z5.logs_2020 PARTITION OF z5.logs FOR VALUES FROM ('2020-01-01') TO ('2021-01-01') PARTITION BY HASH (id);
CREATE TABLE z5.logs_2020_0 PARTITION OF z5.logs_2020 FOR VALUES WITH (MODULUS 2, REMAINDER 0);
CREATE TABLE z5.logs_2020_1 PARTITION OF z5.logs_2020 FOR VALUES WITH (MODULUS 2, REMAINDER 1);
CREATE TABLE z5."logs rest" PARTITION OF z5.logs DEFAULT;
CREATE INDEX logs_v ON z5.logs (v);
INSERT INTO z5.logs SELECT g, DATE '2020-01-01' + g * 3, 'v' || g FROM generate_series(1, 200) g;
