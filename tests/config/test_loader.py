"""Reading golive.yaml: every problem is one ConfigError naming file, line and field path."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from golive.config.loader import load_file
from golive.config.references import check_references
from golive.errors import ConfigError, InputError


def write(tmp_path: Path, text: str, name: str = "golive.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_error(path: Path, env: dict[str, str] | None = None,
               stored_hosts: set[str] | None = None,
               stored_databases: set[str] | None = None) -> ConfigError:
    """The ConfigError that loading ``path`` (and checking its references) raises."""
    with pytest.raises(ConfigError) as caught:
        loaded = load_file(path, env or {})
        check_references(loaded, stored_hosts or set(), stored_databases or set())
    return caught.value


# --- YAML syntax ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        (
            """\
            hosts:
              - name: a
                transport: local: x
            projects: []
            """,
            3, "YAML syntax error: mapping values are not allowed here",
        ),
        (
            """\
            hosts:
              - name: a
                transport: local
               root: /x
            projects: []
            """,
            4, "YAML syntax error: expected <block end>, but found '<block mapping start>'",
        ),
    ],
)
def test_yaml_syntax_error_names_file_and_line(
    tmp_path: Path, text: str, line: int, problem: str
) -> None:
    path = write(tmp_path, text)
    err = load_error(path)
    assert err.file == str(path)
    assert err.line == line
    assert str(err) == f"{path}:{line}: {problem}"
    assert isinstance(err, InputError) and err.exit_code == 2


def test_a_file_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "- just\n- a list\n")
    assert str(load_error(path)) == (
        f"{path}:1: the file must be a mapping with hosts, databases, projects")


def test_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    assert str(load_error(path)) == f"{path}: file not found"


def test_an_empty_file_is_an_empty_configuration(tmp_path: Path) -> None:
    loaded = load_file(write(tmp_path, "# nothing yet\n"), {})
    assert loaded.config.hosts == [] and loaded.config.projects == []


# --- schema ---------------------------------------------------------------------------------

GOOD_TWO_SERVICES = """\
hosts:
  - name: box-1
    transport: local
    root: /srv/box-1
projects:
  - name: shop
    services:
      - name: api
        repo: /repos/api.git
        stages:
          prod: {path: /srv/api, hosts: [box-1]}
      - name: web
        repo: /repos/web.git
        stages:
          prod:
            path: /srv/web
            hostz: [box-1]
"""


def test_unknown_field_names_its_path_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD_TWO_SERVICES)
    err = load_error(path)
    assert err.line == 17
    assert err.path == "projects[0].services[1].stages.prod.hostz"
    # the misspelt stage also lacks hosts: both problems are listed, the unknown field first
    assert str(err).splitlines()[0] == (
        f"{path}:17: projects[0].services[1].stages.prod.hostz: unknown field")


def test_unknown_top_level_field(tmp_path: Path) -> None:
    path = write(tmp_path, "hosts: []\nprojectz: []\n")
    assert str(load_error(path)) == f"{path}:2: projectz: unknown field"


def test_missing_required_field_names_the_path(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        projects:
          - name: shop
            services:
              - name: api
                main_branch: master
        """)
    err = load_error(path)
    assert err.path == "projects[0].services[0].repo"
    assert str(err) == f"{path}:4: projects[0].services[0].repo: missing field"


def test_every_schema_problem_is_listed_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        hosts:
          - {name: "bad name", transport: local, root: /x}
          - {name: web-1}
          - {name: box-2, transport: local}
          - {name: box-3, transport: local, root: /x, port: 0}
        """)
    err = load_error(path)
    assert str(err).splitlines() == [
        f"{path}:2: hosts[0].name: 'bad name' is not a valid name: use letters, digits, '.', "
        "'_' and '-', start with a letter or digit, at most 63 characters",
        f"{path}:3: hosts[1]: an ssh host needs an address",
        f"{path}:4: hosts[2]: a local host needs a root directory",
        f"{path}:5: hosts[3].port: Input should be greater than or equal to 1",
    ]
    assert err.line == 2 and err.path == "hosts[0].name"


def test_ssh_host_without_address(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        hosts:
          - name: box-1
            transport: local
            root: /x
          - name: web-1
            user: deploy
        """)
    assert str(load_error(path)) == f"{path}:5: hosts[1]: an ssh host needs an address"


@pytest.mark.parametrize(
    ("stage", "problem"),
    [
        ("{path: /p}", "a stage needs hosts or lanes"),
        ("{path: /p, hosts: [a], lanes: {l1: {hosts: [a]}}}",
         "a stage has either hosts or lanes, not both"),
        ("{path: /p, hosts: [a], mode: rsync}", "Input should be 'artifact' or 'checkout'"),
    ],
)
def test_bad_stage(tmp_path: Path, stage: str, problem: str) -> None:
    path = write(tmp_path, f"""\
        projects:
          - name: shop
            services:
              - name: api
                repo: r
                stages:
                  prod: {stage}
        """)
    err = load_error(path)
    assert err.line == 7
    assert problem in str(err)
    assert str(err).startswith(f"{path}:7: projects[0].services[0].stages.prod")


