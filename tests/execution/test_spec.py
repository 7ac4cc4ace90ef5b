"""TaskSpec, resource mapping, executor names and in-task helpers (no executor running)."""

from __future__ import annotations

import json
import subprocess
import sys

import pydantic
import pytest

from annoloop.errors import InvalidInput, NotFound
from annoloop.execution import (
    LocalExecutor,
    TaskSpec,
    cancel_requested,
    current_progress,
    get_executor,
    list_executors,
    report_progress,
    start_worker,
    task_resources,
    worker_resources,
)
from annoloop.execution.spec import new_key, spec_for
from annoloop.progress import no_progress
from tests.execution import tasks


def test_task_spec_round_trips_through_json() -> None:
    spec = TaskSpec(name="train detector", envs=["cv", "gpu-env"], lock_all=True, gpu=True,
                    retries=2, key="job-17")  # fmt: skip
    again = TaskSpec.model_validate_json(spec.model_dump_json())
    assert again == spec
    assert json.loads(spec.model_dump_json())["envs"] == ["cv", "gpu-env"]


@pytest.mark.parametrize(
    "fields",
    [
        {"name": ""},
        {"name": "x" * 201},
        {"name": "t", "envs": ["has space"]},
        {"name": "t", "envs": ["a=1"]},
        {"name": "t", "envs": [""]},
        {"name": "t", "envs": ["x" * 65]},
        {"name": "t", "retries": -1},
        {"name": "t", "retries": 1000},
        {"name": "t", "key": ""},
        {"name": "t", "unknown": 1},
        {"name": "t", "gpu": "maybe"},
        {"name": "t", "envs": "cv"},
    ],
)
def test_task_spec_rejects_bad_fields(fields: dict[str, object]) -> None:
    with pytest.raises(pydantic.ValidationError) as info:
        TaskSpec(**fields)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)


def test_task_spec_is_frozen() -> None:
    spec = TaskSpec(name="t")
    with pytest.raises(pydantic.ValidationError):
        spec.name = "u"  # type: ignore[misc]


def test_keys_default_to_the_name_and_are_unique() -> None:
    spec = spec_for(tasks.add, None)
    assert spec.name == "add"
    keys = {new_key(spec) for _ in range(1000)}
    assert len(keys) == 1000
    assert all(k.startswith("add-") for k in keys)
    assert new_key(TaskSpec(name="script count.py / x")).startswith("script-count.py-x-")
    assert new_key(TaskSpec(name="t", key="job-17")) == "job-17"
    assert new_key(TaskSpec(name="///")).startswith("task-")


def test_worker_resources() -> None:
    assert worker_resources() == {"slots": 1}
    assert worker_resources(["cv", "torch"], slots=4, gpu=True) == {
        "slots": 4, "env-cv": 4, "env-torch": 4, "GPU": 1,
    }  # fmt: skip
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(InvalidInput, match="slots"):
            worker_resources(slots=bad)  # type: ignore[arg-type]
    for env in ("a b", "", "x=1", 3):
        with pytest.raises(InvalidInput, match="environment name"):
            worker_resources([env])  # type: ignore[list-item]


CLUSTER = [
    {"slots": 2, "env-cv": 1},
    {"slots": 1},
    {"slots": 4, "env-torch": 1, "GPU": 1},
]


def test_task_resources_pick_the_first_offered_env() -> None:
    assert task_resources(TaskSpec(name="t"), CLUSTER) == {"slots": 1}
    assert task_resources(TaskSpec(name="t", envs=["cv"]), CLUSTER) == {"slots": 1, "env-cv": 1}
    spec = TaskSpec(name="t", envs=["gpu-env", "torch", "cv"])
    assert task_resources(spec, CLUSTER) == {"slots": 1, "env-torch": 1}


def test_task_resources_gpu_narrows_the_envs() -> None:
    spec = TaskSpec(name="t", envs=["cv", "torch"], gpu=True)
    assert task_resources(spec, CLUSTER) == {"GPU": 1, "env-torch": 1, "slots": 1}
    with pytest.raises(NotFound, match="with a GPU"):
        task_resources(TaskSpec(name="t", envs=["cv"], gpu=True), CLUSTER)
    with pytest.raises(NotFound, match="needs a GPU"):
        task_resources(TaskSpec(name="t", gpu=True), CLUSTER[:2])


