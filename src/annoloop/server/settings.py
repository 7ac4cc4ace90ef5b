"""Settings of one server instance: limits, lock and session times, media roots."""

from __future__ import annotations

from dataclasses import dataclass, field

MIB = 1024 * 1024


@dataclass(frozen=True)
class ServerSettings:
    """Knobs of :func:`annoloop.server.app.create_app`; every limit has a safe default.

    - ``max_upload_bytes``: largest single uploaded image file.
    - ``max_request_bytes``: largest request body of any kind (uploads included); larger
      bodies are refused with 413 before they are read.
    - ``max_json_bytes``: largest JSON body (shapes, drafts, labels).
    - ``lock_seconds``: how long a work item stays locked by the annotator who took it; every
      draft save extends it. An expired lock makes the item claimable by others.
    - ``max_lock_seconds``: the most a client may ask for.
    - ``session_seconds``: lifetime of a browser session token (API keys do not expire).
    - ``token_cache_seconds``: how long a token lookup is cached in this process (0 = never).
    - ``thumb_sizes``: the thumbnail edge lengths served (others are refused: bounded cache).
    - ``media_roots``: extra storage roots images may be served from, besides the project's
      media folder (images added in place with ``copy=False`` live elsewhere).
    - ``cookie_secure``: mark the session cookie ``Secure`` (set behind HTTPS).
    - ``drive_pipes``: advance running pipes in a background thread of the server (one
      server per project should do it; a pipe driven elsewhere is left alone).
    - ``pipe_poll_seconds``: how often the driver looks at the pipes when nothing happens.
    - ``login_attempts`` / ``login_window_seconds``: failed logins per user name after which
      logins for that name are refused (429) for the window.
    """

    max_upload_bytes: int = 64 * MIB
    max_request_bytes: int = 256 * MIB
    max_json_bytes: int = 8 * MIB
    lock_seconds: float = 600.0
    max_lock_seconds: float = 24 * 3600.0
    session_seconds: float = 7 * 24 * 3600.0
    token_cache_seconds: float = 5.0
    thumb_sizes: tuple[int, ...] = (64, 128, 256, 512)
    media_roots: tuple[str, ...] = field(default_factory=tuple)
    cookie_secure: bool = False
    login_attempts: int = 10
    login_window_seconds: float = 60.0
    drive_pipes: bool = True
    pipe_poll_seconds: float = 1.0
