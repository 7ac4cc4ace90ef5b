"""The Script API (LOST's, so that its users feel at home).

::

    from annoloop.pipeline import Script

    class RequestAll(Script):
        '''Request annotations for every image of the datasources.'''

        ARGUMENTS = {"priority": {"value": 0.0, "help": "priority of the new work items"}}
        ENVS = ["default"]          # Dask worker resources the script needs (any of them)
        RESOURCES = []              # ["lock_all"]: nothing else runs beside it; ["gpu"]

        def main(self):
            for ds in self.inp.datasources:
                self.outp.request_annos(ds.image_ids(), priority=self.get_arg("priority"))
            self.logger.info("requested %d images", self.outp.n_requests)

A script instance runs on the executor with its real inputs (``self.inp``: datasources, the
annotations of the tasks before it, ``to_df()``), buffers its outputs (``self.outp``: work
items broadcast to every connected annotation task, proposals, annotations, visual outputs and
data exports) and writes them in one transaction when ``main`` returns, together with its
element's new state, keyed by its job: a retried or duplicated run never writes twice.
"""

from __future__ import annotations

import ast
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from annoloop.errors import InvalidInput

if TYPE_CHECKING:
    from annoloop.pipeline.inout import Input, Output
    from annoloop.pipeline.messages import ScriptJobRequest
    from annoloop.store import Project

_MISSING = object()
PATH_CONTEXTS = ("instance", "pipe", "static")
# Progress is written to the store at most this often (the executor gets every report).
PROGRESS_EVERY_S = 1.0


@dataclass
class ScriptContext:
    """Everything a running script instance needs: the store, its request, its log, its
    progress sink. Built by the job runner (:mod:`annoloop.pipeline.runner`)."""

    project: Project
    request: ScriptJobRequest
    logger: logging.Logger
    on_progress: Any = None  # callable(done, total, message)
    broken: bool = False
    rejected: bool = False
    _labels: dict[str, int] | None = field(default=None, repr=False)

    def label_map(self) -> dict[str, int]:
        """Active label name -> id (loaded once per run)."""
        if self._labels is None:
            frame = self.project.labels()
            self._labels = dict(zip(frame["name"].tolist(), frame["id"].tolist(), strict=True))
        return self._labels

    def forget_labels(self) -> None:
        self._labels = None


def _arg_value(value: Any) -> Any:
    """LOST's ``{"value": ..., "help": ...}`` form or a plain value -> the value."""
    if isinstance(value, dict) and "value" in value and set(value) <= {"value", "help", "type"}:
        return value["value"]
    return value


