"""Reading many YOLO label files at once: whitespace-separated numbers, located by file and line.

All files are joined into one byte string and split once; numpy finds where each token starts,
which line it is on and which file that line came from. Only an error walks tokens one by one.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

from annoloop.errors import InvalidInput

# bytes.split() splits on exactly these (ASCII whitespace)
_WHITESPACE = np.zeros(256, dtype=bool)
_WHITESPACE[[9, 10, 11, 12, 13, 32]] = True
_BOM = b"\xef\xbb\xbf"
# below this many lines, converting tokens is quicker than starting pandas' reader
_TABLE_MIN_LINES = 20_000


@dataclass
class NumberLines:
    """The non-blank lines of several files: their numbers, one flat array for all of them.

    ``start[j]`` / ``count[j]``: where line j's values sit in ``values`` and how many it has;
    ``file[j]``: which file it came from; ``line[j]``: its 1-based line number in that file.
    """

    values: np.ndarray
    start: np.ndarray
    count: np.ndarray
    file: np.ndarray
    line: np.ndarray


def read_number_lines(blobs: list[bytes], names: list[str]) -> NumberLines:
    """Parse the contents of several text files of numbers (``names`` for error messages)."""
    parts: list[bytes] = []
    first_line = np.zeros(len(blobs) + 1, dtype=np.int64)
    for i, blob in enumerate(blobs):
        if blob.startswith(_BOM):  # written by some Windows editors
            blob = blob[len(_BOM) :]
        if blob and not blob.endswith(b"\n"):
            blob += b"\n"
        parts.append(blob)
        first_line[i + 1] = first_line[i] + blob.count(b"\n")
    data = b"".join(parts)
    del parts

    raw = np.frombuffer(data, dtype=np.uint8)
    space = _WHITESPACE[raw]
    begins = ~space
    begins[1:] &= space[:-1]
    token_pos = np.flatnonzero(begins)
    del space, begins
    newline_pos = np.flatnonzero(raw == 10)
    token_line = np.searchsorted(newline_pos, token_pos)  # global 0-based line of each token
    del newline_pos, token_pos

    if token_line.size:
        breaks = np.flatnonzero(np.diff(token_line)) + 1
        start = np.concatenate([[0], breaks]).astype(np.int64)
    else:
        start = np.zeros(0, dtype=np.int64)
    count = np.diff(np.concatenate([start, [len(token_line)]])).astype(np.int64)
    values = _table_floats(data, count)
    if values is None:
        tokens = data.split()
        if len(tokens) != len(token_line):  # cannot happen: both split on the same bytes
            raise InvalidInput("could not split the label files into values", names[0])
        values = _to_floats(tokens, token_line, first_line, names)
        del tokens

    global_line = token_line[start]
    file = np.searchsorted(first_line, global_line, side="right") - 1
    line = global_line - first_line[file] + 1
    bad = ~np.isfinite(values)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        j = int(np.searchsorted(start, k, side="right") - 1)
        raise InvalidInput(
            f"value {values[k]!r} is not a finite number", f"{names[file[j]]}: line {line[j]}"
        )
    return NumberLines(values=values, start=start, count=count, file=file, line=line)


def _table_floats(data: bytes, count: np.ndarray) -> np.ndarray | None:
    """All values at once through pandas' C reader when every line has the same number of
    values (plain detection files: about 3x faster than converting tokens); None otherwise,
    or when anything in the text needs the careful path."""
    if len(count) < _TABLE_MIN_LINES or count.min() != count.max():
        return None
    import pandas as pd

    try:
        frame = pd.read_csv(
            io.BytesIO(data),
            sep=r"\s+",
            header=None,
            dtype=np.float64,
            engine="c",
            na_filter=False,
        )
    except Exception:  # any oddity: the token path finds and names it
        return None
    values = frame.to_numpy(dtype=np.float64)
    if values.shape != (len(count), int(count[0])):
        return None
    return values.ravel()


def _to_floats(
    tokens: list[bytes], token_line: np.ndarray, first_line: np.ndarray, names: list[str]
) -> np.ndarray:
    try:
        return np.array(tokens, dtype=np.float64)
    except ValueError:
        pass
    for k, token in enumerate(tokens):
        try:
            float(token)
        except ValueError:
            g = int(token_line[k])
            f = int(np.searchsorted(first_line, g, side="right") - 1)
            shown = token.decode("utf-8", "replace")[:40]
            raise InvalidInput(
                f"{shown!r} is not a number", f"{names[f]}: line {g - first_line[f] + 1}"
            ) from None
    raise InvalidInput("label files hold values that are not numbers", names[0])  # unreachable
