"""Pipelines of elements, as in LOST: data comes in, scripts propose or process, humans
annotate, scripts train or export, loops repeat.

Templates (:mod:`.template`) are validated YAML/JSON graphs; a *pipe* is a running instance
whose element states, iterations, logs and results live in the store (:mod:`.tables`), driven
by :class:`~annoloop.pipeline.engine.PipeEngine` (step-wise) or :func:`run_pipe` (blocking).
Scripts subclass :class:`Script` (LOST's API). Service functions for the CLI and the server
are in :mod:`.service`; the human side before the server exists in :mod:`.humans`.

Names are imported lazily so that ``import annoloop.pipeline`` stays cheap.
"""

from __future__ import annotations

from annoloop.lazy import lazy_exports

_EXPORTS = {
    "Script": "annoloop.pipeline.script",
    "ScriptContext": "annoloop.pipeline.script",
    "Template": "annoloop.pipeline.template",
    "load_template": "annoloop.pipeline.template",
    "parse_template": "annoloop.pipeline.template",
    "PipeEngine": "annoloop.pipeline.engine",
    "run_pipe": "annoloop.pipeline.engine",
    "submit_from_file": "annoloop.pipeline.humans",
    "item_proposals": "annoloop.pipeline.humans",
    "import_pipeline": "annoloop.pipeline.service",
    "start_pipe": "annoloop.pipeline.service",
    "pipe_status": "annoloop.pipeline.service",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
