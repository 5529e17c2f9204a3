"""SQL review rules: a table of statements and the rules they trip, per dialect."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from golive.domain.sql import GENERIC, MYSQL, POSTGRESQL, SQLITE, split_statements
from golive.domain.sql_review import (
    RULES,
    Finding,
    message,
    review_item,
    review_statement,
    statement_kind,
)

UPDATE, DELETE = "update-without-where", "delete-without-where"
DROP_TABLE, DROP_DATABASE, TRUNCATE = "drop-table", "drop-database", "truncate"
DROP_COLUMN, RENAME, GRANT, MIXED = "alter-drop-column", "rename", "grant", "ddl-dml-mixed"

MYSQL_PROCEDURE = """\
CREATE DEFINER=`root`@`localhost` PROCEDURE purge_logs(IN days INT)
BEGIN
  DECLARE done INT DEFAULT 0;
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = 1;
  purge: LOOP
    DELETE FROM logs WHERE created < NOW() - INTERVAL days DAY LIMIT 1000;
    IF ROW_COUNT() = 0 THEN LEAVE purge; END IF;
  END LOOP purge;
  UPDATE stats SET n = CASE WHEN n > 0 THEN n - 1 ELSE 0 END WHERE id = 1;
END"""

CASES = [
    # (statement, dialect, expected rule ids)
    # UPDATE
    ("UPDATE orders SET status = 'done'", GENERIC, [UPDATE]),
    ("update orders set status = 'done' where id = 1", GENERIC, []),
    ("UpDaTe orders SeT status = 'done' WhErE id = 1", MYSQL, []),
    ("update orders set status = 'done'", SQLITE, [UPDATE]),
    ("UPDATE orders SET note = 'where id = 1'", MYSQL, [UPDATE]),
    ("UPDATE orders SET note = 'x' -- WHERE id = 1", POSTGRESQL, [UPDATE]),
    ("UPDATE orders SET note = 'x' /* WHERE id = 1 */", SQLITE, [UPDATE]),
    ("UPDATE orders SET note = 'x' # WHERE id = 1", MYSQL, [UPDATE]),
    ("UPDATE t SET a = (SELECT b FROM u WHERE u.id = 1)", MYSQL, [UPDATE]),
    ("UPDATE t SET a = (SELECT b FROM u WHERE u.id = t.id) WHERE t.a IS NULL", MYSQL, []),
    ("UPDATE t SET where_clause = 'x'", GENERIC, [UPDATE]),
    ("UPDATE t SET a = u.where", MYSQL, [UPDATE]),
    ('UPDATE "where" SET a = 1', POSTGRESQL, [UPDATE]),
    ("UPDATE orders o JOIN customers c ON c.id = o.customer_id SET o.vip = 1 "
     "WHERE c.tier = 'gold'", MYSQL, []),
    ("UPDATE orders o JOIN customers c ON c.id = o.customer_id SET o.vip = 1", MYSQL, [UPDATE]),
    ("UPDATE accounts SET balance = 0 FROM closed WHERE closed.id = accounts.id", POSTGRESQL,
     []),
    ("UPDATE OR IGNORE orders SET a = 1", SQLITE, [UPDATE]),
    ("INSERT INTO t (a) VALUES (1) ON DUPLICATE KEY UPDATE a = 2", MYSQL, []),
    ("INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET a = 2", POSTGRESQL, []),
    ("SELECT * FROM orders FOR UPDATE", MYSQL, []),
    # DELETE
    ("DELETE FROM orders", GENERIC, [DELETE]),
    ("delete from orders where id = 3", GENERIC, []),
    ("Delete From orders", SQLITE, [DELETE]),
    ("DELETE FROM orders -- WHERE id = 1", MYSQL, [DELETE]),
    ("DELETE FROM orders WHERE id IN (SELECT id FROM old WHERE x = 1)", POSTGRESQL, []),
    ("DELETE FROM orders WHERE id IN (SELECT id FROM old)", MYSQL, []),
    ("DELETE FROM orders WHERE (id = 1)", MYSQL, []),
    ("DELETE FROM orders ORDER BY id LIMIT 100", MYSQL, [DELETE]),
    ("DELETE t1 FROM t1 JOIN t2 ON t1.id = t2.id WHERE t2.gone = 1", MYSQL, []),
    ("DELETE t1 FROM t1 JOIN t2 ON t1.id = t2.id", MYSQL, [DELETE]),
    ("DELETE FROM t1 USING t1 JOIN t2 ON t1.id = t2.id WHERE t2.x = 1", MYSQL, []),
    ("DELETE FROM `order` WHERE `where` = 1", MYSQL, []),
    ("DELETE FROM ONLY orders", POSTGRESQL, [DELETE]),
    ("WITH old AS (SELECT id FROM t WHERE created < now()) DELETE FROM t", POSTGRESQL,
     [DELETE]),
    ("WITH old AS (SELECT id FROM t) DELETE FROM t WHERE id IN (SELECT id FROM old)",
     POSTGRESQL, []),
    ("with gone as (delete from t returning *) select count(*) from gone", POSTGRESQL,
     [DELETE]),
    ("SELECT 'DELETE FROM orders; DROP TABLE orders'", GENERIC, []),
    # DROP TABLE / DATABASE / SCHEMA
    ("DROP TABLE orders", GENERIC, [DROP_TABLE]),
    ("DROP TABLE IF EXISTS orders, order_items", MYSQL, [DROP_TABLE]),
    ("drop table if exists `orders`", MYSQL, [DROP_TABLE]),
    ("Drop Table orders Cascade", POSTGRESQL, [DROP_TABLE]),
    ("DROP TEMPORARY TABLE tmp_orders", MYSQL, []),
    ("DROP DATABASE shop", MYSQL, [DROP_DATABASE]),
    ("drop schema if exists shop", MYSQL, [DROP_DATABASE]),
    ("DROP SCHEMA reporting CASCADE", POSTGRESQL, [DROP_DATABASE]),
    ("DROP INDEX idx_a ON t", MYSQL, []),
    ("DROP VIEW v", GENERIC, []),
    ('SELECT "drop" FROM t', POSTGRESQL, []),
    ("-- DROP TABLE orders\nSELECT 1", GENERIC, []),
    ("/*!40101 DROP TABLE orders */", MYSQL, [DROP_TABLE]),
    ("/*!40101 DROP TABLE orders */", POSTGRESQL, []),
    # TRUNCATE
    ("TRUNCATE TABLE orders", GENERIC, [TRUNCATE]),
    ("truncate orders", MYSQL, [TRUNCATE]),
    ("TRUNCATE ONLY a, b RESTART IDENTITY", POSTGRESQL, [TRUNCATE]),
    ("SELECT TRUNCATE(price, 2) FROM t", MYSQL, []),
    ("SELECT 1 -- TRUNCATE orders", POSTGRESQL, []),
    # ALTER TABLE ... DROP COLUMN
    ("ALTER TABLE orders DROP COLUMN note", GENERIC, [DROP_COLUMN]),
    ("alter table orders drop note", MYSQL, [DROP_COLUMN]),
    ("ALTER TABLE orders DROP INDEX idx_note", MYSQL, []),
    ("ALTER TABLE orders DROP KEY idx_note", MYSQL, []),
    ("ALTER TABLE orders DROP PRIMARY KEY", MYSQL, []),
    ("ALTER TABLE orders DROP FOREIGN KEY fk_customer", MYSQL, []),
    ("ALTER TABLE orders DROP CONSTRAINT chk_total", POSTGRESQL, []),
    ("ALTER TABLE orders ADD COLUMN x INT, DROP COLUMN note", MYSQL, [DROP_COLUMN]),
    ("ALTER TABLE orders DROP FOREIGN KEY fk, DROP INDEX i", MYSQL, []),
    ("ALTER TABLE orders ALTER COLUMN note DROP DEFAULT", POSTGRESQL, []),
    ("ALTER TABLE orders ALTER COLUMN note DROP NOT NULL", POSTGRESQL, []),
    ('ALTER TABLE orders DROP COLUMN IF EXISTS "drop"', POSTGRESQL, [DROP_COLUMN]),
    ("ALTER TABLE orders ADD COLUMN dropped_at TIMESTAMP", MYSQL, []),
    ("ALTER TABLE orders ADD COLUMN note VARCHAR(20) DEFAULT 'DROP COLUMN x'", MYSQL, []),
    ("ALTER TABLE orders DROP COLUMN note", SQLITE, [DROP_COLUMN]),
    # RENAME
    ("RENAME TABLE orders TO orders_old", MYSQL, [RENAME]),
    ("ALTER TABLE orders RENAME TO orders_old", GENERIC, [RENAME]),
    ("alter table orders rename orders_old", MYSQL, [RENAME]),
    ("ALTER TABLE orders RENAME COLUMN note TO remark", SQLITE, [RENAME]),
    ("ALTER TABLE orders RENAME note TO remark", POSTGRESQL, [RENAME]),
    ("ALTER TABLE orders RENAME INDEX a TO b", MYSQL, []),
    ("ALTER TABLE orders CHANGE note remark TEXT", MYSQL, [RENAME]),
    ("ALTER TABLE orders CHANGE note note TEXT", MYSQL, []),
    ("ALTER TABLE orders DROP COLUMN a, RENAME TO orders_old", MYSQL, [DROP_COLUMN, RENAME]),
    ("SELECT renamed FROM t", GENERIC, []),
    # GRANT
    ("GRANT SELECT ON shop.* TO 'app'@'%'", MYSQL, [GRANT]),
    ("grant all privileges on database shop to app", POSTGRESQL, [GRANT]),
    ("SELECT 'GRANT ALL' AS g", GENERIC, []),
    # routine bodies: MySQL DELIMITER blocks, PostgreSQL DO and $$ bodies
    (MYSQL_PROCEDURE, MYSQL, []),
    (MYSQL_PROCEDURE.replace("UPDATE stats", "DELETE FROM archive;\n  UPDATE stats"), MYSQL,
     [DELETE]),
    ("CREATE PROCEDURE p(IN x INT)\nBEGIN\n  IF x > 0 THEN\n    DELETE FROM t;\n  ELSE\n"
     "    UPDATE t SET a = 1 WHERE b = x;\n  END IF;\nEND", MYSQL, [DELETE]),
    ("CREATE PROCEDURE p() DELETE FROM t", MYSQL, [DELETE]),
    ("CREATE TRIGGER trg BEFORE DELETE ON t FOR EACH ROW INSERT INTO log VALUES (OLD.id)",
     MYSQL, []),
    ("CREATE TRIGGER trg AFTER INSERT ON t FOR EACH ROW UPDATE counts SET n = n + 1", MYSQL,
     [UPDATE]),
    ("CREATE TRIGGER trg AFTER DELETE ON t BEGIN DELETE FROM u WHERE u.t_id = OLD.id; END",
     SQLITE, []),
    ("CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY DO TRUNCATE TABLE scratch", MYSQL,
     [TRUNCATE]),
    ("DO $$ BEGIN DELETE FROM t; END $$", POSTGRESQL, [DELETE]),
    ("DO $$ BEGIN DELETE FROM t WHERE id = 1; END $$", POSTGRESQL, []),
    ("CREATE FUNCTION f() RETURNS trigger AS $fn$ BEGIN UPDATE t SET a = 1 WHERE id = NEW.id;"
     " RETURN NEW; END $fn$ LANGUAGE plpgsql", POSTGRESQL, []),
    ("CREATE FUNCTION f() RETURNS void AS $fn$ BEGIN UPDATE t SET a = 1; END $fn$ "
     "LANGUAGE plpgsql", POSTGRESQL, [UPDATE]),
    ("SELECT $$DELETE FROM t$$", POSTGRESQL, []),
]


def ids(findings: list[Finding]) -> list[str]:
    return sorted(f.rule for f in findings)


@pytest.mark.parametrize(("statement", "dialect", "expected"), CASES,
                         ids=[f"{n}-{c[1]}" for n, c in enumerate(CASES)])
def test_review_statement(statement: str, dialect: str, expected: list[str]) -> None:
    findings = review_statement(statement, dialect)
    assert ids(findings) == sorted(expected)
    assert all(f.statement == 0 and f.severity == "refuse" for f in findings)


@pytest.mark.parametrize(("statement", "dialect", "expected"), CASES,
                         ids=[f"{n}-{c[1]}" for n, c in enumerate(CASES)])
def test_comments_and_whitespace_change_nothing(statement: str, dialect: str,
                                               expected: list[str]) -> None:
    noisy = ("/* DELETE FROM x; DROP TABLE x */\n  " + statement.replace(" ", "\t ")
             + "\n-- WHERE 1 = 1; DROP DATABASE x")
    assert ids(review_statement(noisy, dialect)) == sorted(expected)


def test_every_rule_is_covered_by_the_tables() -> None:
    covered = {rule for _, _, expected in CASES for rule in expected}
    covered |= {rule for _, _, expected in ITEM_CASES for rule, _ in expected}
    assert covered == {rule.id for rule in RULES}


def test_rules_are_unique_and_well_formed() -> None:
    assert len({rule.id for rule in RULES}) == len(RULES)
    for rule in RULES:
        assert rule.severity == ("warn" if rule.id == MIXED else "refuse")
        assert rule.message_en.isascii() and rule.message_en
        assert re.search(r"[\u4e00-\u9fff]", rule.message_zh), rule.id


def test_procedure_from_a_delimiter_script_is_one_statement() -> None:
    script = f"DELIMITER $$\n{MYSQL_PROCEDURE}$$\nDELIMITER ;\nDELETE FROM t WHERE id = 1;\n"
    statements = split_statements(script, MYSQL)
    assert len(statements) == 2
    assert [(f.rule, f.statement) for f in review_item(statements, MYSQL)] == [(MIXED, 1)]
    bad = script.replace("LIMIT 1000;", "LIMIT 1000;\n    DELETE FROM logs;")
    assert [(f.rule, f.statement) for f in review_item(split_statements(bad, MYSQL), MYSQL)] \
        == [(DELETE, 0), (MIXED, 1)]


ITEM_CASES = [
    # (statements, dialect, expected (rule, statement index))
    (["CREATE TABLE t (a INT)", "INSERT INTO t VALUES (1)"], MYSQL, [(MIXED, 1)]),
    (["UPDATE t SET a = 1 WHERE b = 2", "ALTER TABLE t ADD COLUMN c INT"], POSTGRESQL,
     [(MIXED, 1)]),
    (["CREATE TABLE t (a INT)", "CREATE INDEX i ON t (a)"], MYSQL, []),
    (["INSERT INTO t VALUES (1)", "REPLACE INTO t VALUES (2)", "SELECT 1"], MYSQL, []),
    (["SELECT 1", "DELETE FROM t", "DROP TABLE u", "GRANT SELECT ON t TO app"], GENERIC,
     [(DELETE, 1), (DROP_TABLE, 2), (GRANT, 3), (MIXED, 2)]),
    (["TRUNCATE t", "INSERT INTO t SELECT * FROM u"], MYSQL, [(TRUNCATE, 0), (MIXED, 1)]),
    (["create table t (a int)", "-- seed\ninsert into t values (1)"], SQLITE, [(MIXED, 1)]),
    (["CREATE TABLE t (a INT)", "SELECT 'INSERT INTO t VALUES (1)'"], MYSQL, []),
    (["CREATE TABLE t (a INT)", "WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x"],
     POSTGRESQL, [(MIXED, 1)]),
    ([], GENERIC, []),
]


@pytest.mark.parametrize(("statements", "dialect", "expected"), ITEM_CASES)
def test_review_item(statements: list[str], dialect: str,
                     expected: list[tuple[str, int]]) -> None:
    assert [(f.rule, f.statement) for f in review_item(statements, dialect)] == expected


@pytest.mark.parametrize(("statement", "kind"), [
    ("CREATE TABLE t (a INT)", "ddl"), ("COMMENT ON TABLE t IS 'x'", "ddl"),
    ("insert into t values (1)", "dml"), ("MERGE INTO t USING u ON (t.id = u.id) "
                                          "WHEN MATCHED THEN DELETE", "dml"),
    ("SELECT 1", None), ("SELECT REPLACE(a, 'x', 'y') FROM t", None), ("SET NAMES utf8", None),
    (MYSQL_PROCEDURE, "ddl"), ("-- only a comment", None),
])
def test_statement_kind(statement: str, kind: str | None) -> None:
    assert statement_kind(statement, MYSQL) == kind


def test_update_message_in_both_languages() -> None:
    [finding] = review_statement("UPDATE orders SET paid = 1")
    assert message(finding, "en") == (
        "UPDATE without WHERE changes every row of orders; add a WHERE, or have an owner or "
        "releaser approve the order's SQL")
    assert message(finding, "zh_CN") == (
        "不带 WHERE 的 UPDATE 会修改 orders 的所有行；"
        "请加上 WHERE，或请项目负责人/发布人审批本单的 SQL")


@pytest.mark.parametrize(("statement", "dialect", "rule", "names"), [
    ("UPDATE shop.orders SET paid = 1", MYSQL, UPDATE, ["shop.orders"]),
    ("DELETE FROM `order_items`", MYSQL, DELETE, ["order_items"]),
    ("DELETE LOW_PRIORITY FROM order_items", MYSQL, DELETE, ["order_items"]),
    ("DELETE t1 FROM t1 JOIN t2 ON t1.id = t2.id", MYSQL, DELETE, ["t1"]),
    ('DROP TABLE IF EXISTS "orders", archive', POSTGRESQL, DROP_TABLE, ["orders, archive"]),
    ("TRUNCATE TABLE orders", MYSQL, TRUNCATE, ["orders"]),
    ("truncate payments", MYSQL, TRUNCATE, ["payments"]),
    ("DROP SCHEMA shop", MYSQL, DROP_DATABASE, ["SCHEMA", "shop"]),
    ("ALTER TABLE orders DROP COLUMN note", MYSQL, DROP_COLUMN, ["orders", "note"]),
    ("RENAME TABLE orders TO orders_old", MYSQL, RENAME, ["orders → orders_old"]),
    ("ALTER TABLE orders RENAME COLUMN note TO remark", POSTGRESQL, RENAME,
     ["orders.note → remark"]),
    ("GRANT SELECT ON shop.* TO 'app'@'%'", MYSQL, GRANT, ["'app'@'%'"]),
])
def test_messages_name_what_they_are_about(statement: str, dialect: str, rule: str,
                                           names: list[str]) -> None:
    [finding] = review_statement(statement, dialect)
    assert finding.rule == rule
    for language in ("en", "zh_CN"):
        text = message(finding, language)
        assert all(name in text for name in names), text
        assert "{" not in text and "?" not in text
    assert re.search(r"[\u4e00-\u9fff]", finding.message_zh)


def test_every_finding_of_the_tables_is_filled_in() -> None:
    for statement, dialect, _ in CASES:
        for finding in review_statement(statement, dialect):
            assert "{" not in finding.message_en + finding.message_zh
            assert re.search(r"[\u4e00-\u9fff]", finding.message_zh)


def test_mixed_message_counts_from_one() -> None:
    [finding] = review_item(["CREATE TABLE t (a INT)", "INSERT INTO t VALUES (1)"])
    assert "statement 1" in message(finding, "en") and "statement 2" in message(finding, "en")
    assert "第 1 条" in message(finding, "zh_CN") and "第 2 条" in message(finding, "zh_CN")


def test_unknown_language_is_refused() -> None:
    [finding] = review_statement("DELETE FROM t")
    with pytest.raises(ValueError, match="en, zh_CN"):
        message(finding, "fr")


SQLISH = st.lists(st.sampled_from([
    "UPDATE", "DELETE", "FROM", "WHERE", "DROP", "TABLE", "DATABASE", "TRUNCATE", "ALTER",
    "RENAME", "TO", "GRANT", "WITH", "AS", "CREATE", "PROCEDURE", "TRIGGER", "FOR", "EACH",
    "ROW", "BEGIN", "END", "IF", "THEN", "ELSE", "DO", "DECLARE", "HANDLER", "COLUMN", "ONLY",
    "t", "x", "(", ")", ",", ".", ";", ":", "*", "'s'", '"q"', "`b`", "$$", "--", "\n", "#",
    "/*", "*/", "/*!", "<", ">", "DELIMITER", "=", "@",
]), max_size=30).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(SQLISH, st.text(max_size=60)),
       dialect=st.sampled_from([GENERIC, MYSQL, POSTGRESQL, SQLITE]))
def test_any_text_is_reviewed_without_error(text: str, dialect: str) -> None:
    for finding in review_item([text, text], dialect):
        assert finding.rule in {rule.id for rule in RULES}
        assert "{" not in finding.message_en + finding.message_zh