def test_channel_without_webhook(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        projects:
          - name: shop
            notify:
              - {type: email, smtp_host: 127.0.0.1, to: [ops@example.com]}
              - {type: dingtalk, secret: s}
        """)
    assert str(load_error(path)) == (
        f"{path}:5: projects[0].notify[1]: a dingtalk channel needs a webhook URL")


def test_values_the_store_cannot_hold_are_refused_up_front(tmp_path: Path) -> None:
    """Too long or too large: a clear message, not a database error at write time."""
    path = write(tmp_path, f"""\
        hosts:
          - {{name: web-1, address: 127.0.0.1, user: {"u" * 101}}}
        projects:
          - name: shop
            services:
              - name: api
                repo: r
                stages:
                  prod: {{path: /p, hosts: [web-1], batch: 99999999999999999999}}
        """)
    assert str(load_error(path)).splitlines() == [
        f"{path}:2: hosts[0].user: String should have at most 100 characters",
        f"{path}:9: projects[0].services[0].stages.prod.batch: "
        "batch must be between 0 (all at once) and 10000",
    ]


# --- ${VAR} ---------------------------------------------------------------------------------

DB_WITH_VARIABLE = """\
databases:
  - name: shop-test
    url: sqlite:///tmp/shop-test.db
  - name: shop-prod
    url: "mysql+pymysql://deploy:${SHOP_DB_PASSWORD}@127.0.0.1/shop"
"""


def test_unset_variable_names_variable_file_line_and_path(tmp_path: Path) -> None:
    path = write(tmp_path, DB_WITH_VARIABLE)
    err = load_error(path, env={"OTHER": "x"})
    assert err.line == 5 and err.path == "databases[1].url"
    assert str(err) == (
        f"{path}:5: databases[1].url: environment variable SHOP_DB_PASSWORD is not set "
        "(used as ${SHOP_DB_PASSWORD}); set it, or write the value in the file")


def test_variables_are_read_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOP_DB_PASSWORD", "pa55")
    loaded = load_file(write(tmp_path, DB_WITH_VARIABLE))
    assert loaded.config.databases[1].url == "mysql+pymysql://deploy:pa55@127.0.0.1/shop"
    assert loaded.templates == {
        ("databases", 1, "url"): "mysql+pymysql://deploy:${SHOP_DB_PASSWORD}@127.0.0.1/shop"}
    monkeypatch.delenv("SHOP_DB_PASSWORD")
    assert "SHOP_DB_PASSWORD is not set" in str(load_error(tmp_path / "golive.yaml"))


# --- cross references -----------------------------------------------------------------------

PROJECT = """\
hosts:
  - {name: web-1, address: 127.0.0.1}
  - {name: box-1, transport: local, root: /srv/box-1}
databases:
  - {name: shop-prod, url: "sqlite:///tmp/shop.db"}
projects:
  - name: shop
    stages: [test, prod]
    services:
      - name: api
        repo: /repos/api.git
        stages:
          test: {path: /srv/api, lanes: {t1: {hosts: [box-1]}}}
          prod:
            path: /srv/api
            hosts: [web-1, %(host)s]
            job_hosts: [box-1]
            database: %(database)s
      - name: %(service)s
        repo: /repos/web.git
"""


def project(host: str = "box-1", database: str = "shop-prod", service: str = "web") -> str:
    return PROJECT % {"host": host, "database": database, "service": service}


def test_the_reference_example_is_valid(tmp_path: Path) -> None:
    loaded = load_file(write(tmp_path, project()), {})
    check_references(loaded, set(), set())
    stage = loaded.config.projects[0].services[0].stages["prod"]
    assert stage.hosts == ["web-1", "box-1"] and stage.database == "shop-prod"


def test_undefined_host_names_the_host_and_its_path(tmp_path: Path) -> None:
    path = write(tmp_path, project(host="web-9"))
    err = load_error(path)
    assert err.path == "projects[0].services[0].stages.prod.hosts[1]"
    assert str(err) == (
        f"{path}:16: projects[0].services[0].stages.prod.hosts[1]: host 'web-9' is not "
        "defined: add it under hosts")


def test_a_host_defined_in_the_store_may_be_referenced(tmp_path: Path) -> None:
    loaded = load_file(write(tmp_path, project(host="web-9")), {})
    check_references(loaded, {"web-9"}, set())


def test_undefined_host_in_a_lane_and_in_job_hosts(tmp_path: Path) -> None:
    path = write(tmp_path, project().replace("hosts: [box-1]}", "hosts: [ghost]}"))
    err = load_error(path)
    assert str(err) == (f"{path}:13: projects[0].services[0].stages.test.lanes.t1.hosts[0]: "
                        "host 'ghost' is not defined: add it under hosts")
    path = write(tmp_path, project().replace("job_hosts: [box-1]", "job_hosts: [jobs-1]"))
    assert str(load_error(path)) == (
        f"{path}:17: projects[0].services[0].stages.prod.job_hosts[0]: host 'jobs-1' is not "
        "defined: add it under hosts")


def test_a_host_listed_twice_in_a_stage(tmp_path: Path) -> None:
    path = write(tmp_path, project(host="web-1"))
    assert str(load_error(path)) == (
        f"{path}:16: projects[0].services[0].stages.prod.hosts[1]: host 'web-1' is listed twice")


def test_undefined_database(tmp_path: Path) -> None:
    path = write(tmp_path, project(database="shop-main"))
    err = load_error(path)
    assert err.path == "projects[0].services[0].stages.prod.database"
    assert str(err) == (
        f"{path}:18: projects[0].services[0].stages.prod.database: database 'shop-main' is "
        "not defined: add it under databases")
    load_error(path, stored_databases={"shop-prod"})  # still undefined
    check_references(load_file(path, {}), set(), {"shop-main"})


def test_stage_not_in_the_projects_stages(tmp_path: Path) -> None:
    path = write(tmp_path, project().replace("stages: [test, prod]", "stages: [test, staging]"))
    err = load_error(path)
    assert err.path == "projects[0].services[0].stages.prod"
    assert str(err) == (
        f"{path}:14: projects[0].services[0].stages.prod: stage 'prod' is not one of the "
        "project's stages: test, staging")


def test_duplicate_service_names(tmp_path: Path) -> None:
    path = write(tmp_path, project(service="api"))
    assert str(load_error(path)) == (
        f"{path}:19: projects[0].services[1].name: service 'api' is defined twice")


def test_duplicate_host_names(tmp_path: Path) -> None:
    path = write(tmp_path, project().replace("name: box-1", "name: web-1"))
    assert str(load_error(path)) == f"{path}:3: hosts[1].name: host 'web-1' is defined twice"


def test_duplicate_database_and_project_names(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        databases:
          - {name: db, url: "sqlite:///a.db"}
          - {name: db, url: "sqlite:///b.db"}
        """)
    assert str(load_error(path)) == f"{path}:3: databases[1].name: database 'db' is defined twice"
    path = write(tmp_path, "projects:\n  - name: shop\n  - name: shop\n")
    assert str(load_error(path)) == f"{path}:3: projects[1].name: project 'shop' is defined twice"


