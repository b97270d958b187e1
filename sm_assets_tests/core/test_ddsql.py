"""DDSQL-style tag queries against the demo organization's data, and timestamps in UTC.

Each query is written the way Datadog's DDSQL documents tags (``tags->'team'``, ``akeys``, ``avals``, ``=`` on
whole tag sets) and runs twice: unchanged through ``sm-assets query``'s reader, and with the one documented
substitution (`ddsql.to_duckdb`) through a plain DuckDB connection to the file. The expected rows come from
the seeded organization's ground truth, in plain Python.
"""

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from sm_assets.cli.query import query_rows
from sm_assets.core.collection import AccountSnapshot, RawItem, collect_accounts
from sm_assets.core.config import Settings
from sm_assets.core.ddsql import to_duckdb
from sm_assets.demo.seed import DemoOrg, JobDefinitionTruth, ScheduleTruth
from sm_assets_tests.helpers import clean_env, lake_with

MQ = "aws.sagemaker_model_quality_job_definition"
SCHEDULES = "aws.sagemaker_monitoring_schedule"


@pytest.fixture(scope="module")
def demo(org: DemoOrg, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The demo organization collected (every active account, the denied one included) into a lake and its
    DuckDB file, as a refresh leaves them; less the account whose ListTags is denied (its tags are NULL:
    unknown, which test_assets checks), so every expectation here reads a tag set that was read."""
    data = tmp_path_factory.mktemp("ddsql-demo")
    settings = Settings.build(data_dir=data, regions=org.regions, role_name=org.role_name)
    accounts = [a for a in org.active_account_ids if a not in org.tags_denied_account_ids]
    snapshots = collect_accounts(accounts, settings, processes=1)
    return lake_with(data, list(snapshots.values()), regions=org.regions)


def tags_read(org: DemoOrg) -> set[str]:
    return set(org.collectible_account_ids) - set(org.tags_denied_account_ids)


def definitions(org: DemoOrg) -> list[JobDefinitionTruth]:
    collectible = tags_read(org)
    return [d for t in org.resources.values() if t.account_id in collectible for d in t.job_definitions]


def schedules(org: DemoOrg) -> list[ScheduleTruth]:
    collectible = tags_read(org)
    return [s for t in org.resources.values() if t.account_id in collectible for s in t.schedules]


def in_key_order(tags: dict[str, str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    keys = tuple(sorted(tags))
    return keys, tuple(tags[k] for k in keys)


AWKWARD_VALUE = 'ml,platform:42="shared"'  # the seed's tag value with DDSQL's separators in it

# name -> (the query as DDSQL writes it, the expected rows as a multiset, from the ground truth)
CASES: dict[str, tuple[str, Callable[[DemoOrg], Counter[tuple[Any, ...]]]]] = {
    "value_or_null": (
        f"SELECT _key, tags->'team' FROM {MQ}",
        lambda org: Counter((d.arn, d.tags.get("team")) for d in definitions(org)),
    ),
    "filter_on_value": (
        f"SELECT _key FROM {MQ} WHERE tags->'team' = 'fraud'",
        lambda org: Counter((d.arn,) for d in definitions(org) if d.tags.get("team") == "fraud"),
    ),
    "absent_key": (
        f"SELECT _key FROM {MQ} WHERE tags->'team' IS NULL",
        lambda org: Counter((d.arn,) for d in definitions(org) if "team" not in d.tags),
    ),
    "value_in_list": (
        f"SELECT _key, tags->'team' FROM {MQ} WHERE tags->'team' IN ('fraud', 'risk')",
        lambda org: Counter(
            (d.arn, d.tags["team"]) for d in definitions(org) if d.tags.get("team") in ("fraud", "risk")
        ),
    ),
    "group_by_value": (
        f"SELECT tags->'team' AS team, count(*) FROM {MQ} GROUP BY tags->'team'",
        lambda org: Counter(Counter(d.tags.get("team") for d in definitions(org)).items()),
    ),
    "value_with_separators": (
        f"SELECT _key, tags->'owner:email' FROM {MQ} WHERE tags->'cost-center' = '{AWKWARD_VALUE}'",
        lambda org: Counter(
            (d.arn, d.tags["owner:email"]) for d in definitions(org) if d.tags.get("cost-center") == AWKWARD_VALUE
        ),
    ),
    "keys_and_values": (
        f"SELECT _key, akeys(tags), avals(tags) FROM {MQ}",
        lambda org: Counter((d.arn, *in_key_order(d.tags)) for d in definitions(org)),
    ),
    "key_exists": (
        f"SELECT _key FROM {MQ} WHERE 'owner:email' = ANY(akeys(tags))",
        lambda org: Counter((d.arn,) for d in definitions(org) if "owner:email" in d.tags),
    ),
    "every_key": (
        f"SELECT DISTINCT unnest(akeys(tags)) FROM {MQ}",
        lambda org: Counter((k,) for k in {k for d in definitions(org) for k in d.tags}),
    ),
    "keys_as_text": (
        f"SELECT _key, array_to_string(akeys(tags), ',') FROM {MQ}",
        lambda org: Counter((d.arn, ",".join(sorted(d.tags))) for d in definitions(org)),
    ),
    "equal_tag_sets": (
        f"SELECT a._key, b._key FROM {MQ} a JOIN {MQ} b ON a.tags = b.tags AND a._key < b._key",
        lambda org: Counter(
            (a.arn, b.arn) for a in definitions(org) for b in definitions(org) if a.tags == b.tags and a.arn < b.arn
        ),
    ),
    "tag_set_literal": (
        f"SELECT _key FROM {MQ} WHERE tags = hstore(ARRAY['team', 'env'], ARRAY['fraud', 'prod'])",
        lambda org: Counter((d.arn,) for d in definitions(org) if d.tags == {"env": "prod", "team": "fraud"}),
    ),
    "schedule_tags": (
        f"SELECT monitoring_schedule_arn, monitoring_type FROM {SCHEDULES} WHERE tags->'team' = 'fraud'",
        lambda org: Counter((s.arn, s.monitoring_type) for s in schedules(org) if s.tags.get("team") == "fraud"),
    ),
}


def as_multiset(rows: list[tuple[Any, ...]]) -> Counter[tuple[Any, ...]]:
    return Counter(tuple(tuple(v) if isinstance(v, list) else v for v in row) for row in rows)


@pytest.mark.parametrize("case", CASES)
def test_ddsql_query_unchanged_through_sm_assets_query(demo: Settings, org: DemoOrg, case: str) -> None:
    sql, truth = CASES[case]
    expected = truth(org)
    assert expected, f"{case}: the demo data must exercise the query"
    _, rows = query_rows(demo, sql)
    assert as_multiset(rows) == expected


@pytest.mark.parametrize("case", CASES)
def test_ddsql_query_with_the_substitution_in_plain_duckdb(demo: Settings, org: DemoOrg, case: str) -> None:
    """Any DuckDB client: the file opened read-only, no sm-assets code on the connection."""
    sql, truth = CASES[case]
    with duckdb.connect(str(demo.duckdb_path), read_only=True) as conn:
        rows = conn.execute(to_duckdb(sql)).fetchall()
    assert as_multiset(rows) == truth(org)


def test_why_the_substitution_exists(demo: Settings) -> None:
    """DuckDB's `->` is its JSON operator and binds looser than `=`: DDSQL's form fails or quotes the value."""
    with duckdb.connect(str(demo.duckdb_path), read_only=True) as conn:
        with pytest.raises(duckdb.BinderException):
            conn.execute(f"SELECT _key FROM {MQ} WHERE tags->'team' = 'fraud'")
        (quoted,) = conn.execute(f"SELECT tags->'team' FROM {MQ} WHERE tags['team'] = 'fraud' LIMIT 1").fetchone()
    assert quoted == '"fraud"'


@pytest.mark.parametrize(
    ("ddsql", "duckdb_sql"),
    [
        ("SELECT tags->'team' FROM t", "SELECT tags['team'] FROM t"),
        ("SELECT t.tags -> 'a''b', \"Tags\"->'x' FROM t", "SELECT t.tags['a''b'], \"Tags\"['x'] FROM t"),
        ("WHERE tags->'team'='fraud' AND tags->'env' IS NULL", "WHERE tags['team']='fraud' AND tags['env'] IS NULL"),
        # left alone: string literals, comments, other columns' JSON operators, ->> and lambdas
        ("SELECT 'tags->''k''' -- tags->'c'\n", "SELECT 'tags->''k''' -- tags->'c'\n"),
        ("SELECT /* tags->'c' */ network_config->'VpcConfig'", "SELECT /* tags->'c' */ network_config->'VpcConfig'"),
        ("SELECT tags->>'team', list_transform(l, tags -> 1)", "SELECT tags->>'team', list_transform(l, tags -> 1)"),
        ("SELEC ((", "SELEC (("),
    ],
)
def test_to_duckdb_substitutes_only_tag_lookups(ddsql: str, duckdb_sql: str) -> None:
    assert to_duckdb(ddsql) == duckdb_sql


ACCOUNT = "111122223333"
CREATED = "2026-01-02T03:04:05.123000+00:00"


def crafted_definition(name: str, tags: list[dict[str, str]]) -> RawItem:
    arn = f"arn:aws:sagemaker:us-east-1:{ACCOUNT}:model-quality-job-definition/{name}"
    body = {"JobDefinitionArn": arn, "JobDefinitionName": name, "CreationTime": CREATED, "RoleArn": "r"}
    return RawItem("model_quality_job_definition", "us-east-1", arn, name, body, tags)


def test_equal_tag_sets_compare_equal_whatever_order_aws_listed_them(tmp_path: Path) -> None:
    forward = [{"Key": "team", "Value": "fraud"}, {"Key": "env", "Value": "prod"}]
    items = [
        crafted_definition("forward", forward),
        crafted_definition("backward", forward[::-1]),
        crafted_definition("other", [{"Key": "team", "Value": "fraud"}]),
    ]
    snap = AccountSnapshot(ACCOUNT, datetime(2026, 11, 20, 6, 30, tzinfo=UTC), ("us-east-1",), items=items)
    settings = lake_with(tmp_path, [snap])
    pairs = query_rows(
        settings,
        f"SELECT a.job_definition_name, b.job_definition_name FROM {MQ} a JOIN {MQ} b "
        "ON a.tags = b.tags AND a.job_definition_name < b.job_definition_name",
    )[1]
    assert pairs == [("backward", "forward")]
    _, keys = query_rows(settings, f"SELECT job_definition_name, akeys(tags) FROM {MQ} ORDER BY 1")
    assert keys == [("backward", ["env", "team"]), ("forward", ["env", "team"]), ("other", ["team"])]


@pytest.mark.parametrize("client_tz", ["America/Los_Angeles", "Asia/Kolkata"])
def test_sm_assets_query_shows_timestamps_in_utc_whatever_the_client_time_zone(tmp_path: Path, client_tz: str) -> None:
    collected = datetime(2026, 11, 20, 23, 30, tzinfo=UTC)  # another calendar day in Kolkata
    snap = AccountSnapshot(ACCOUNT, collected, ("us-east-1",), items=[crafted_definition("d", [])])
    settings = lake_with(tmp_path, [snap])
    env = clean_env({"SM_ASSETS_DATA_DIR": str(settings.data_dir), "TZ": client_tz})
    sql = f"SELECT creation_time, collected_at, tags->'team' AS team FROM {MQ}_history"
    result = subprocess.run(
        [sys.executable, "-m", "sm_assets.cli", "query", sql], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    header, _, row, count = result.stdout.splitlines()
    assert header.split() == ["creation_time", "collected_at", "team"]
    assert row.split() == [CREATED, collected.isoformat(), "NULL"] and count == "(1 rows)"
    # The same client time zone without the reader's setting shows local times: the test can tell.
    probe = (
        "import duckdb; print(duckdb.connect().execute(\"SELECT TIMESTAMPTZ '2026-01-02 03:04:05+00'\").fetchone()[0])"
    )
    local = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=60)
    assert local.returncode == 0 and "+00:00" not in local.stdout, local.stdout + local.stderr
    assert os.environ.get("TZ") != client_tz  # this process's zone was never touched
