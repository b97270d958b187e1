"""The collector sharded over worker processes, against the demo org on a fake AWS *server* (an
in-process moto mock would be invisible to the workers)."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sm_assets.core.collection import AccountSnapshot, collect_accounts
from sm_assets.core.config import Settings
from sm_assets.demo.seed import DemoOrg

REGIONS = ("us-east-1", "eu-west-1")


@pytest.fixture(scope="module")
def served_org() -> Iterator[tuple[str, DemoOrg]]:
    from sm_assets.cli.demo import patched_env
    from sm_assets.demo.fake_aws import fake_aws_server
    from sm_assets.demo.seed import seed_demo_org

    # Module scope outlives monkeypatch (and runs before conftest's autouse fixture): save and restore by hand.
    fake = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    with fake_aws_server() as endpoint, patched_env({**fake, "AWS_ENDPOINT_URL": endpoint}):
        yield endpoint, seed_demo_org(endpoint, regions=REGIONS, accounts=8, seed=5)


@pytest.fixture
def endpoint(served_org: tuple[str, DemoOrg], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ENDPOINT_URL", served_org[0])  # the workers inherit the environment
    return served_org[0]


def summary(snap: AccountSnapshot) -> tuple:
    items = sorted((i.resource_type, i.region, i.arn, str(i.describe), str(i.tags)) for i in snap.items)
    statuses = sorted((s.region, s.resource_type, s.status, s.error_code, s.item_count) for s in snap.statuses)
    return items, statuses


def test_worker_processes_collect_exactly_what_threads_do(
    endpoint: str, served_org: tuple[str, DemoOrg], tmp_path: Path
) -> None:
    org = served_org[1]
    settings = Settings.build(data_dir=tmp_path, regions=REGIONS, role_name=org.role_name)
    accounts = org.active_account_ids
    assert len(accounts) >= 8  # enough for two workers (4 accounts each at least)
    done: list[str] = []
    sharded = collect_accounts(accounts, settings, processes=2, on_done=lambda s: done.append(s.account_id))
    threaded = collect_accounts(accounts, settings, processes=1)
    assert sorted(done) == sorted(accounts)  # progress for every account, once
    assert list(sharded) == accounts  # in the caller's order
    for account_id in accounts:
        assert summary(sharded[account_id]) == summary(threaded[account_id]), account_id
    expected = org.expected_definition_arns()
    for account_id, arns in expected.items():
        got = {i.arn for i in sharded[account_id].items_of("model_quality_job_definition")}
        assert got == set(arns)
    for denied in org.denied_account_ids:
        assert {s.status for s in sharded[denied].statuses} == {"access_denied"}


def test_a_dying_worker_costs_only_its_unfinished_accounts(
    endpoint: str, served_org: tuple[str, DemoOrg], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = served_org[1]
    accounts = org.active_account_ids
    victim = accounts[0]  # shard 0 (accounts[0::2]) dies on it
    # The worker imports sitecustomize at start: make its collector exit hard on the victim account.
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(
        "import os\n"
        "import sm_assets.core.collection as c\n"
        "_real = c.collect_account\n"
        "def _dying(account_id, *a, **k):\n"
        f"    if account_id == {victim!r}:\n"
        "        os._exit(3)\n"
        "    return _real(account_id, *a, **k)\n"
        "c.collect_account = _dying\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(hook))
    settings = Settings.build(data_dir=tmp_path / "data", regions=REGIONS, role_name=org.role_name)
    result = collect_accounts(accounts, settings, processes=2)
    assert list(result) == accounts
    victim_statuses = result[victim].statuses
    assert victim_statuses and {s.status for s in victim_statuses} == {"error"}
    assert {s.error_code for s in victim_statuses} == {"CollectorWorkerFailed"}
    assert "exited with code 3" in (victim_statuses[0].message or "")
    other_shard = accounts[1::2]
    expected = org.expected_definition_arns()
    for account_id in other_shard:  # the healthy worker's accounts are all there, complete
        assert all(s.status != "error" for s in result[account_id].statuses), account_id
        if account_id in expected:
            got = {i.arn for i in result[account_id].items_of("model_quality_job_definition")}
            assert got == set(expected[account_id])


def test_auto_means_one_worker_per_core_and_small_runs_stay_in_process(tmp_path: Path) -> None:
    from sm_assets.core.config import ConfigError, usable_cpus

    auto = Settings.from_env({"SM_ASSETS_DATA_DIR": str(tmp_path)}).collect_processes
    assert auto == min(8, usable_cpus()) and 1 <= auto <= len(os.sched_getaffinity(0))
    # A container's CPU limit (cgroup v2 quota) caps it: 150000/100000 -> 2 CPUs, "max" -> no cap.
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("150000 100000\n")
    assert usable_cpus(cpu_max) == min(2, len(os.sched_getaffinity(0)))
    cpu_max.write_text("max 100000\n")
    assert usable_cpus(cpu_max) == len(os.sched_getaffinity(0))
    assert usable_cpus(tmp_path / "absent") == len(os.sched_getaffinity(0))
    assert Settings.build(data_dir=tmp_path, regions=REGIONS, role_name="r").collect_processes == 1
    with pytest.raises(ConfigError, match="SM_ASSETS_COLLECT_PROCESSES 'many' is not a number"):
        Settings.from_env({"SM_ASSETS_DATA_DIR": str(tmp_path), "SM_ASSETS_COLLECT_PROCESSES": "many"})
    with pytest.raises(ConfigError, match="must lie in"):
        Settings.from_env({"SM_ASSETS_DATA_DIR": str(tmp_path), "SM_ASSETS_COLLECT_PROCESSES": "0"})


def _hook(tmp_path: Path, body: str) -> Path:
    """A sitecustomize for the worker processes (they import it at start)."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(body)
    return hook