class Script:
    """Base class of pipeline scripts: subclass it and write ``main(self)``.

    Class attributes: ``ARGUMENTS`` (name -> default, or LOST's ``{"value":, "help":}``),
    ``ENVS`` (worker environments, any of which will do) and ``RESOURCES`` (``"lock_all"``,
    ``"gpu"``). Module-level ``ARGUMENTS`` / ``ENVS`` / ``RESOURCES`` (LOST's style) work too.
    """

    ARGUMENTS: ClassVar[dict[str, Any]] = {}
    ENVS: ClassVar[list[str]] = []
    RESOURCES: ClassVar[list[str]] = []

    def __init__(self, context: ScriptContext | None = None) -> None:
        if context is None:
            raise InvalidInput(
                f"{type(self).__name__} is a pipeline script: it runs inside a pipe "
                "(annoloop pipe start / annoloop pipe debug PIPE ELEMENT), not on its own",
                type(self).__module__,
            )
        from annoloop.pipeline.inout import Input, Output

        self._ctx = context
        self._inp = Input(context)
        self._outp = Output(context)
        self._last_progress_write = 0.0
        self._module_arguments: dict[str, Any] = {}

    # -- what subclasses write ----------------------------------------------------------
    def main(self) -> None:
        """The script's work. Read ``self.inp``, write through ``self.outp``."""
        raise NotImplementedError(f"{type(self).__name__} must implement main(self)")

    # -- inputs and outputs -------------------------------------------------------------
    @property
    def inp(self) -> Input:
        """What flows in: datasources, the annotation tasks before this script, their
        annotations (``img_annos``, ``twod_annos``, ``to_df()``, ``to_vec()``)."""
        return self._inp

    @property
    def outp(self) -> Output:
        """What flows out: ``request_annos`` to every connected annotation task, annotations,
        visual outputs and data exports. Written when ``main`` returns."""
        return self._outp

    @property
    def project(self) -> Project:
        """The store (read freely; write through ``outp`` so that writes stay idempotent)."""
        return self._ctx.project

    @property
    def logger(self) -> logging.Logger:
        """A logger writing to the pipe's log (``annoloop pipe logs``)."""
        return self._ctx.logger

    @property
    def iteration(self) -> int:
        """How many times a loop has restarted this element (0 on the first run)."""
        return self._ctx.request.iteration

    @property
    def pipe_name(self) -> str:
        return self._ctx.request.pipe_name

    @property
    def element_id(self) -> str:
        return self._ctx.request.element

    # -- arguments ----------------------------------------------------------------------
    def arguments(self) -> dict[str, Any]:
        """Every argument: the script's defaults overridden by the template's values."""
        merged = {k: _arg_value(v) for k, v in self._module_arguments.items()}
        merged.update({k: _arg_value(v) for k, v in type(self).ARGUMENTS.items()})
        merged.update({k: _arg_value(v) for k, v in self._ctx.request.arguments.items()})
        return merged

    def get_arg(self, name: str, default: Any = _MISSING) -> Any:
        """The value of argument ``name`` (the template's, else the script's default)."""
        values = self.arguments()
        if name in values:
            return values[name]
        if default is not _MISSING:
            return default
        known = ", ".join(sorted(values)) or "none"
        raise InvalidInput(
            f"unknown argument {name!r} (arguments: {known})",
            f"script {self._ctx.request.script!r} of element {self.element_id!r}",
        )

    # -- files --------------------------------------------------------------------------
    def get_location(self, name: str = "", context: str = "instance") -> Any:
        """The Location of ``name`` in a context: ``instance`` (this element's folder),
        ``pipe`` (shared by the whole pipe) or ``static`` (the pipeline project's files,
        read-only by convention). ``name`` cannot escape the folder."""
        from annoloop.storage import Location

        req = self._ctx.request
        roots = {"instance": req.instance_path, "pipe": req.pipe_path, "static": req.files}
        if context not in roots:
            raise InvalidInput(
                f"unknown context {context!r} (use {', '.join(PATH_CONTEXTS)})", "get_path"
            )
        root = roots[context]
        if root is None:
            raise InvalidInput("this pipe has no pipeline project files", "get_path static")
        base = Location.parse(root)
        return base.join(name) if name else base

    def get_path(self, name: str = "", context: str = "instance") -> str:
        """Like :meth:`get_location`, as a string: the OS path for local storage (folders
        are made), else the URL."""
        loc = self.get_location(name, context)
        local = loc.local_path()
        if local is None:
            return str(loc)
        folder = local if not name else local.parent
        if context != "static":
            folder.mkdir(parents=True, exist_ok=True)
        return str(local)

    def get_fs(self, name: str | None = None) -> Any:
        """The fsspec filesystem of the pipe's folders (LOST's ``get_fs``)."""
        return self.get_location("", "pipe").fs

    get_filesystem = get_fs

    # -- control ------------------------------------------------------------------------
    def progress(self, done: int, total: int | None = None, message: str = "") -> None:
        """Report progress (shown by ``pipe status``). Raises TaskCancelled when the pipe was
        stopped, which ends the script."""
        if self._ctx.on_progress is not None:
            self._ctx.on_progress(done, total, message)

    def update_progress(self, value: float) -> None:
        """LOST's form: progress in percent (0..100)."""
        self.progress(round(float(value)), 100, "")

    def break_loop(self) -> None:
        """End the loop this script runs in after the current iteration."""
        if self._ctx.request.loop is None:
            self.logger.warning("break_loop() was called, but this script is not in a loop")
        self._ctx.broken = True

    def loop_is_broken(self) -> bool:
        """Whether this script asked to break its loop in this run."""
        return self._ctx.broken

    def reject_execution(self) -> None:
        """Give this run back: nothing it produced is written, and the element runs again
        later (for scripts that wait for a condition)."""
        self._ctx.rejected = True

    def __repr__(self) -> str:
        req = self._ctx.request
        name = type(self).__name__
        return f"<{name} pipe={req.pipe_name!r} element={req.element!r} iteration={req.iteration}>"


# -- reading what a script declares, without running it -----------------------------------------


@dataclass(frozen=True)
class ScriptInfo:
    """What a script declares: its class name, ENVS, RESOURCES, ARGUMENTS and docstring."""

    class_name: str | None
    envs: list[str]
    resources: list[str]
    arguments: dict[str, Any]
    doc: str = ""

    @property
    def lock_all(self) -> bool:
        return "lock_all" in self.resources

    @property
    def gpu(self) -> bool:
        return "gpu" in self.resources or "GPU" in self.resources


