from moodump.ddl import (
    SplitTable,
    has_foreign_keys,
    portable_create,
    portable_view,
    referenced_tables,
    retarget_trigger,
    retarget_view,
    split_secondary_indexes,
)

CREATE = """CREATE TABLE `t` (
  `id` bigint(10) NOT NULL AUTO_INCREMENT,
  `a` int(11) DEFAULT NULL,
  `b` varchar(10) DEFAULT NULL,
  `g` point NOT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `u_a` (`a`),
  KEY `ix ``b``` (`b`(5),`a`),
  SPATIAL KEY `g` (`g`),
  FULLTEXT KEY `ft` (`b`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"""


def test_split_keeps_primary_and_fulltext():
    split = split_secondary_indexes(CREATE)
    assert "PRIMARY KEY (`id`)," in split.create
    assert "FULLTEXT KEY `ft` (`b`)\n) ENGINE" in split.create
    assert "u_a" not in split.create and "SPATIAL" not in split.create
    assert split.indexes == (
        "ADD UNIQUE KEY `u_a` (`a`)",
        "ADD KEY `ix ``b``` (`b`(5),`a`)",
        "ADD SPATIAL KEY `g` (`g`)",
    )
    assert split.index_names() == ["u_a", "ix `b`", "g"]


def test_trailing_comma_fixed_when_last_line_removed():
    create = "CREATE TABLE `t` (\n  `id` int NOT NULL,\n  PRIMARY KEY (`id`),\n  KEY `k` (`id`)\n) ENGINE=InnoDB"
    split = split_secondary_indexes(create)
    assert (
        split.create
        == "CREATE TABLE `t` (\n  `id` int NOT NULL,\n  PRIMARY KEY (`id`)\n) ENGINE=InnoDB"
    )


def test_no_primary_key_means_nothing_deferred():
    create = "CREATE TABLE `t` (\n  `a` int NOT NULL,\n  UNIQUE KEY `a` (`a`)\n) ENGINE=InnoDB"
    assert split_secondary_indexes(create).indexes == ()


def test_foreign_keys():
    create = "CREATE TABLE `c` (\n  `id` int,\n  CONSTRAINT `f` FOREIGN KEY (`id`) REFERENCES `p``x` (`id`)\n)"
    assert has_foreign_keys(create)
    assert referenced_tables(create) == {"p`x"}


def test_portable_create_drops_its_own_database_from_sequence_calls():
    create = (
        "CREATE TABLE `t` (\n  `id` int(11) NOT NULL DEFAULT nextval(`my ``db`.`s``q`),\n"
        "  `v` bigint(20) DEFAULT (NEXTVAL(`my ``db`.`s2`) + lastval(`other`.`s`)),\n"
        "  `c` varchar(40) DEFAULT 'nextval(`x`.`s`)'\n) ENGINE=InnoDB"
    )
    out = portable_create(create, "my `db")
    assert "DEFAULT nextval(`s``q`)" in out
    assert "(NEXTVAL(`s2`) + lastval(`other`.`s`))" in out  # another database stays
    assert portable_create(create, "other db") == create


def test_auto_increment_column_outside_the_primary_key_keeps_every_index():
    create = (
        "CREATE TABLE `t` (\n  `a` int(11) NOT NULL,\n"
        "  `id` int(11) NOT NULL AUTO_INCREMENT,\n"
        "  `c` varchar(20) DEFAULT 'x AUTO_INCREMENT' COMMENT 'AUTO_INCREMENT',\n"
        "  PRIMARY KEY (`a`),\n  KEY `x` (`c`),\n  KEY `by id` (`id`)\n) ENGINE=InnoDB"
    )
    assert split_secondary_indexes(create) == SplitTable(create, ())
    first = create.replace("PRIMARY KEY (`a`)", "PRIMARY KEY (`id`,`a`)")
    assert split_secondary_indexes(first).index_names() == ["x", "by id"]


def test_portable_view_in_its_client_charset():
    view = b"VIEW `v` AS select nextval(`d\xe9`.`s`) AS `n`,lastval(`other`.`s`) AS `p`"
    assert portable_view(view, "d\u00e9", "latin1") == (
        b"VIEW `v` AS select nextval(`s`) AS `n`,lastval(`other`.`s`) AS `p`"
    )
    assert portable_view(view, "d\u00e9", "utf8mb4") == view  # other bytes: not its own
    assert portable_view(view, "d\u00e9", "no-such-charset") == view


def test_retarget_trigger_renames_only_the_headers_own_database():
    body = b" FOR EACH ROW INSERT INTO src.log VALUES ('src.t')"
    create = b"CREATE DEFINER=`root`@`%` TRIGGER `src`.`t 1` BEFORE INSERT ON src.x" + body
    assert retarget_trigger(create, "src", "new db", "utf8mb4") == (
        b"CREATE DEFINER=`root`@`%` TRIGGER `new db`.`t 1` BEFORE INSERT ON `new db`.x" + body
    )
    ansi = b'CREATE DEFINER="root"@"%" TRIGGER "src" . t AFTER DELETE ON "other".x' + body
    assert retarget_trigger(ansi, "src", 'n"b', "utf8mb4") == (
        b'CREATE DEFINER="root"@"%" TRIGGER "n""b" . t AFTER DELETE ON "other".x' + body
    )
    plain = b"CREATE TRIGGER t AFTER UPDATE ON src.x" + body
    assert retarget_trigger(plain, "src", "dst", "utf8mb4") == (
        b"CREATE TRIGGER t AFTER UPDATE ON dst.x" + body
    )
    assert retarget_trigger(plain, "src", "src", "utf8mb4") == plain
    unqualified = b"CREATE TRIGGER t AFTER UPDATE ON srcx" + body
    assert retarget_trigger(unqualified, "src", "dst", "utf8mb4") == unqualified


def test_retarget_view_renames_the_own_database_of_function_calls_and_columns():
    create = (
        b"VIEW `v` AS select `s`.`f`(`t`.`x`) AS `a`,`o`.`g`(1),`s`.`t`.`c`,`o`.`t`.`c`,"
        b"'`s`.' AS `s` from `t`"
    )
    assert retarget_view(create, "s", "n\\`x", "utf8mb4") == (
        b"VIEW `v` AS select `n\\``x`.`f`(`t`.`x`) AS `a`,`o`.`g`(1),`n\\``x`.`t`.`c`,"
        b"`o`.`t`.`c`,'`s`.' AS `s` from `t`"
    )
    assert retarget_view(create, "s", "s", "utf8mb4") == create
