"""Users, roles, passwords and tokens, kept in the home project's ``user`` and ``api_token``
tables (the project given to ``annoloop serve``; its database is the server's registry).

- Roles rank ``annotator < designer < admin``; a route that needs a role accepts any higher one.
- Accounts are server-wide. An account's ``role`` is its role in the home project (every
  account is a member of it); its roles in the server's other projects are memberships, kept
  in the ``membership`` table (:mod:`annoloop.server.projects`). Home admins are the server's
  admins.
- Passwords are hashed with scrypt (stdlib ``hashlib.scrypt``, 16-byte random salt, parameters
  stored with the hash so they can be raised later).
- Tokens are random (``secrets``); only their SHA-256 (HMAC-SHA-256 with the server's secret
  key when one is set) is stored. A token's prefix says what it is: ``als_`` a browser session
  that expires after ``session_seconds``, ``alk_`` an API key for scripts that lives until it
  is revoked or its user is removed. The prefix is part of the hashed value, so it cannot be
  changed without making the token unknown.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from annoloop.errors import AccessDenied, AlreadyExists, InvalidInput, NotFound

ROLES: tuple[str, ...] = ("annotator", "designer", "admin")
RANK: dict[str, int] = {name: i for i, name in enumerate(ROLES)}
SESSION_PREFIX = "als_"
API_KEY_PREFIX = "alk_"
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # scrypt hashes any length; the bound keeps hostile bodies cheap
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
# scrypt cost: ~30 ms and 16 MiB per hash on a laptop core; stored with each hash.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**14, 8, 1


@dataclass(frozen=True)
class User:
    """An account: id, name and role."""

    id: int
    name: str
    role: str

    def has_role(self, role: str) -> bool:
        """True when this user's role is ``role`` or ranks above it."""
        return RANK[self.role] >= RANK[role]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"id": self.id, "name": self.name, "role": self.role}


# -- checks ------------------------------------------------------------------------------------