def _live_workers() -> list[int]:
    """This process's own live collector workers (the machine may run other people's at the same time)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
        if b"sm_assets.core.collect_worker" in cmdline and int(ppid) == os.getpid() and state != "Z":
            found.append(int(pid))
    return found


def test_workers_that_die_before_reading_a_large_job_cost_only_their_accounts(
    endpoint: str, served_org: tuple[str, DemoOrg], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A job bigger than a pipe buffer (previous describes) sent to a worker that is already gone."""
    org = served_org[1]
    accounts = org.active_account_ids
    monkeypatch.setenv("PYTHONPATH", str(_hook(tmp_path, "import os\nos._exit(7)\n")))
    big = {a: {f"arn:{i}": {"pad": "x" * 1000} for i in range(300)} for a in accounts}  # ~300 KB each
    settings = Settings.build(data_dir=tmp_path / "data", regions=REGIONS, role_name=org.role_name)
    result = collect_accounts(accounts, settings, processes=2, previous=big)
    assert list(result) == accounts
    for account_id in accounts:
        statuses = result[account_id].statuses
        assert {(s.status, s.error_code) for s in statuses} == {("error", "CollectorWorkerFailed")}
        message = statuses[0].message or ""
        assert "did not take its job" in message or "exited with code 7" in message, message


def test_a_failing_caller_stops_the_workers_at_once(
    endpoint: str, served_org: tuple[str, DemoOrg], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the caller fails (or is interrupted) mid-collection, no worker keeps calling AWS."""
    import time

    org = served_org[1]
    accounts = org.active_account_ids
    first = accounts[0]
    slow = (
        "import time\n"
        "import sm_assets.core.collection as c\n"
        "_real = c.collect_account\n"
        "def _slow(account_id, *a, **k):\n"
        f"    if account_id != {first!r}:\n"
        "        time.sleep(60)\n"
        "    return _real(account_id, *a, **k)\n"
        "c.collect_account = _slow\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(_hook(tmp_path, slow)))
    settings = Settings.build(data_dir=tmp_path / "data", regions=REGIONS, role_name=org.role_name)

    def fail(snap: AccountSnapshot) -> None:
        raise RuntimeError(f"caller failed on {snap.account_id}")

    started = time.monotonic()
    with pytest.raises(RuntimeError, match=f"caller failed on {first}"):
        collect_accounts(accounts, settings, processes=2, on_done=fail)
    assert time.monotonic() - started < 30  # not the 60 s the other accounts would take
    assert _live_workers() == []


def test_prestarted_workers_serve_only_a_collection_under_their_environment(
    endpoint: str, served_org: tuple[str, DemoOrg], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`prestart` starts workers while the caller starts up and the next collection takes them, unless the
    environment changed since (another endpoint or identity): then they are stopped and new ones started."""
    from sm_assets.core import process_shards

    spawned: list = []
    real_spawn = process_shards._spawn

    def counting_spawn(env: dict[str, str]):
        spawned.append(real_spawn(env))
        return spawned[-1]

    monkeypatch.setattr(process_shards, "_spawn", counting_spawn)
    org = served_org[1]
    settings = Settings.build(data_dir=tmp_path, regions=REGIONS, role_name=org.role_name)
    accounts = org.active_account_ids
    process_shards.prestart(2)
    assert len(spawned) == 2
    first = collect_accounts(accounts, settings, processes=2)
    assert len(spawned) == 2  # the prestarted two did the work
    assert {i.resource_type for a in accounts for i in first[a].items} >= {"model_quality_job_definition"}
    process_shards.prestart(2)
    stale = spawned[2:]
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint + "/")  # the same server, but another environment
    second = collect_accounts(accounts, settings, processes=2)
    assert len(spawned) == 6 and all(proc.poll() is not None for proc in stale)
    for account_id in accounts:
        assert summary(second[account_id]) == summary(first[account_id]), account_id
