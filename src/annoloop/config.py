"""Settings from defaults, the project's ``annoloop.yaml`` and ``ANNOLOOP_*`` environment variables.

Later sources win: defaults < project file < environment. Every setting knows where its value
came from, so ``annoloop config check`` can show it, with secrets masked.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from annoloop.errors import InvalidInput

PROJECT_FILE = "annoloop.yaml"


@dataclass(frozen=True)
class SettingSpec:
    """One setting: its name, environment variable, default, type and whether it is secret."""

    name: str
    default: Any
    help: str
    kind: type = str
    secret: bool = False

    @property
    def env(self) -> str:
        return "ANNOLOOP_" + self.name.upper()


SPECS: tuple[SettingSpec, ...] = (
    SettingSpec("project", None, "default project folder or database URL"),
    SettingSpec("database_url", None, "database URL (default: the project's SQLite file)"),
    SettingSpec("storage_url", None, "media storage location (default: the project's media/)"),
    SettingSpec("executor", "local", "executor: local, local:N, dask, or a tcp:// scheduler"),
    SettingSpec("scheduler", None, "Dask scheduler address for workers and jobs"),
    SettingSpec("s3_endpoint_url", None, "S3 endpoint for s3:// locations (MinIO, moto, ...)"),
    SettingSpec(
        "max_image_pixels", 250_000_000, "largest image decoded (decompression bombs)", int
    ),
    SettingSpec("device", "auto", "torch device: auto, cpu, cuda, cuda:N"),
    SettingSpec("secret_key", None, "server secret for signing sessions", secret=True),
    SettingSpec("log_level", "INFO", "logging level"),
)
_BY_NAME = {s.name: s for s in SPECS}
_URL_PASSWORD = re.compile(r"(://[^:/@]+:)([^@]+)(@)")


@dataclass(frozen=True)
class Setting:
    """A resolved setting value and its source (``default``, a file path, or an env variable)."""

    spec: SettingSpec
    value: Any
    source: str

    def shown(self) -> str:
        """The value as it may be printed: secrets and passwords in URLs masked."""
        if self.value is None:
            return "-"
        if self.spec.secret:
            return "****"
        return mask_url(str(self.value))


def mask_url(text: str) -> str:
    """Hide the password of ``scheme://user:password@host`` URLs."""
    return _URL_PASSWORD.sub(r"\1****\3", text)


def _convert(spec: SettingSpec, raw: Any, source: str) -> Any:
    if raw is None or spec.kind is str:
        return raw if raw is None else str(raw)
    try:
        return spec.kind(raw)
    except (TypeError, ValueError):
        raise InvalidInput(
            f"{spec.name} must be {spec.kind.__name__}, got {raw!r}", source
        ) from None


def read_project_file(folder: Path) -> dict[str, Any]:
    """The settings mapping in ``folder/annoloop.yaml`` (empty when there is none)."""
    import yaml

    path = Path(folder) / PROJECT_FILE
    if not path.exists():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise InvalidInput(f"invalid YAML: {exc}", str(path)) from None
    if not isinstance(data, dict):
        raise InvalidInput("expected a mapping of settings", str(path))
    return data


def load_settings(
    project_folder: str | Path | None = None, env: dict[str, str] | None = None
) -> dict[str, Setting]:
    """Resolve every setting: defaults, then the project file, then the environment."""
    env = dict(os.environ if env is None else env)
    file_values: dict[str, Any] = {}
    file_name = ""
    if project_folder is not None:
        file_values = read_project_file(Path(project_folder))
        file_name = str(Path(project_folder) / PROJECT_FILE)
    out: dict[str, Setting] = {}
    for spec in SPECS:
        value, source = spec.default, "default"
        if spec.name in file_values:
            value, source = file_values[spec.name], file_name
        if spec.env in env and env[spec.env] != "":
            value, source = env[spec.env], spec.env
        out[spec.name] = Setting(spec, _convert(spec, value, source), source)
    return out


def unknown_environment(env: dict[str, str] | None = None) -> list[str]:
    """``ANNOLOOP_*`` variables that no setting reads (likely typos)."""
    env = dict(os.environ if env is None else env)
    known = {s.env for s in SPECS}
    return sorted(k for k in env if k.startswith("ANNOLOOP_") and k not in known)


def get(name: str, project_folder: str | Path | None = None) -> Any:
    """One setting's value."""
    if name not in _BY_NAME:
        raise InvalidInput(f"unknown setting {name!r}")
    return load_settings(project_folder)[name].value


def check_settings(project_folder: str | Path | None = None) -> dict[str, Any]:
    """Resolve the settings and look for problems; the report behind ``annoloop config check``.

    Returns ``{"settings": [...], "other_environment": [...], "problems": [...]}`` with every
    value already masked for printing.
    """
    problems: list[str] = []
    try:
        settings = load_settings(project_folder)
    except InvalidInput as exc:
        return {"settings": [], "other_environment": [], "problems": [str(exc)]}
    executor = str(settings["executor"].value)
    if not re.fullmatch(r"local(:\d+)?|dask|tcp://\S+", executor):
        problems.append(
            f"executor {executor!r} ({settings['executor'].source}) is not local, local:N, "
            "dask or tcp://HOST:PORT"
        )
    url = settings["database_url"].value
    if url:
        try:
            from sqlalchemy.engine import make_url

            make_url(url)
        except Exception as exc:
            problems.append(f"database_url ({settings['database_url'].source}) is invalid: {exc}")
    storage = settings["storage_url"].value
    if storage and "://" in storage:
        import fsspec

        protocol = storage.split("://", 1)[0]
        if protocol not in fsspec.available_protocols():
            problems.append(f"storage_url protocol {protocol!r} is not known to fsspec")
    if settings["max_image_pixels"].value <= 0:
        problems.append("max_image_pixels must be positive")
    rows = [
        {"name": s.spec.name, "value": s.shown(), "source": s.source, "env": s.spec.env}
        for s in settings.values()
    ]
    return {"settings": rows, "other_environment": unknown_environment(), "problems": problems}