def check_user_name(name: Any) -> str:
    """A user name: 1-64 characters of letters, digits and ``. _ @ -``, starting with a letter
    or digit (the name is also the lock holder and annotation author in the store)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(
            "must be 1-64 characters of letters, digits and . _ @ -, starting with a letter or "
            f"digit; got {name!r}",
            "user name",
        )
    return name


def check_role(role: Any) -> str:
    """One of :data:`ROLES`."""
    if role not in RANK:
        raise InvalidInput(f"must be one of {', '.join(ROLES)}; got {role!r}", "role")
    return str(role)


def check_password(password: Any) -> str:
    """A password of 8 to 1024 characters."""
    if not isinstance(password, str) or not (MIN_PASSWORD <= len(password) <= MAX_PASSWORD):
        raise InvalidInput(
            f"must be a string of {MIN_PASSWORD} to {MAX_PASSWORD} characters", "password"
        )
    return password


# -- passwords ---------------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$hash`` (salt and hash base64) for ``password``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=32
    )
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str | None) -> bool:
    """True when ``password`` matches the stored hash (constant-time comparison)."""
    if not stored:
        return False
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode("utf-8"),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=256 * 1024 * 1024,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


@functools.cache
def _dummy_hash() -> str:
    """A hash to check against when the user does not exist, so a missing name costs the same
    time (made on first use: importing this module stays cheap)."""
    return hash_password(secrets.token_hex(8))


# -- database access ---------------------------------------------------------------------------


def _tables() -> tuple[Any, Any]:
    from annoloop.store.schema import api_token, user

    return user, api_token


def _write(project: Any, fn: Any) -> Any:
    from annoloop.store.engine import run_write

    return run_write(project.engine, fn)


def _read(project: Any, fn: Any) -> Any:
    from annoloop.store.engine import read_transaction

    with read_transaction(project.engine) as conn:
        return fn(conn)


def _user_row(conn: Any, name: str) -> Any:
    import sqlalchemy as sa

    user, _ = _tables()
    return conn.execute(sa.select(user).where(user.c.name == name)).first()


def add_user(project: Any, name: str, password: str, role: str = "annotator") -> int:
    """Create an account in ``project``; returns its id. AlreadyExists for a taken name.

    The service behind ``annoloop users add NAME --role R``.
    """
    from annoloop.store.schema import utcnow

    name = check_user_name(name)
    role = check_role(role)
    hashed = hash_password(check_password(password))
    user, _ = _tables()

    def create(conn: Any) -> int:
        if _user_row(conn, name) is not None:
            raise AlreadyExists(f"a user named {name!r} exists")
        result = conn.execute(
            user.insert().values(name=name, role=role, password_hash=hashed, created_at=utcnow())
        )
        return int(result.inserted_primary_key[0])

    return _write(project, create)


def list_users(project: Any) -> list[dict[str, Any]]:
    """Every account: id, name, role, created_at (ISO text), oldest first."""
    import sqlalchemy as sa

    user, _ = _tables()
    rows = _read(
        project,
        lambda c: c.execute(
            sa.select(user.c.id, user.c.name, user.c.role, user.c.created_at).order_by(user.c.id)
        ).all(),
    )
    return [
        {"id": int(r.id), "name": r.name, "role": r.role, "created_at": r.created_at.isoformat()}
        for r in rows
    ]


def get_user(project: Any, name: str) -> User:
    """One account by name; NotFound otherwise."""
    row = _read(project, lambda c: _user_row(c, str(name)))
    if row is None:
        raise NotFound(f"no user {name!r}")
    return User(int(row.id), row.name, row.role)


def update_user(
    project: Any, name: str, *, role: str | None = None, password: str | None = None
) -> User:
    """Change an account's role and/or password. Changing the password ends its sessions and
    API keys (a leaked token should die with the old password)."""
    user, api_token = _tables()
    values: dict[str, Any] = {}
    if role is not None:
        values["role"] = check_role(role)
    if password is not None:
        values["password_hash"] = hash_password(check_password(password))

    def change(conn: Any) -> User:
        row = _user_row(conn, str(name))
        if row is None:
            raise NotFound(f"no user {name!r}")
        if values.get("role", row.role) != "admin" and row.role == "admin":
            _keep_one_admin(conn, int(row.id))
        if values:
            conn.execute(user.update().where(user.c.id == row.id).values(**values))
        if password is not None:
            conn.execute(api_token.delete().where(api_token.c.user_id == row.id))
        return User(int(row.id), row.name, values.get("role", row.role))

    return _write(project, change)


def _keep_one_admin(conn: Any, leaving_id: int) -> None:
    """Refuse to demote or remove the last admin: nobody could manage users afterwards."""
    import sqlalchemy as sa

    user, _ = _tables()
    others = conn.execute(
        sa.select(sa.func.count())
        .select_from(user)
        .where(user.c.role == "admin", user.c.id != leaving_id)
    ).scalar()
    if not others:
        raise AccessDenied("this is the last admin; make another user admin first")


def remove_user(project: Any, name: str) -> None:
    """Delete an account, its tokens and its memberships; its annotations keep the name as
    author."""
    from annoloop.store.schema import membership

    user, api_token = _tables()

    def delete(conn: Any) -> None:
        row = _user_row(conn, str(name))
        if row is None:
            raise NotFound(f"no user {name!r}")
        if row.role == "admin":
            _keep_one_admin(conn, int(row.id))
        conn.execute(api_token.delete().where(api_token.c.user_id == row.id))
        conn.execute(membership.delete().where(membership.c.user_id == row.id))
        conn.execute(user.delete().where(user.c.id == row.id))

    _write(project, delete)


# -- tokens ------------------------------------------------------------------------------------


class TokenStore:
    """Issue, look up and revoke tokens of one project, with a short in-process cache.

    ``secret_key`` (optional) turns the stored SHA-256 into HMAC-SHA-256, so a copy of the
    database alone cannot be used to test guessed tokens; changing it ends every token.
    """

    def __init__(
        self,
        project: Any,
        *,
        secret_key: str | bytes | None = None,
        session_seconds: float = 7 * 24 * 3600.0,
        cache_seconds: float = 5.0,
    ) -> None:
        self.project = project
        key = secret_key.encode("utf-8") if isinstance(secret_key, str) else secret_key
        self._key = key or None
        self.session_seconds = float(session_seconds)
        self.cache_seconds = float(cache_seconds)
        self._cache: dict[str, tuple[float, User | None]] = {}
        self._lock = threading.Lock()

    def digest(self, token: str) -> str:
        """The stored form of ``token`` (hex)."""
        data = token.encode("utf-8")
        if self._key:
            return hmac.new(self._key, data, hashlib.sha256).hexdigest()
        return hashlib.sha256(data).hexdigest()

    def issue(self, user: User, *, api_key: bool = False) -> str:
        """A new token for ``user`` (a session token, or an API key that does not expire)."""
        from annoloop.store.schema import utcnow

        _, api_token = _tables()
        token = (API_KEY_PREFIX if api_key else SESSION_PREFIX) + secrets.token_urlsafe(32)
        digest = self.digest(token)
        _write(
            self.project,
            lambda c: c.execute(
                api_token.insert().values(user_id=user.id, token_hash=digest, created_at=utcnow())
            ),
        )
        return token

    def user_for(self, token: str | None) -> User | None:
        """The user a token belongs to, or None (unknown, malformed or expired)."""
        if not token or len(token) > 200 or not token.startswith((SESSION_PREFIX, API_KEY_PREFIX)):
            return None
        digest = self.digest(token)
        now = time.monotonic()
        if self.cache_seconds > 0:
            with self._lock:
                hit = self._cache.get(digest)
            if hit is not None and now - hit[0] < self.cache_seconds:
                return hit[1]
        found = self._lookup(digest, session=token.startswith(SESSION_PREFIX))
        if self.cache_seconds > 0:
            with self._lock:
                if len(self._cache) > 10000:  # bounded: a flood of bad tokens cannot grow it
                    self._cache.clear()
                self._cache[digest] = (now, found)
        return found

    def _lookup(self, digest: str, *, session: bool) -> User | None:
        import sqlalchemy as sa

        user, api_token = _tables()
        query = (
            sa.select(user.c.id, user.c.name, user.c.role, api_token.c.created_at)
            .select_from(api_token.join(user, user.c.id == api_token.c.user_id))
            .where(api_token.c.token_hash == digest)
        )
        row = _read(self.project, lambda c: c.execute(query).first())
        if row is None:
            return None
        if session:
            age = dt.datetime.now(dt.UTC) - row.created_at
            if age.total_seconds() > self.session_seconds:
                self.revoke_digest(digest)
                return None
        return User(int(row.id), row.name, row.role)

    def revoke(self, token: str) -> None:
        """Forget a token (logout)."""
        self.revoke_digest(self.digest(token))

    def revoke_digest(self, digest: str) -> None:
        """Forget a token by its stored form."""
        _, api_token = _tables()
        _write(
            self.project,
            lambda c: c.execute(api_token.delete().where(api_token.c.token_hash == digest)),
        )
        self.clear_cache()

    def clear_cache(self) -> None:
        """Drop cached lookups (after a user is changed or removed)."""
        with self._lock:
            self._cache.clear()


class LoginGuard:
    """Counts failed logins per user name; after ``attempts`` failures within ``window``
    seconds the name is refused until the window has passed (slows password guessing)."""

    def __init__(self, attempts: int = 10, window: float = 60.0) -> None:
        self.attempts = int(attempts)
        self.window = float(window)
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, name: str, now: float) -> list[float]:
        times = [t for t in self._failures.get(name, []) if now - t < self.window]
        if times:
            self._failures[name] = times
        else:
            self._failures.pop(name, None)
        return times

    def blocked(self, name: str) -> bool:
        """True when ``name`` has too many recent failures."""
        with self._lock:
            return len(self._recent(name, time.monotonic())) >= self.attempts

    def failed(self, name: str) -> None:
        """Record a failure for ``name``."""
        with self._lock:
            now = time.monotonic()
            if len(self._failures) > 100000:  # bounded memory under a flood of names
                self._failures.clear()
            self._failures.setdefault(name, []).append(now)
            self._recent(name, now)

    def succeeded(self, name: str) -> None:
        """Clear the failures of ``name``."""
        with self._lock:
            self._failures.pop(name, None)


def authenticate(project: Any, name: str, password: str) -> User:
    """The user whose name and password match; AccessDenied (same message either way)
    otherwise. A missing user costs the same scrypt time as a wrong password."""
    if not isinstance(name, str) or not isinstance(password, str) or len(password) > MAX_PASSWORD:
        raise AccessDenied("wrong user name or password")
    row = _read(project, lambda c: _user_row(c, name)) if _NAME.match(name) else None
    stored = row.password_hash if row is not None else None
    ok = verify_password(password, stored or _dummy_hash())
    if row is None or not stored or not ok:
        raise AccessDenied("wrong user name or password")
    return User(int(row.id), row.name, row.role)


def issue_api_key(project: Any, name: str, *, secret_key: str | bytes | None = None) -> str:
    """A new API key (``alk_...``) for user ``name``; NotFound for an unknown user.

    The service behind ``annoloop users token NAME``. ``secret_key`` must be the one the server
    runs with (default: env ``ANNOLOOP_SECRET_KEY``), or the server will not know the key.
    """
    import os

    if secret_key is None:
        secret_key = os.environ.get("ANNOLOOP_SECRET_KEY") or None
    return TokenStore(project, secret_key=secret_key).issue(get_user(project, name), api_key=True)
