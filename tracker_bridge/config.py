"""The bridge's config file, ``tracker-bridge.yaml`` (every key: docs/config.md).

``load_config(path)`` reads the YAML, validates it with pydantic (unknown keys are errors),
checks each tracker's backend and backend options against the installed plugins, resolves the
secrets, and loads the policy. Every problem is reported with its path in the file
(``trackers[0].credentials: ...``) in one :class:`~tracker_bridge.errors.ConfigError` (exit 2).

Secrets are never written in the config itself: ``credentials`` is ``{env: NAME}`` or
``{file: PATH}``, and an inline ``api_key:``/``password:``/``token:`` anywhere is an error
that says so. Error messages never repeat a value the user typed where a secret could be.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from .backend import DEADLINE_FIELDS as DEADLINE_FIELDS  # (one list: backend.py)
from .core.zones import iana_zone as iana_zone
from .errors import ConfigError
from .masking import mask_secrets, url_has_userinfo

if TYPE_CHECKING:
    import pluggy

    from .backend import Registry
    from .core.policy import Policy

DEFAULT_CONFIG = "tracker-bridge.yaml"
CONFIG_ENV = "TRACKER_BRIDGE_CONFIG"

#: keys that hold a secret when written inline; refused anywhere in the file
SECRET_KEYS = frozenset({
    "api_key", "apikey", "api_token", "token", "password", "passwd", "secret",
    "private_token", "access_token",
})
_INLINE_SECRET = ("secrets are never written in the config file: use "
                  "credentials: {env: NAME} or credentials: {file: PATH}")

STATUS_GROUPS = ("new", "waiting", "resolved", "closed")

_MAX_INTERVAL_S = 365 * 86400
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)")


def parse_interval(text: str | float | int) -> timedelta:
    """``60s``, ``5m``, ``1h30m``, ``1.5h`` or a plain number of seconds."""
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        raise ValueError("is not a duration (e.g. 60s, 5m, 1h)")
    if isinstance(text, int | float):
        # a huge int would raise OverflowError in float(); anything that large is refused below
        seconds = float(text) if isinstance(text, float) or abs(text) < 10**18 else float("inf")
    else:
        raw = text.strip().lower()
        if not raw:
            raise ValueError("is not a duration")
        try:
            seconds = float(raw)
        except ValueError:
            pos, seconds = 0, 0.0
            for m in _DURATION_RE.finditer(raw):
                if m.start() != pos and raw[pos:m.start()].strip():
                    break
                n, unit = float(m.group(1)), m.group(2)
                seconds += n * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
                pos = m.end()
            if pos != len(raw) or pos == 0:
                msg = f"{text!r} is not a duration (e.g. 60s, 5m, 1h)"
                raise ValueError(msg) from None
    if not seconds > 0:  # NaN too
        msg = f"{text!r} must be longer than zero"
        raise ValueError(msg)
    if seconds > _MAX_INTERVAL_S:  # infinity too (no OverflowError from timedelta)
        msg = f"{text!r} is too long (at most 365d)"
        raise ValueError(msg)
    return timedelta(seconds=seconds)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(_Model):
    """Where a secret comes from: exactly one of an environment variable or a file."""

    env: str | None = Field(None, description="name of the environment variable holding it")
    file: Path | None = Field(None, description="file holding it (relative to the config)")

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env: NAME or file: PATH")
        if self.env is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.env):
            raise ValueError("env: must be the name of an environment variable")
        return self

    def describe(self) -> str:
        """Where the secret is read from, safe to print."""
        return f"env {self.env}" if self.env else f"file {self.file}"


class WriteConfig(_Model):
    """Where each piece of SLA state is written in the tracker (``None``: not written)."""

    response_due: str | None = Field(None, description="field receiving the response deadline")
    resolution_due: str | None = Field(None, description="field receiving the resolution deadline")
    labels: str | None = Field(None, description="multi-value field holding the owned labels")
    notes: str | None = Field(None, description="how notes are posted, e.g. journal")
    state: str | None = Field(
        None, description="text field receiving one line of SLA state for people, e.g. "
        "'response met · resolution due Tue 15 Dec 17:30 GMT'")
    timezone: str = Field("UTC", description="zone the deadline fields are written in")
    deadline_format: Literal["iso", "human"] = Field(
        "iso", description="iso: ISO 8601 with offset (for machines); human: "
        "'Tue 15 Dec 2026 17:30 GMT' in the timezone (for people; needs text fields)")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        return iana_zone(v)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class TrackerConfig(_Model):
    """One tracker the bridge polls and writes back to."""

    name: str = Field(description="the tracker's name in messages, tickets and the store")
    backend: str = Field(description="which backend plugin talks to it (e.g. redmine)")
    url: str | None = Field(None, description="base URL of the tracker")
    credentials: SecretRef | None = Field(None, description="{env: NAME} or {file: PATH}")
    projects: list[str] = Field(default_factory=list, description="projects in scope")
    plan: str | None = Field(None, description="plan of tickets whose plan field is empty")
    project_plans: dict[str, str] = Field(default_factory=dict, description="plan per project")
    fields: dict[str, str] = Field(default_factory=dict,
                                   description="normalized field -> tracker field")
    statuses: dict[Literal["new", "waiting", "resolved", "closed"], list[str]] = Field(
        default_factory=dict, description="status groups overriding the policy's")
    write: WriteConfig = Field(default_factory=WriteConfig,
                               description="where the SLA state is written")
    options: dict[str, Any] = Field(default_factory=dict,
                                    description="backend-specific, validated by the backend")
    adopt_closed: bool = Field(
        True, description="on a tracker's first sync, record tickets already resolved or "
        "closed without writing to them (no KB notes or labels on years of history) until "
        "they are reopened; false writes to them too")

    _secret: SecretStr | None = PrivateAttr(None)
    _validated_options: Any = PrivateAttr(None)
    _base: Path | None = PrivateAttr(None)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._\-]*", v):
            msg = f"{v!r}: use letters, digits, '.', '_' and '-' (no ':' or spaces)"
            raise ValueError(msg)
        return v

    @field_validator("url")
    @classmethod
    def _no_userinfo(cls, v: str | None) -> str | None:
        if v is not None and url_has_userinfo(v):
            # never echo v: the part before '@' is the secret
            msg = ("credentials in the URL (user:password@ or token@ before the host) are "
                   "not accepted: put them under credentials: {env: NAME} or {file: PATH} "
                   "(docs/config.md)")
            raise ValueError(msg)
        return v

    @field_validator("credentials", mode="before")
    @classmethod
    def _not_inline(cls, v: Any) -> Any:
        if v is not None and not isinstance(v, Mapping):
            # never echo v: it is probably the secret itself
            raise ValueError(_INLINE_SECRET)
        return v

    @field_validator("fields")
    @classmethod
    def _fields(cls, v: dict[str, str]) -> dict[str, str]:
        for k, target in v.items():
            if not re.fullmatch(r"[a-z_][a-z0-9_]*", k):
                msg = f"{k!r} is not a normalized field name (lower_case)"
                raise ValueError(msg)
            if not str(target).strip():
                msg = f"{k}: names no tracker field"
                raise ValueError(msg)
        return v

    @property
    def secret(self) -> SecretStr | None:
        """The resolved ``credentials`` (set by :func:`load_config`)."""
        return self._secret

    def mask(self, text: str) -> str:
        """``text`` safe to print, log or store: this tracker's secret and anything shaped
        like a credential masked (:func:`tracker_bridge.masking.mask_secrets`)."""
        secret = self._secret.get_secret_value() if self._secret is not None else ""
        return mask_secrets(text, (secret,))

    @property
    def validated_options(self) -> Any:
        """``options`` validated by the backend's ``config_model``, else the raw mapping."""
        return self._validated_options if self._validated_options is not None else self.options

    @property
    def base_dir(self) -> Path:
        """The config file's folder: relative paths in ``options`` are resolved against it."""
        return self._base or Path.cwd()

    def resolve_path(self, path: str | os.PathLike[str]) -> Path:
        """``path`` relative to the config file's folder (absolute paths unchanged)."""
        p = Path(path)
        return p if p.is_absolute() else self.base_dir / p

    def plan_for(self, project: str | None) -> str | None:
        """The configured plan of tickets in ``project`` (``project_plans``, else ``plan``)."""
        if project is not None and project in self.project_plans:
            return self.project_plans[project]
        return self.plan

    def status_overrides(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in self.statuses.items()}


