"""XML helpers for the Pascal VOC and CVAT formats: a fast safe parse, text and attribute escaping.

:func:`parse_xml_fast` gives the same guarantees as :func:`annoloop.formats._common.parse_xml`
(defusedxml: DTDs, entity expansion and external entities refused) at the speed of the C
ElementTree parser. Entities and external references can only be declared inside a document
type declaration, so a document that has none cannot expand anything: such a document goes to
the C parser. Everything else (a ``<!DOCTYPE`` anywhere, or an encoding in which that byte scan
could miss it: UTF-16/32, a declared non-UTF-8 encoding) goes to defusedxml, which refuses the DTD
or parses safely. defusedxml uses the pure-Python parser, about 3x slower on large files.
"""

from __future__ import annotations

import contextlib
import gc
import re
from collections.abc import Iterator
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from annoloop.errors import InvalidInput
from annoloop.formats._common import parse_xml

# The XML declaration's encoding, when it has one.
_ENCODING = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._\-]+)[\"']")
_PLAIN_ENCODINGS = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})
_UTF8_BOM = b"\xef\xbb\xbf"


def _plain_utf8(data: bytes) -> bool:
    """Whether ``data`` is UTF-8 (or ASCII) XML, so that a byte scan for markup is reliable."""
    if b"\x00" in data:  # UTF-16/32 text holds NUL bytes; plain UTF-8 XML never does
        return False
    head = data[len(_UTF8_BOM) :] if data.startswith(_UTF8_BOM) else data
    match = _ENCODING.match(head[:200])
    return match is None or match.group(1).decode("ascii").lower() in _PLAIN_ENCODINGS


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while building millions of elements or dicts.

    Building a tree allocates only live objects, yet every allocation burst triggers
    collections that walk all of them: about 3x the parse time on large files. The previous
    state is restored on exit (the switch is process-wide, so the pause is kept short).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def parse_xml_fast(data: bytes, where: str) -> Any:
    """The root element of ``data``; unsafe or malformed XML: InvalidInput naming ``where``."""
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data or not _plain_utf8(data):
        return parse_xml(data, where)
    from xml.etree.ElementTree import ParseError, fromstring

    try:
        with no_gc():
            return fromstring(data)
    except ParseError as exc:
        raise InvalidInput(f"invalid XML: {exc}", where) from None


def text(value: Any) -> str:
    """``value`` as XML character data (``&``, ``<``, ``>`` escaped)."""
    return escape(str(value))


def attr(value: Any) -> str:
    """``value`` as a quoted XML attribute value (quotes, newlines and tabs escaped too)."""
    return quoteattr(str(value), {"\n": "&#10;", "\r": "&#13;", "\t": "&#9;"})


def check_xml_chars(value: str, where: str) -> str:
    """``value`` unchanged, or InvalidInput when it holds characters XML 1.0 cannot carry."""
    if _BAD_XML_CHARS.search(value):
        raise InvalidInput(f"text {value!r} holds characters XML cannot store", where)
    return value


_BAD_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
