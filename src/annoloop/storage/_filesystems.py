"""fsspec filesystems, cached per protocol and options, and the mapping of their errors."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from annoloop.errors import AccessDenied, AnnoloopError, InvalidInput, MissingDependency, NotFound

S3_ENDPOINT_ENV = "ANNOLOOP_S3_ENDPOINT_URL"

# Protocols with a fixed meaning here; any other protocol fsspec knows is passed through.
READ_ONLY_PROTOCOLS = frozenset({"http", "https"})

_CACHE: dict[tuple[int, str, str], Any] = {}
_LOCK = threading.Lock()

# The package a protocol needs, and the annoloop extra that installs it.
_NEEDS: dict[str, tuple[str, str]] = {
    "s3": ("s3fs", "s3"),
    "s3a": ("s3fs", "s3"),
    "http": ("aiohttp", "s3"),
    "https": ("aiohttp", "s3"),
}


def known_protocol(protocol: str) -> bool:
    """Whether fsspec has an implementation registered for ``protocol``."""
    from fsspec.registry import known_implementations, registry

    return protocol in known_implementations or protocol in registry


def _options_for(protocol: str, options: dict[str, Any]) -> dict[str, Any]:
    opts = dict(options)
    if protocol in ("s3", "s3a"):
        client_kwargs = opts.get("client_kwargs") or {}
        endpoint = os.environ.get(S3_ENDPOINT_ENV)
        if endpoint and "endpoint_url" not in opts and "endpoint_url" not in client_kwargs:
            opts["endpoint_url"] = endpoint
        # Listings are cached per process by default; several workers write to one bucket.
        opts.setdefault("use_listings_cache", False)
    return opts


def filesystem(protocol: str, options: tuple[tuple[str, Any], ...] = ()) -> Any:
    """The fsspec filesystem for ``protocol`` with ``options``, created once and cached.

    For ``s3`` the endpoint comes from ``ANNOLOOP_S3_ENDPOINT_URL`` unless the options name one;
    credentials come from the options or the usual ``AWS_*`` variables (botocore reads them).
    """
    opts = _options_for(protocol, dict(options))
    # The pid: a forked worker must not reuse its parent's connections (s3fs, http sessions).
    key = (os.getpid(), protocol, repr(sorted(opts.items())))
    with _LOCK:
        fs = _CACHE.get(key)
        if fs is None:
            import fsspec

            try:
                fs = fsspec.filesystem(protocol, **opts)
            except ImportError as exc:
                module, extra = _NEEDS.get(protocol, (exc.name or protocol, protocol))
                raise MissingDependency(module, extra) from exc
            _CACHE[key] = fs
    return fs


@contextmanager
def translate_errors(url: str, action: str) -> Iterator[None]:
    """Turn the OS / fsspec errors of ``action`` on ``url`` into annoloop errors naming it."""
    try:
        yield
    except AnnoloopError:
        raise
    except FileNotFoundError:
        raise NotFound(f"{url} does not exist (while trying to {action})") from None
    except IsADirectoryError:
        raise InvalidInput(f"is a folder, not a file (while trying to {action})", url) from None
    except NotADirectoryError:
        raise InvalidInput(
            f"a parent of this path is a file, not a folder (while trying to {action})", url
        ) from None
    except PermissionError as exc:
        raise AccessDenied(f"not allowed to {action} {url}: {exc}") from None