class SafetyConfig(_Model):
    """The mass-change guard (errors.SyncSafetyError)."""

    min_open: int = Field(10, ge=1, description="open tickets in the store from which a cycle "
                          "that would leave none open is refused")


class BridgeConfig(_Model):
    """The whole file. Paths are resolved against the config file's folder."""

    policy: Path = Field(description="the policy file")
    state: Path | str = Field(
        Path("tracker-bridge.sqlite"),
        description="the state store: a SQLite file (the default), or "
        "postgresql://user@host:port/db shared by several daemons")
    state_credentials: SecretRef | None = Field(
        None, description="the PostgreSQL password: {env: NAME} or {file: PATH}")
    poll_interval: timedelta = Field(timedelta(seconds=60), description="time between polls")
    safety: SafetyConfig = Field(default_factory=SafetyConfig)
    trackers: list[TrackerConfig] = Field(default_factory=list)

    _source: Path | None = PrivateAttr(None)
    _policy: Any = PrivateAttr(None)
    _state_secret: SecretStr | None = PrivateAttr(None)

    @field_validator("state", mode="before")
    @classmethod
    def _state(cls, v: Any) -> Path | str:
        if isinstance(v, str) and re.match(r"(?i)postgres(?:ql)?://", v.strip()):
            from urllib.parse import urlsplit

            try:
                parts = urlsplit(v.strip())
                parts.port  # noqa: B018 (a bad port raises here)
            except ValueError:
                raise ValueError("is not a valid postgresql://user@host:port/db URL") from None
            if parts.password is not None:
                # never echo v: the part after ':' is the secret
                raise ValueError("a password in the state URL is not accepted: put it under "
                                 "state_credentials: {env: NAME} or {file: PATH} "
                                 "(docs/config.md)")
            if not parts.hostname or parts.path.strip("/") == "":
                raise ValueError("a postgresql:// state needs a host and a database: "
                                 "postgresql://user@host:port/db")
            return v.strip()
        if isinstance(v, str) and re.match(r"[A-Za-z][A-Za-z0-9+.-]*://", v.strip()):
            raise ValueError("names no SQLite file and no postgresql:// database")
        if isinstance(v, str | os.PathLike):
            return Path(v)
        return v

    @field_validator("state_credentials", mode="before")
    @classmethod
    def _state_not_inline(cls, v: Any) -> Any:
        if v is not None and not isinstance(v, Mapping):
            raise ValueError(_INLINE_SECRET)  # never echo v
        return v

    @property
    def state_is_shared(self) -> bool:
        """Whether ``state`` is a PostgreSQL database (several daemons, leases)."""
        return isinstance(self.state, str)

    @property
    def state_password(self) -> str | None:
        """The resolved ``state_credentials`` (set by :func:`load_config`)."""
        return None if self._state_secret is None else self._state_secret.get_secret_value()

    def mask(self, text: str) -> str:
        """``text`` with the state store's password and credential-shaped parts masked."""
        return mask_secrets(text, (self.state_password or "",))

    @field_validator("poll_interval", mode="before")
    @classmethod
    def _interval(cls, v: Any) -> timedelta:
        if isinstance(v, timedelta):
            return v
        return parse_interval(v)

    @property
    def source(self) -> Path | None:
        """The file this config was read from."""
        return self._source

    @property
    def policy_obj(self) -> Policy:
        """The loaded policy."""
        if self._policy is None:
            msg = "policy not loaded (use load_config)"
            raise RuntimeError(msg)
        return self._policy

    def tracker(self, name: str) -> TrackerConfig:
        for t in self.trackers:
            if t.name == name:
                return t
        known = ", ".join(t.name for t in self.trackers) or "none"
        raise ConfigError(str(self._source or "config"),
                          [("trackers", f"no tracker named {name!r} (configured: {known})")])


