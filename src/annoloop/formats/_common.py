"""Helpers every format module shares: safe file names, guarded JSON/XML reading, label indexes."""

from __future__ import annotations

import json
import math
import posixpath
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from annoloop.errors import InvalidInput

# A file larger than this is refused before it is read (override per call).
MAX_FILE_BYTES = 4 * 1024**3

_DRIVE = re.compile(r"^[a-zA-Z]:")


def check_file_name(name: Any, where: str) -> str:
    """Return ``name`` as a clean relative POSIX path, or raise InvalidInput.

    Image file names come from untrusted files: an absolute path, a ``..`` that climbs out of
    the dataset root, a NUL byte or a backslash trick would let an import read or write outside
    the place the user chose.
    """
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"file name must be a non-empty string, got {name!r}", where)
    if "\x00" in name:
        raise InvalidInput(f"file name contains a NUL byte: {name!r}", where)
    text = name.replace("\\", "/")
    if text.startswith("/") or _DRIVE.match(text) or "://" in text:
        raise InvalidInput(f"file name must be relative to the dataset root: {name!r}", where)
    norm = posixpath.normpath(text)
    if norm == ".." or norm.startswith("../") or norm == ".":
        raise InvalidInput(f"file name escapes the dataset root: {name!r}", where)
    return norm


def read_bytes_guarded(path: Any, *, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """Read a whole file (a path or a storage Location) refusing files above ``max_bytes``."""
    from annoloop.storage import Location

    loc = Location.parse(path)
    if not loc.exists():
        raise InvalidInput("file does not exist", str(loc))
    size = loc.size()
    if size > max_bytes:
        raise InvalidInput(f"file is {size} bytes, above the limit of {max_bytes}", str(loc))
    return loc.read_bytes()


def read_json(path: Any, *, max_bytes: int = MAX_FILE_BYTES) -> Any:
    """Parse a JSON file; a syntax error names the file, line and column."""
    data = read_bytes_guarded(path, max_bytes=max_bytes)
    try:
        return json.loads(data)
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"not UTF-8 text ({exc.reason} at byte {exc.start})", str(path)
        ) from None
    except RecursionError:
        raise InvalidInput("JSON nested too deeply", str(path)) from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"invalid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})", str(path)
        ) from None


def parse_xml(data: bytes, where: str):
    """Parse XML with defusedxml: entity expansion, external entities and DTDs are refused."""
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import fromstring

    try:
        return fromstring(data, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise InvalidInput(f"refused unsafe XML ({type(exc).__name__})", where) from None
    except Exception as exc:  # xml.etree.ElementTree.ParseError and friends
        raise InvalidInput(f"invalid XML: {exc}", where) from None


def number(value: Any, where: str, *, positive: bool = False) -> float:
    """A finite float from untrusted input, or InvalidInput naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidInput(f"expected a number, got {type(value).__name__} {value!r}", where)
    try:
        out = float(value)
    except ValueError:
        raise InvalidInput(f"expected a number, got {value!r}", where) from None
    if not math.isfinite(out):
        raise InvalidInput(f"expected a finite number, got {value!r}", where)
    if positive and out <= 0:
        raise InvalidInput(f"expected a positive number, got {value!r}", where)
    return out


class LabelIndex:
    """Label name -> index, in first-seen order, for building ``Dataset.labels``."""

    def __init__(self, names: Iterable[str] = ()) -> None:
        self.names: list[str] = []
        self._index: dict[str, int] = {}
        for name in names:
            self.add(name)

    def add(self, name: str) -> int:
        idx = self._index.get(name)
        if idx is None:
            idx = self._index[name] = len(self.names)
            self.names.append(name)
        return idx

    def __getitem__(self, name: str) -> int:
        return self._index[name]

    def __contains__(self, name: object) -> bool:
        return name in self._index


def ensure_parent(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