def test_task_resources_lock_all_takes_every_slot() -> None:
    assert task_resources(TaskSpec(name="t", envs=["cv"], lock_all=True), CLUSTER)["slots"] == 2
    assert task_resources(TaskSpec(name="t", lock_all=True), CLUSTER)["slots"] == 4
    with pytest.raises(NotFound, match="lock_all"):
        task_resources(TaskSpec(name="t", lock_all=True), [{}, {"GPU": 1}])


def test_task_resources_unknown_env_names_them() -> None:
    with pytest.raises(NotFound) as info:
        task_resources(TaskSpec(name="count", envs=["nope", "gone"]), CLUSTER)
    assert "['nope', 'gone']" in str(info.value)
    assert "env-cv" in str(info.value)  # says what the workers do offer
    with pytest.raises(NotFound, match="no resources"):
        task_resources(TaskSpec(name="t", envs=["cv"]), [])


def test_task_resources_without_slots_adds_none() -> None:
    assert task_resources(TaskSpec(name="t"), [{}, {}]) == {}
    assert task_resources(TaskSpec(name="t"), []) == {}
    # Workers that advertise no slots never get a task once some worker does.
    assert task_resources(TaskSpec(name="t"), [{}, {"slots": 1}]) == {"slots": 1}


def test_task_resources_on_a_huge_cluster() -> None:
    workers = [{"slots": 1 + i % 8, f"env-e{i % 500}": 1} for i in range(20_000)]
    spec = TaskSpec(name="t", envs=["missing", "e499"], lock_all=True)
    assert task_resources(spec, workers) == {"env-e499": 1, "slots": 8}


@pytest.mark.parametrize(
    "kwargs", [{"slots": 0}, {"slots": "2"}, {"envs": ["bad env"]}, {"envs": ["ok", "x;rm -rf"]}]
)
def test_start_worker_checks_its_arguments_first(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        start_worker("tcp://127.0.0.1:1", **kwargs)  # type: ignore[arg-type]


def test_worker_command_line_checks_its_arguments() -> None:
    cmd = [sys.executable, "-m", "annoloop.execution.worker", "tcp://127.0.0.1:1", "--env", "a b"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "environment name 'a b'" in out.stderr
    out = subprocess.run([*cmd[:4], "--slots", "many"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "--slots" in out.stderr


def test_in_task_helpers_are_harmless_outside_a_task() -> None:
    report_progress(1, 2, "nobody listens")
    report_progress(1)
    assert current_progress() is no_progress
    assert cancel_requested() is False


def test_get_executor_names() -> None:
    with get_executor("local") as ex:
        assert isinstance(ex, LocalExecutor) and ex.processes == 0
        assert ex.submit(tasks.add, 1, 2).result() == 3
    with get_executor("local:0") as ex:
        assert isinstance(ex, LocalExecutor) and ex.processes == 0
    assert list_executors()[:2] == ["local", "dask"]


def test_get_executor_default_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANNOLOOP_EXECUTOR", "local:0")
    with get_executor() as ex:
        assert isinstance(ex, LocalExecutor)
    monkeypatch.setenv("ANNOLOOP_EXECUTOR", "nonsense")
    with pytest.raises(NotFound, match="nonsense"):
        get_executor()


def test_get_executor_by_dotted_path() -> None:
    seen: list[tuple[object, ...]] = []
    with get_executor(
        "annoloop.execution.local:LocalExecutor", on_progress=lambda *a: seen.append(a)
    ) as ex:
        assert ex.submit(tasks.steps, 3).result() == 3
    assert seen[-1] == (seen[-1][0], 3, 3, "step 3")
    with get_executor("annoloop.execution.LocalExecutor") as ex:
        assert isinstance(ex, LocalExecutor)
    with pytest.raises(NotFound, match="cannot be loaded"):
        get_executor("annoloop.execution.NoSuchThing")
    with pytest.raises(NotFound, match="cannot be loaded"):
        get_executor("no_such_package_xyz.mod:Factory")


@pytest.mark.parametrize("name", ["local:x", "local:-1", "local:", "dask:two", "dask:1.5"])
def test_get_executor_rejects_bad_counts(name: str) -> None:
    with pytest.raises(InvalidInput, match="integer"):
        get_executor(name)


@pytest.mark.parametrize("bad", [-1, True, 1.5, "2", None])
def test_local_executor_rejects_bad_process_counts(bad: object) -> None:
    with pytest.raises(InvalidInput, match="processes"):
        LocalExecutor(bad)  # type: ignore[arg-type]


def test_import_does_not_load_dask() -> None:
    code = (
        "import sys, annoloop.execution;"
        "heavy = ('dask', 'distributed', 'torch', 'asyncio');"
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