def default_config_path() -> Path:
    """``$TRACKER_BRIDGE_CONFIG``, else ``tracker-bridge.yaml`` in the working directory."""
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for a bad mapping key: the key is the path
            continue
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _msg(err: Mapping[str, Any]) -> str:
    msg = str(err.get("msg", "invalid"))
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    if err.get("type") == "extra_forbidden":
        msg = "unknown key (a typo? see docs/config.md)"
    if err.get("type") == "missing":
        msg = "is required"
    return msg


def validation_problems(exc: ValidationError, prefix: str = "") -> list[tuple[str, str]]:
    """pydantic errors as ``(path in file, message)``; input values are never echoed."""
    problems = []
    for err in exc.errors():
        loc = tuple(x for x in err["loc"] if not (isinstance(x, str) and x.startswith("function-")))
        # a Literal-keyed dict reports its key as '[key]'; keep the path readable
        path = _loc(loc)
        if prefix:
            path = prefix + ("" if path.startswith("[") or not path else ".") + path
        problems.append((path, _msg(err)))
    return problems


def _strip_inline_secrets(node: Any, path: str, problems: list[tuple[str, str]]) -> Any:
    """``node`` without inline secrets, each one reported (never its value) in ``problems``."""
    if isinstance(node, Mapping):
        out = {}
        for k, v in node.items():
            sub = f"{path}.{k}" if path else str(k)
            if str(k).lower() in SECRET_KEYS and not isinstance(v, Mapping):
                problems.append((sub, _INLINE_SECRET))
            else:
                out[k] = _strip_inline_secrets(v, sub, problems)
        return out
    if isinstance(node, list):
        return [_strip_inline_secrets(v, f"{path}[{i}]", problems) for i, v in enumerate(node)]
    return node