def test_duplicate_channel_and_member(tmp_path: Path) -> None:
    path = write(tmp_path, """\
        projects:
          - name: shop
            notify:
              - {type: webhook, webhook: "http://127.0.0.1/a"}
              - {type: webhook, name: webhook-1, webhook: "http://127.0.0.1/b"}
        """)
    assert str(load_error(path)) == (
        f"{path}:5: projects[0].notify[1].name: channel 'webhook-1' is defined twice")
    path = write(tmp_path, """\
        projects:
          - name: shop
            members:
              - {user: dev, roles: [developer]}
              - {user: dev, roles: [tester]}
        """)
    assert str(load_error(path)) == (
        f"{path}:5: projects[0].members[1].user: member 'dev' is defined twice")


def test_double_dollar_keeps_a_literal_variable_for_shell_commands(tmp_path: Path) -> None:
    from golive.config.loader import load_text

    text = textwrap.dedent("""\
        projects:
          - name: shop
            services:
              - name: api
                repo: /r.git
                build: "echo $${GOLIVE_COMMIT} ${WHO}"
        """)
    loaded = load_text(text, "golive.yaml", {"WHO": "ci"})
    assert loaded.config.projects[0].services[0].build == "echo ${GOLIVE_COMMIT} ci"


@pytest.mark.parametrize(
    ("batch", "stored", "problem"),
    [("25%", "25%", None), ("3", 3, None), (2, 2, None), ("0%", None, "percentage like 25%"),
     ("101%", None, "percentage like 25%"), ("half", None, "percentage like 25%"),
     (-1, None, "between 0")],
)
def test_batch_is_a_number_or_a_percentage(
    tmp_path: Path, batch: object, stored: object, problem: str | None
) -> None:
    from golive.config.loader import load_text

    text = textwrap.dedent(f"""\
        hosts: [{{name: h, address: 127.0.0.1}}]
        projects:
          - name: shop
            services:
              - name: api
                repo: r
                stages:
                  prod: {{path: /p, hosts: [h], batch: {batch!r}, parallel: 5}}
        """).replace("'", '"')
    if problem is None:
        stage = load_text(text, "golive.yaml").config.projects[0].services[0].stages["prod"]
        assert stage.batch == stored and stage.parallel == 5
    else:
        with pytest.raises(ConfigError, match=problem):
            load_text(text, "golive.yaml")
