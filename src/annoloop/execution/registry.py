"""``get_executor``: an executor from a short name or a scheduler URL.

- ``"local"``: :class:`LocalExecutor` in-process; ``"local:N"``: a pool of N processes;
- ``"dask"``: :class:`DaskExecutor` on its own ``LocalCluster``; ``"dask:N"``: with N workers;
- ``"tcp://host:port"`` (or ``tls://``, ``ws://``, ``wss://``, ``inproc://``, ``ucx://``): a
  :class:`DaskExecutor` on that scheduler;
- ``"NAME"`` or ``"NAME:ARG"``: a plug-in of the ``annoloop.executors`` entry-point group,
  whose object is a factory called as ``factory(**options)`` or ``factory(ARG, **options)``;
- ``"package.module:Factory"`` / ``"package.module.Factory"``: the same, by dotted path.

The default comes from the environment variable ``ANNOLOOP_EXECUTOR``, else ``"local"``.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from annoloop.errors import InvalidInput, NotFound
from annoloop.execution.base import Executor

EXECUTOR_ENV = "ANNOLOOP_EXECUTOR"
ENTRY_POINT_GROUP = "annoloop.executors"
BUILTIN = ("local", "dask")
_SCHEMES = ("tcp://", "tls://", "ws://", "wss://", "inproc://", "ucx://")


def _count(text: str, name: str) -> int:
    if not text.isdigit():
        raise InvalidInput(f"expected {name}:<integer>, got {name}:{text!r}", "executor name")
    return int(text)


def _plugins() -> dict[str, Any]:
    from importlib.metadata import entry_points  # slow-ish: only when a name needs it

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def list_executors() -> list[str]:
    """The executor names ``get_executor`` knows: built-ins, then plug-ins."""
    plugins = sorted(_plugins())
    return [*BUILTIN, *(p for p in plugins if p not in BUILTIN)]


def _load_dotted(path: str) -> Any:
    module, _, attr = path.partition(":") if ":" in path else path.rpartition(".")
    try:
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise NotFound(f"executor factory {path!r} cannot be loaded: {exc}") from exc
    return obj


def get_executor(name_or_url: str | None = None, **options: Any) -> Executor:
    """An executor for ``name_or_url`` (see the module doc); ``options`` (``on_progress``,
    ``n_workers``, ...) go to its constructor. The caller owns it: shut it down."""
    spec = (name_or_url or os.environ.get(EXECUTOR_ENV) or "local").strip()
    if spec.startswith(_SCHEMES):
        from annoloop.execution.dask_executor import DaskExecutor

        return DaskExecutor(address=spec, **options)
    name, sep, arg = spec.partition(":")
    if name == "local":
        from annoloop.execution.local import LocalExecutor

        return LocalExecutor(_count(arg, name) if sep else 0, **options)
    if name == "dask":
        from annoloop.execution.dask_executor import DaskExecutor

        if sep:
            options["n_workers"] = _count(arg, name)
        return DaskExecutor(**options)
    plugins = _plugins()
    if name in plugins:
        factory = plugins[name].load()
        return factory(arg, **options) if sep else factory(**options)
    if "." in name:
        return _load_dotted(spec)(**options)
    raise NotFound(
        f"unknown executor {spec!r}; known: {', '.join(list_executors())}, 'local:N', 'dask:N' "
        "or a scheduler address such as tcp://host:8786"
    )