def _resolve_secret(ref: SecretRef, base: Path, where: str) -> tuple[SecretStr | None, str | None]:
    if ref.env is not None:
        value = os.environ.get(ref.env)
        if value is None or not value.strip():
            return None, f"environment variable {ref.env} is not set"
        return SecretStr(value.strip()), None
    assert ref.file is not None
    p = ref.file if ref.file.is_absolute() else base / ref.file
    from .inputfile import MAX_SECRET_BYTES, read_bytes

    try:
        raw = read_bytes(p, what="secret", limit=MAX_SECRET_BYTES)
    except ConfigError as e:  # unreadable, or larger than 64 KiB (the content is never shown)
        return None, f"{p}: {e.problems[0][1]}"
    try:
        value = raw.decode("utf-8-sig").strip()
    except UnicodeDecodeError:
        return None, f"{p} is not UTF-8 text"
    if not value:
        return None, f"{p} is empty"
    return SecretStr(value), None


def _duplicate_names(trackers: Any) -> list[tuple[str, str]]:
    """``trackers[i].name`` of each tracker whose name an earlier one already has."""
    if not isinstance(trackers, list):
        return []
    first: dict[str, int] = {}
    out = []
    for i, t in enumerate(trackers):
        name = t.get("name") if isinstance(t, Mapping) else None
        if not isinstance(name, str):
            continue
        if name in first:
            out.append((f"trackers[{i}].name",
                        f"tracker name {name!r} is used twice (first at trackers[{first[name]}])"))
        else:
            first[name] = i
    return out


class _Problems(ConfigError):
    """A ConfigError whose paths carry their line in the file, as the policy's errors do."""

    def __init__(self, source: str, problems: list[tuple[str, str]],
                 lines: Mapping[str, int] | None) -> None:
        numbered = [(_line_of(p, lines), p, m) for p, m in problems]
        numbered.sort(key=lambda x: x[0] if x[0] is not None else 0)  # in file order
        super().__init__(source, [(f"line {n}: {p}" if n is not None else p, m)
                                  for n, p, m in numbered])


def _line_of(path: str, lines: Mapping[str, int] | None) -> int | None:
    """The line of ``path``, or of its nearest parent, in the file."""
    probe = path
    while lines and probe:
        if probe in lines:
            return lines[probe]
        cut = max(probe.rfind("."), probe.rfind("["))
        probe = probe[:cut] if cut > 0 else ""
    return None