def _literal(node: ast.AST, name: str, where: str) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError):
        raise InvalidInput(f"{name} must be a literal (list, dict, str, number)", where) from None


def _assignments(body: list[ast.stmt], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for stmt in body:
        targets: list[ast.expr] = []
        value: ast.AST | None = None
        if isinstance(stmt, ast.Assign):
            targets, value = stmt.targets, stmt.value
        elif isinstance(stmt, ast.AnnAssign) and stmt.value is not None:
            targets, value = [stmt.target], stmt.value
        for target in targets:
            if isinstance(target, ast.Name) and target.id in ("ENVS", "RESOURCES", "ARGUMENTS"):
                out[target.id] = _literal(value, target.id, f"{where} line {stmt.lineno}")  # type: ignore[arg-type]
    return out


def _is_script_base(node: ast.expr) -> bool:
    text = ast.unparse(node)
    return text.split(".")[-1] in ("Script",)


def script_info(source: str, where: str, class_name: str | None = None) -> ScriptInfo:
    """Read ENVS / RESOURCES / ARGUMENTS of a script from its source (no code runs).

    Class attributes win over module-level ones. The script class is ``class_name`` or the
    one class deriving from ``Script``; InvalidInput names the file and line of a problem.
    """
    try:
        tree = ast.parse(source, filename=where)
    except SyntaxError as exc:
        raise InvalidInput(f"syntax error: {exc.msg}", f"{where} line {exc.lineno}") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise InvalidInput(f"cannot be parsed: {exc}", where) from None
    module = _assignments(tree.body, where)
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    chosen: ast.ClassDef | None = None
    if class_name is not None:
        chosen = next((c for c in classes if c.name == class_name), None)
        if chosen is None:
            raise InvalidInput(f"defines no class {class_name!r}", where)
    else:
        candidates = [c for c in classes if any(_is_script_base(b) for b in c.bases)]
        if len(candidates) > 1:
            names = ", ".join(c.name for c in candidates)
            raise InvalidInput(
                f"defines several Script classes ({names}); name one: {where.rsplit('/', 1)[-1]}:"
                f"{candidates[0].name}",
                where,
            )
        chosen = candidates[0] if candidates else None
    declared = dict(module)
    if chosen is not None:
        declared.update(_assignments(chosen.body, where))
    envs = declared.get("ENVS", [])
    resources = declared.get("RESOURCES", [])
    arguments = declared.get("ARGUMENTS", {})
    if isinstance(envs, str):
        envs = [envs]
    if not isinstance(envs, (list, tuple)) or not all(isinstance(e, str) for e in envs):
        raise InvalidInput("ENVS must be a list of names", where)
    if not isinstance(resources, (list, tuple)) or not all(isinstance(r, str) for r in resources):
        raise InvalidInput("RESOURCES must be a list of names", where)
    unknown = [r for r in resources if r not in ("lock_all", "gpu", "GPU")]
    if unknown:
        raise InvalidInput(f"unknown RESOURCES {unknown} (known: lock_all, gpu)", where)
    if not isinstance(arguments, dict):
        raise InvalidInput("ARGUMENTS must be a dict of name -> default", where)
    doc = ast.get_docstring(chosen) if chosen is not None else ast.get_docstring(tree)
    return ScriptInfo(
        class_name=chosen.name if chosen is not None else None,
        envs=[str(e) for e in envs],
        resources=[str(r) for r in resources],
        arguments=dict(arguments),
        doc=doc or "",
    )


class ProgressThrottle:
    """Send every report on, persist one per :data:`PROGRESS_EVERY_S` (and the last one)."""

    def __init__(self, forward: Any, persist: Any, every: float = PROGRESS_EVERY_S) -> None:
        self.forward = forward
        self.persist = persist
        self.every = every
        self._last = 0.0
        self.pending: tuple[int, int | None, str] | None = None

    def __call__(self, done: int, total: int | None = None, message: str = "") -> None:
        report = (int(done), None if total is None else int(total), str(message))
        if self.forward is not None:
            self.forward(*report)
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            self.pending = None
            self.persist(*report)
        else:
            self.pending = report

    def flush(self) -> None:
        if self.pending is not None:
            report, self.pending = self.pending, None
            self.persist(*report)
