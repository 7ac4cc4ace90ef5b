"""Dask worker resources: what a worker advertises and what a task needs.

An annoloop worker advertises ``slots=N`` (it runs N tasks at once), ``env-<name>=N`` for each
environment it was started for, and ``GPU=1`` when it has a GPU. A task needs one slot, one
unit of its environment and, if it asks for one, the GPU; a ``lock_all`` task needs every slot
of a worker, so nothing else runs beside it.

Dask resources are consumed while a task runs, so an environment is advertised once per slot
(``env-cv=1`` would let a 4-slot worker run one cv task at a time), whereas ``GPU=1`` keeps GPU
tasks of one worker one after the other. Dask only restricts tasks that name a resource, which
is why every task names ``slots`` once a worker advertises them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from annoloop.errors import InvalidInput, NotFound
from annoloop.execution.spec import ENV_NAME, TaskSpec

SLOTS = "slots"
GPU = "GPU"
ENV_PREFIX = "env-"


def env_resource(env: str) -> str:
    """The resource name of an environment (``"cv"`` -> ``"env-cv"``)."""
    return f"{ENV_PREFIX}{env}"


def worker_resources(envs: Iterable[str] = (), slots: int = 1, gpu: bool = False) -> dict[str, int]:
    """The resources an annoloop worker advertises."""
    if isinstance(slots, bool) or not isinstance(slots, int) or slots < 1:
        raise InvalidInput(f"slots must be an integer >= 1, got {slots!r}", "worker slots")
    resources = {SLOTS: slots}
    for env in envs:
        if not isinstance(env, str) or not re.match(ENV_NAME, env):
            raise InvalidInput(
                f"environment name {env!r} must be 1-64 letters, digits, '_', '.', '+', '-'",
                "worker envs",
            )
        resources[env_resource(env)] = slots  # one per slot: resources are consumed
    if gpu:
        resources[GPU] = 1
    return resources


def _offered(workers: Sequence[Mapping[str, float]]) -> str:
    names = sorted({name for w in workers for name in w})
    return ", ".join(names) if names else "no resources"


def task_resources(spec: TaskSpec, workers: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """The Dask resources ``spec`` needs on a cluster whose workers offer ``workers``.

    The first environment of ``spec.envs`` that some (suitable) worker offers is taken.
    Raises :class:`NotFound` when no worker could ever run the task.
    """
    need: dict[str, float] = {}
    slotted = any(SLOTS in w for w in workers)
    pool = [w for w in workers if SLOTS in w] if slotted else list(workers)
    where = f"task {spec.name!r}"
    if spec.gpu:
        need[GPU] = 1
        pool = [w for w in pool if w.get(GPU, 0) >= 1]
        if not pool:
            raise NotFound(f"{where} needs a GPU but no worker offers one ({_offered(workers)})")
    if spec.envs:
        for env in spec.envs:
            offered = [w for w in pool if w.get(env_resource(env), 0) >= 1]
            if offered:
                need[env_resource(env)] = 1
                pool = offered
                break
        else:
            gpu = " with a GPU" if spec.gpu else ""
            raise NotFound(
                f"{where} can run in the environments {spec.envs} but no worker{gpu} offers "
                f"any of them (the workers offer: {_offered(workers)})"
            )
    if slotted:
        # lock_all takes every slot of the biggest suitable worker (smaller ones cannot take it).
        need[SLOTS] = max(w[SLOTS] for w in pool) if spec.lock_all else 1
    elif spec.lock_all:
        raise NotFound(
            f"{where} asks for lock_all, which needs workers that advertise a 'slots' resource "
            f"(start them with start_worker / annoloop worker); the workers offer: "
            f"{_offered(workers)}"
        )
    return need