def parse_config(data: Any, *, source: str = "<string>", base: Path | None = None,
                 pm: pluggy.PluginManager | None = None, load_policy: bool = True,
                 resolve_secrets: bool = True,
                 lines: Mapping[str, int] | None = None) -> BridgeConfig:
    """Validate an already-parsed config document (see :func:`load_config`).

    ``lines`` maps a path in the file (``trackers[0].url``) to its line, for messages.
    """
    base = base or Path.cwd()
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(source, [("", "the config must be a mapping of keys to values")])
    problems: list[tuple[str, str]] = []
    # inline secrets are reported and left out, so that the rest is still validated
    data = _strip_inline_secrets(data, "", problems)
    problems.extend(_duplicate_names(data.get("trackers")))
    try:
        cfg = BridgeConfig.model_validate(data)
    except ValidationError as e:
        raise _Problems(source, problems + validation_problems(e), lines) from None
    if problems:
        raise _Problems(source, problems, lines)
    # paths are relative to the config file's folder, not to wherever the command runs
    policy_path = cfg.policy if cfg.policy.is_absolute() else base / cfg.policy
    state_path = cfg.state if isinstance(cfg.state, str) or cfg.state.is_absolute() \
        else base / cfg.state
    cfg = cfg.model_copy(update={"policy": policy_path, "state": state_path})
    cfg._source = Path(source) if source != "<string>" else None
    if cfg.state_credentials is not None:
        if not cfg.state_is_shared:
            problems.append(("state_credentials",
                             "only a postgresql:// state has credentials (state is a file)"))
        else:  # (always: `report` reads a PostgreSQL store without tracker credentials)
            secret, err = _resolve_secret(cfg.state_credentials, base, "state_credentials")
            if err:
                problems.append(("state_credentials", err))
            cfg._state_secret = secret

    registry = _registry(pm)
    for i, t in enumerate(cfg.trackers):
        where = f"trackers[{i}]"
        t._base = base
        cls = registry.get(t.backend)
        if cls is None:
            known = ", ".join(sorted(registry.backends)) or "none"
            problems.append((f"{where}.backend",
                             f"no backend named {t.backend!r} is installed (installed: {known}; "
                             "see `tracker-bridge plugins`)"))
            continue
        model = getattr(cls, "config_model", None)
        if model is not None:
            try:
                t._validated_options = model.model_validate(t.options)
            except ValidationError as e:
                problems.extend(validation_problems(e, f"{where}.options"))
        if t.credentials is not None and resolve_secrets:
            secret, err = _resolve_secret(t.credentials, base, f"{where}.credentials")
            if err:
                problems.append((f"{where}.credentials", err))
            t._secret = secret
    if problems:
        raise _Problems(source, problems, lines)

    if load_policy:
        from .policyfile import load_policy as _load_policy

        if not policy_path.is_file():
            raise ConfigError(source, [("policy", f"no policy file at {policy_path}")])
        policy = _load_policy(policy_path)  # raises ConfigError naming the policy file
        cfg._policy = policy
        for i, t in enumerate(cfg.trackers):
            if t.statuses:
                try:
                    policy.with_status_overrides(t.status_overrides())
                except (ValueError, KeyError) as e:
                    problems.append((f"trackers[{i}].statuses", str(e)))
        if problems:
            raise _Problems(source, problems, lines)
    return cfg


def load_config(path: str | os.PathLike[str] | None = None, *,
                pm: pluggy.PluginManager | None = None, load_policy: bool = True,
                resolve_secrets: bool = True) -> BridgeConfig:
    """Read and validate ``tracker-bridge.yaml`` and the policy it names.

    :param path: the config file; default ``$TRACKER_BRIDGE_CONFIG`` or ``tracker-bridge.yaml``
    :param pm: the plugin manager whose backends validate ``backend:`` and ``options:``
    :param load_policy: also load (and validate) the policy file
    :param resolve_secrets: read each tracker's credentials now (missing ones are errors)
    :raises ConfigError: with every problem and its path in the file (exit status 2)
    """
    p = Path(path) if path is not None else default_config_path()
    source = str(p)
    # the policy's reader (inputfile): at most 4 MiB, one YAML parse without aliases, duplicate
    # keys and deep nesting refused with their line; YAML 1.2 booleans (``on``/``no`` stay text)
    from .inputfile import MAX_CONFIG_BYTES, format_loc, read_yaml_file

    data, line_map = read_yaml_file(
        p, what="config", limit=MAX_CONFIG_BYTES,
        missing_hint=f"give --config FILE or set ${CONFIG_ENV}")
    lines = {format_loc(loc): n for loc, n in line_map.items() if loc}
    return parse_config(data, source=source, base=p.resolve().parent, pm=pm,
                        load_policy=load_policy, resolve_secrets=resolve_secrets, lines=lines)


def _registry(pm: pluggy.PluginManager | None) -> Registry:
    from .manager import collect_registry, get_plugin_manager

    return collect_registry(pm if pm is not None else get_plugin_manager())
