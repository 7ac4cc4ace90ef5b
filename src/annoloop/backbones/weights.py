"""Reading model weights from a location without unpickling arbitrary objects.

``.safetensors`` files go through safetensors; anything else through
``torch.load(weights_only=True)``, which refuses every global outside an allow-list (here:
the numpy scalar and dtype types that PySpacer's checkpoints carry).
"""

from __future__ import annotations

import io
import warnings
from typing import Any

from annoloop.errors import InvalidInput
from annoloop.storage import Location


def _numpy_safe_globals() -> list[Any]:
    import codecs

    import numpy as np

    found: list[Any] = [np.dtype, codecs.encode]
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        found += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType")]
    core = getattr(np, "_core", None) or getattr(np, "core", None)
    scalar = getattr(getattr(core, "multiarray", None), "scalar", None)
    if scalar is not None:
        found.append(scalar)
    return found


def load_state_dict(location: Location | str, *, key: str | None = None) -> dict[str, Any]:
    """A ``{name: tensor}`` state dict from a weights file at ``location``.

    ``key`` picks a nested dict (PySpacer stores ``{"net": state_dict}``); when it is None,
    a checkpoint holding exactly one of ``net``, ``state_dict``, ``model`` is unwrapped.
    """
    import torch

    loc = Location.parse(location)
    data = loc.read_bytes()
    if loc.suffix.lower() == ".safetensors":
        from safetensors.torch import load as load_safetensors

        try:
            state: Any = load_safetensors(data)
        except Exception as exc:  # safetensors raises its own error types
            raise InvalidInput(f"not a valid safetensors file ({exc})", loc.url) from None
    else:
        try:
            with torch.serialization.safe_globals(_numpy_safe_globals()), warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Detected pickle protocol", UserWarning)
                state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as exc:  # UnpicklingError, RuntimeError, EOFError ... on bad files
            raise InvalidInput(
                f"cannot load weights safely ({type(exc).__name__}: {str(exc)[:300]})", loc.url
            ) from None
    if key is not None:
        if not isinstance(state, dict) or key not in state:
            raise InvalidInput(f"the checkpoint has no {key!r} entry", loc.url)
        state = state[key]
    elif isinstance(state, dict):
        wrapped = [k for k in ("net", "state_dict", "model") if isinstance(state.get(k), dict)]
        if len(wrapped) == 1:
            state = state[wrapped[0]]
    if not isinstance(state, dict) or not all(isinstance(k, str) for k in state):
        raise InvalidInput("the file does not hold a state dict of named tensors", loc.url)
    return state


def load_into(module: Any, state: dict[str, Any], where: str, *, strict: bool = True) -> None:
    """``module.load_state_dict(state)`` with mismatches reported as InvalidInput."""
    try:
        result = module.load_state_dict(state, strict=strict)
    except RuntimeError as exc:
        raise InvalidInput(f"weights do not fit the model: {str(exc)[:600]}", where) from None
    missing = getattr(result, "missing_keys", [])
    if strict and missing:  # pragma: no cover - strict loading raises first
        raise InvalidInput(f"weights miss {missing[:5]}", where)
