"""Locations: a URL string opened through fsspec, with safe joins and atomic local writes.

``file://`` (the default: a bare path becomes an absolute ``file://`` location), ``memory://``,
``s3://`` (s3fs; endpoint from ``ANNOLOOP_S3_ENDPOINT_URL``) and read-only ``http(s)://``.
Any other protocol fsspec knows (``gcs://``, ``az://``, ...) is passed through unchecked.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import posixpath
import re
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, unquote, urlsplit

from annoloop.errors import AccessDenied, InvalidInput, NotFound
from annoloop.storage._filesystems import (
    READ_ONLY_PROTOCOLS,
    filesystem,
    known_protocol,
    translate_errors,
)
from annoloop.storage._paths import clean_relative

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")
_READ_MODES = frozenset({"r", "rb"})
_WRITE_MODES = frozenset({"w", "wb", "a", "ab"})
# Remote reads fetch this much at a time, so that header reads stay small.
_REMOTE_BLOCK = 1 << 16


def _read_umask() -> int:
    # os.umask can only be read by setting it; done once, at import, before any threads write.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def _freeze(options: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(options.items()))


@dataclass(frozen=True)
class Location:
    """A place in a filesystem, named by a URL; ``str()`` gives the URL.

    Build one with :meth:`parse` (or ``Location(url)``); the URL is normalised on creation
    (``file://`` paths made absolute, ``memory://`` paths rooted, trailing slashes dropped).
    Locations are frozen, hashable and picklable, so they can cross to Dask workers.
    ``storage_options`` go to the fsspec filesystem (``key``, ``secret``, ``endpoint_url``
    ...); they take part in equality but not in the hash or the repr (they may hold secrets).
    """

    url: str
    storage_options: tuple[tuple[str, Any], ...] = field(default=(), hash=False, repr=False)

    def __post_init__(self) -> None:
        protocol, path, url = _normalise(self.url)
        object.__setattr__(self, "url", url)
        object.__setattr__(self, "_protocol", protocol)
        object.__setattr__(self, "_path", path)
        if isinstance(self.storage_options, dict):
            object.__setattr__(self, "storage_options", _freeze(self.storage_options))

    # ----------------------------------------------------------------------------- building
    @classmethod
    def parse(cls, value: str | os.PathLike[str] | Location, **storage_options: Any) -> Location:
        """A location from a URL, a bare path (taken as ``file://``) or another location.

        ``storage_options`` are merged over those the value already carries.
        """
        if isinstance(value, Location):
            if not storage_options:
                return value
            merged = {**dict(value.storage_options), **storage_options}
            return cls(value.url, _freeze(merged))
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str):
            raise InvalidInput(
                f"a location must be a URL string or a path, got {type(value).__name__} {value!r}"
            )
        return cls(value, _freeze(storage_options))

    def _with_path(self, path: str) -> Location:
        """A location on the same filesystem and options at ``path`` (a filesystem path)."""
        if self._protocol in ("http", "https"):
            return Location(path, self.storage_options)
        return Location(f"{self._protocol}://{path}", self.storage_options)

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"Location({self.url!r})"

    # --------------------------------------------------------------------------- properties
    @property
    def protocol(self) -> str:
        """``"file"``, ``"memory"``, ``"s3"``, ``"http"``, ``"https"`` or another fsspec name."""
        return self._protocol  # type: ignore[attr-defined,no-any-return]

    @property
    def path(self) -> str:
        """The path inside the filesystem (an absolute OS path for ``file://``, the URL for
        http(s), ``bucket/key`` for s3)."""
        return self._path  # type: ignore[attr-defined,no-any-return]

    @property
    def fs(self) -> Any:
        """The fsspec filesystem (cached per protocol and storage options)."""
        return filesystem(self._protocol, self.storage_options)

    @property
    def name(self) -> str:
        """The last path component (``""`` for a filesystem root)."""
        if self._protocol in ("http", "https"):
            return posixpath.basename(unquote(urlsplit(self.url).path).rstrip("/"))
        return posixpath.basename(self._path.rstrip("/"))

    @property
    def suffix(self) -> str:
        """The extension of :attr:`name`, with its dot (``".jpg"``), or ``""``."""
        return posixpath.splitext(self.name)[1]

    @property
    def parent(self) -> Location:
        """The enclosing folder; a root (``/``, an s3 bucket, a web site) is its own parent."""
        p = self._protocol
        if p in ("http", "https"):
            parts = urlsplit(self.url)
            folder = posixpath.dirname(parts.path.rstrip("/"))
            if folder in ("", "/") and not parts.path.strip("/"):
                return self
            return Location(f"{parts.scheme}://{parts.netloc}{folder}", self.storage_options)
        if p == "file" or self._path.startswith("/"):
            return self._with_path(posixpath.dirname(self._path) or "/")
        if "/" not in self._path:
            return self
        return self._with_path(self._path.rsplit("/", 1)[0])

    @property
    def writable(self) -> bool:
        """False for read-only protocols (http, https)."""
        return self._protocol not in READ_ONLY_PROTOCOLS

    # ---------------------------------------------------------------------------- joining
    def join(self, *parts: str | os.PathLike[str]) -> Location:
        """The location of ``parts`` under this one, which it can never escape.

        Each part is checked by :func:`~annoloop.storage._paths.clean_relative` (no absolute
        paths, drive letters, URLs, NUL bytes, ``..`` above the root, also percent-encoded);
        on ``file://`` a symbolic link anywhere along the joined path that resolves outside
        this location is refused too. Violations raise :class:`AccessDenied` naming the path.
        Each part is checked on its own (``join("a", "../b")`` is refused), since each part
        is usually a separate value from a user.
        The symlink check is made now: a link planted later is not seen (no TOCTOU guarantee).
        """
        pieces = [clean_relative(part, self.url) for part in parts]
        rel = clean_relative("/".join(p for p in pieces if p), self.url)
        if not rel:
            return self
        p = self._protocol
        if p in ("http", "https"):
            parts_ = urlsplit(self.url)
            if parts_.query or parts_.fragment:
                raise InvalidInput(
                    "cannot join a path onto a URL with a query or fragment", self.url
                )
            joined = self.url.rstrip("/") + "/" + quote(rel, safe="/%")
            return Location(joined, self.storage_options)
        if p == "file":
            target = os.path.join(self._path, rel)
            _check_symlinks(self._path, target, rel)
            return self._with_path(target)
        return self._with_path(self._path.rstrip("/") + "/" + rel)

    def __truediv__(self, part: str) -> Location:
        return self.join(part)

    def relative_to(self, root: Location | str | os.PathLike[str]) -> str:
        """This location's path relative to ``root`` (POSIX separators; ``""`` for ``root``
        itself), or InvalidInput when it is not under ``root``."""
        base = Location.parse(root)
        web = self._protocol in ("http", "https")
        mine = self.url if web else self._path
        theirs = (base.url if web else base._path).rstrip("/")
        if base._protocol != self._protocol or not (
            mine.rstrip("/") == theirs or mine.startswith(theirs + "/")
        ):
            raise InvalidInput(f"{self.url} is not under {base.url}")
        rel = mine[len(theirs) + 1 :]
        return unquote(rel) if web else rel

    # ----------------------------------------------------------------------------- reading
    def read_bytes(self) -> bytes:
        """The whole content; NotFound if missing, InvalidInput if it is a folder."""
        with translate_errors(self.url, "read"):
            if self._protocol == "file":
                return Path(self._path).read_bytes()
            data: bytes = self.fs.cat_file(self._path)
            return data

    def read_text(self, encoding: str = "utf-8") -> str:
        """The whole content decoded; a decoding error is InvalidInput naming the location."""
        data = self.read_bytes()
        try:
            return data.decode(encoding)
        except UnicodeDecodeError as exc:
            raise InvalidInput(
                f"not {encoding} text ({exc.reason} at byte {exc.start})", self.url
            ) from None

    def exists(self) -> bool:
        """Whether a file or folder is there."""
        with translate_errors(self.url, "check"):
            if self._protocol == "file":
                return os.path.exists(self._path)
            if self._protocol in ("http", "https"):
                # fsspec's http exists() sends a GET, which may send the whole body; HEAD it.
                try:
                    self.fs.info(self._path)
                except FileNotFoundError:
                    return False
                return True
            return bool(self.fs.exists(self._path))

    def is_dir(self) -> bool:
        """Whether this is a folder (a prefix holding objects on object stores)."""
        if self._protocol in ("http", "https"):
            return False  # no folders over plain http
        with translate_errors(self.url, "check"):
            if self._protocol == "file":
                return os.path.isdir(self._path)
            return bool(self.fs.isdir(self._path))

    def size(self) -> int:
        """Size in bytes; NotFound if missing, InvalidInput for a folder or an unknown size."""
        with translate_errors(self.url, "get the size of"):
            if self._protocol == "file":
                st = os.stat(self._path)
                if stat.S_ISDIR(st.st_mode):
                    raise InvalidInput("is a folder, not a file", self.url)
                return st.st_size
            info = self.fs.info(self._path)
        if info.get("type") == "directory":
            raise InvalidInput("is a folder, not a file", self.url)
        if info.get("size") is None:
            raise InvalidInput("the server did not report a size", self.url)
        return int(info["size"])

    def list(self, pattern: str = "*", recursive: bool = False) -> list[Location]:
        """Files (not folders) in this folder, sorted by URL, whose name matches ``pattern``.

        ``pattern`` is an fnmatch pattern on the file name, or on the path relative to this
        location when it contains a ``/``. With ``recursive`` sub-folders are searched too.
        A file location lists as itself; a missing one raises NotFound. Not over http(s).
        """
        if self._protocol in ("http", "https"):
            raise InvalidInput("listing is not possible over http(s)", self.url)
        if not self.exists():
            raise NotFound(f"{self.url} does not exist (while trying to list)")
        if not self.is_dir():
            return [self] if fnmatch.fnmatchcase(self.name, pattern) else []
        with translate_errors(self.url, "list"):
            found = self.fs.find(self._path, maxdepth=None if recursive else 1, withdirs=False)
        root = self._path.rstrip("/")
        by_path = "/" in pattern
        out: list[Location] = []
        for path in found:
            # fsspec returns POSIX paths; a local root is already POSIX on this platform.
            rel = path[len(root) + 1 :] if path.startswith(root + "/") else path
            if fnmatch.fnmatchcase(rel if by_path else posixpath.basename(rel), pattern):
                out.append(self._with_path(path))
        out.sort(key=lambda loc: loc.url)
        return out

    def local_path(self) -> Path | None:
        """The OS path of a ``file://`` location, None for any other protocol."""
        return Path(self._path) if self._protocol == "file" else None

    # ----------------------------------------------------------------------------- writing
    def _check_writable(self, action: str) -> None:
        if self._protocol in READ_ONLY_PROTOCOLS:
            raise AccessDenied(f"cannot {action} {self.url}: {self._protocol} is read-only")

    def write_bytes(self, data: bytes | bytearray | memoryview) -> None:
        """Write ``data``, replacing what is there; parent folders are made.

        On ``file://`` the write is atomic: a temporary file in the same folder is filled, then
        renamed over the target, so a reader sees the old or the new content, never a part.
        (Atomic, not durable: there is no fsync.) Object stores write whole objects anyway.
        """
        self._check_writable("write")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidInput(f"write_bytes needs bytes, got {type(data).__name__}", self.url)
        if self._protocol == "file":
            with self.open("wb") as f:
                f.write(data)
            return
        with translate_errors(self.url, "write"):
            if self._protocol == "memory":
                self.fs.makedirs(posixpath.dirname(self._path), exist_ok=True)
            self.fs.pipe_file(self._path, bytes(data))

    def write_text(self, text: str, encoding: str = "utf-8") -> None:
        """Write ``text`` encoded with ``encoding`` (atomic on ``file://``)."""
        if not isinstance(text, str):
            raise InvalidInput(f"write_text needs a str, got {type(text).__name__}", self.url)
        self.write_bytes(text.encode(encoding))

    def open(self, mode: str = "rb", **kwargs: Any) -> IO[Any]:
        """Open for reading or writing; use it as a context manager.

        Modes: ``rb``, ``r``, ``wb``, ``w``, ``ab``, ``a``. Writing (``w``/``wb``) on
        ``file://`` is atomic: the target appears when the ``with`` block ends without an
        error, and nothing is left behind when it ends with one. Extra keyword arguments
        (``encoding``, ``block_size`` ...) go to the file object.
        """
        if mode not in _READ_MODES | _WRITE_MODES:
            raise InvalidInput(f"unsupported open mode {mode!r}", self.url)
        if mode in _WRITE_MODES:
            self._check_writable("write")
        if self._protocol == "file":
            kwargs.pop("block_size", None)
            with translate_errors(self.url, "open"):
                if mode in ("w", "wb"):
                    return _AtomicWriter(self._path, mode, self.url, **kwargs)  # type: ignore[return-value]
                if mode in ("a", "ab"):
                    os.makedirs(os.path.dirname(self._path), exist_ok=True)
                return open(self._path, mode, **kwargs)  # the caller closes it
        if self._protocol != "memory" and mode in _READ_MODES:
            # Reads only: s3fs refuses write blocks under 5 MiB.
            kwargs.setdefault("block_size", _REMOTE_BLOCK)
        with translate_errors(self.url, "open"):
            if mode in ("a", "ab") and self._protocol != "memory":
                raise InvalidInput(f"appending is not possible on {self._protocol}", self.url)
            if mode in _WRITE_MODES and self._protocol == "memory":
                self.fs.makedirs(posixpath.dirname(self._path), exist_ok=True)
            return self.fs.open(self._path, mode, **kwargs)  # type: ignore[no-any-return]

    def delete(self, recursive: bool = False) -> None:
        """Remove the file, or the folder with ``recursive``; NotFound if nothing is there.

        A non-empty folder without ``recursive`` is refused (InvalidInput), and so is the root
        of a local or memory filesystem (AccessDenied). On s3, deleting a bucket location with
        ``recursive`` removes its objects and then the bucket itself.
        """
        self._check_writable("delete")
        if not self.exists():
            raise NotFound(f"{self.url} does not exist (while trying to delete)")
        if self._protocol in ("file", "memory") and self._path.rstrip("/") == "":
            raise AccessDenied(f"refusing to delete the filesystem root {self.url}")
        with translate_errors(self.url, "delete"):
            if self.is_dir():
                if not recursive and self.fs.ls(self._path, detail=False):
                    raise InvalidInput("folder is not empty; pass recursive=True", self.url)
                self.fs.rm(self._path, recursive=True)
            else:
                self.fs.rm_file(self._path)


class _AtomicWriter:
    """A file object that writes to a temporary file and renames it over the target on close.

    Leaving a ``with`` block by an exception discards the temporary file instead.
    """

    def __init__(self, target: str, mode: str, url: str, **kwargs: Any) -> None:
        folder = os.path.dirname(target)
        os.makedirs(folder, exist_ok=True)
        if os.path.isdir(target):
            raise IsADirectoryError(target)
        fd, self._tmp = tempfile.mkstemp(
            # A short prefix: the temporary name must fit where the target's name just fits.
            prefix=f".{os.path.basename(target)[:40]}.",
            suffix=".part",
            dir=folder,
        )
        self._target = target
        self._url = url
        self._done = False
        try:
            self._file = os.fdopen(fd, mode, **kwargs)
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            os.unlink(self._tmp)
            raise

    def __getattr__(self, name: str) -> Any:
        # Only called for names not found normally; guard against a half-built object.
        file = self.__dict__.get("_file")
        if file is None:
            raise AttributeError(name)
        return getattr(file, name)

    def __enter__(self) -> _AtomicWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()

    def __iter__(self) -> Any:
        return iter(self._file)

    def close(self) -> None:
        """Finish the write: the target now holds everything written."""
        if self._done:
            return
        self._done = True
        try:
            self._file.close()
            # mkstemp makes 0600 files; give the result the mode a normal open() would.
            os.chmod(self._tmp, 0o666 & ~_UMASK)
            with translate_errors(self._url, "write"):
                os.replace(self._tmp, self._target)
        except BaseException:
            self._remove_tmp()
            raise

    def discard(self) -> None:
        """Abandon the write: the target is left as it was."""
        if self._done:
            return
        self._done = True
        self._file.close()
        self._remove_tmp()

    def _remove_tmp(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._tmp)

    def __del__(self) -> None:
        # Never commit a write nobody closed: it may be half done.
        if not self.__dict__.get("_done", True):
            self.discard()


def _check_symlinks(root: str, target: str, rel: str) -> None:
    """AccessDenied if a symlink along ``target`` resolves outside ``root``."""
    real_root = os.path.realpath(root)
    real_target = os.path.realpath(target)
    inside = real_root.rstrip("/") + "/"
    if real_target != real_root and not real_target.startswith(inside):
        raise AccessDenied(
            f"path {rel!r} leads through a symbolic link to {real_target}, outside the root "
            f"file://{root}"
        )


def _normalise(value: str) -> tuple[str, str, str]:
    """(protocol, path, canonical url) of a location string, or InvalidInput."""
    if not isinstance(value, str):
        raise InvalidInput(f"a location must be a string, got {type(value).__name__}")
    if not value.strip():
        raise InvalidInput("a location must not be empty")
    if "\x00" in value:
        raise InvalidInput(f"a location must not contain a NUL byte: {value!r}")
    match = _SCHEME.match(value)
    if match is None:
        path = os.path.abspath(os.path.expanduser(value))
        return "file", path, f"file://{path}"
    protocol = match.group(1).lower()
    rest = value[match.end() :]
    if protocol in ("file", "local"):
        if rest.startswith("localhost/"):
            rest = rest[len("localhost") :]
        path = os.path.abspath(rest or "/")
        return "file", path, f"file://{path}"
    if protocol == "memory":
        path = posixpath.normpath("/" + rest.lstrip("/"))
        path = "/" if path in ("/", "//") else path
        return "memory", path, f"memory://{path}"
    if protocol in ("http", "https"):
        parts = urlsplit(value)
        if not parts.netloc:
            raise InvalidInput(f"a {protocol} location needs a host: {value!r}")
        url = f"{protocol}{value[len(protocol) :]}"
        return protocol, url, url
    if not known_protocol(protocol):
        raise InvalidInput(f"unknown storage protocol {protocol!r} in {value!r}")
    path = rest.strip("/")
    if not path:
        raise InvalidInput(f"a {protocol} location needs a bucket or container: {value!r}")
    return protocol, path, f"{protocol}://{path}"


def safe_join(
    root: str | os.PathLike[str] | Location, user_path: str | os.PathLike[str]
) -> Location:
    """``Location.parse(root).join(user_path)``: a path from a user that cannot escape ``root``."""
    return Location.parse(root).join(user_path)
