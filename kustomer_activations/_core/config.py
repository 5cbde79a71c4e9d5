"""Client options: validation, base-URL resolution and defaults.

Everything here runs before any I/O, so that a wrong option fails at
construction with a message that says what to do.
"""

from __future__ import annotations

import logging
import os
import platform
import re
from collections.abc import Mapping
from typing import Any

import attrs
import httpx

from .._version import __version__
from ..errors import KustomerError

__all__ = [
    "DEFAULT_MAX_RATE_LIMIT_WAIT",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "HOST_ENV_VARS",
    "REGION_HOSTS",
    "ClientConfig",
    "ConfigurationError",
    "log_values_default",
    "resolve_base_url",
]

DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 2
#: Seconds a single call may spend waiting out 429s before RateLimitError.
DEFAULT_MAX_RATE_LIMIT_WAIT = 300.0

#: Kustomer's regional API hosts ("pods"); an org host routes to its own region.
REGION_HOSTS: Mapping[str, str] = {
    "us": "https://api.kustomerapp.com",
    "eu": "https://api.prod2.kustomerapp.com",
    "in": "https://api.prod4.kustomerapp.com",
}

logger = logging.getLogger("kustomer_activations")

_ORG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}


class ConfigurationError(KustomerError, ValueError):
    """A client option is missing, malformed or conflicts with another."""


#: The environment variables that may choose the API host, with the option each stands for.
HOST_ENV_VARS: Mapping[str, str] = {
    "KUSTOMER_ORG": "org",
    "KUSTOMER_REGION": "region",
    "KUSTOMER_BASE_URL": "base_url",
}
#: Values of ``KUSTOMER_LOG_VALUES`` that turn key values in logs on.
_TRUE = frozenset({"1", "true", "yes", "on"})


def resolve_base_url(
    *, org: str | None, region: str | None, base_url: str | None, env: Mapping[str, str]
) -> str:
    """Pick the API root from ``org``, ``region`` or ``base_url``, else from the environment.

    Precedence: an explicit argument beats every environment variable. At
    most one of the three arguments may be given. With none, at most one of
    ``KUSTOMER_ORG``, ``KUSTOMER_REGION`` and ``KUSTOMER_BASE_URL`` may be set
    and decides; with none of those either, Kustomer's US host is used.

    When an argument overrides a host variable (``org="acme"`` while
    ``KUSTOMER_BASE_URL`` points at an emulator, say), the argument is used and
    a warning on the ``kustomer_activations`` logger names both, because the
    requests then go somewhere the environment did not say.
    """
    given = [(name, v) for name, v in (("org", org), ("region", region), ("base_url", base_url)) if v]
    if len(given) > 1:
        raise ConfigurationError(
            f"Pass only one of org=, region= or base_url= (got {', '.join(n for n, _ in given)}): "
            "each one decides the API host on its own"
        )
    from_env = [(var, env[var]) for var in HOST_ENV_VARS if env.get(var, "").strip()]
    if given:
        name, value = given[0]
        if from_env:
            logger.warning(
                "%s=%r overrides %s from the environment (an explicit argument wins)",
                name, value, ", ".join(f"{var}={v!r}" for var, v in from_env),
            )
        return _host_of(name, value, name)
    if len(from_env) > 1:
        raise ConfigurationError(
            f"{' and '.join(var for var, _ in from_env)} are all set: each one decides the "
            "API host on its own; unset all but one (or pass org=, region= or base_url=)"
        )
    if from_env:
        var, value = from_env[0]
        return _host_of(HOST_ENV_VARS[var], value, var)
    return REGION_HOSTS["us"]


def _host_of(option: str, value: str, source: str) -> str:
    """The API root for one host option; ``source`` names it in errors (argument or variable)."""
    if option == "org":
        slug = value.strip().lower()
        if not _ORG_RE.match(slug):
            raise ConfigurationError(
                f"{source}={value!r} is not an org name; use the subdomain of your Kustomer "
                "URL, e.g. 'acme' for https://acme.kustomerapp.com"
            )
        return f"https://{slug}.api.kustomerapp.com"
    if option == "region":
        key = value.strip().lower()
        if key not in REGION_HOSTS:
            raise ConfigurationError(
                f"{source}={value!r} is unknown; use one of {', '.join(sorted(REGION_HOSTS))}"
            )
        return REGION_HOSTS[key]
    return _normalise_base_url(value, source)


def log_values_default(env: Mapping[str, str]) -> bool:
    """Whether ``KUSTOMER_LOG_VALUES`` asks for key values (emails, ids) in logs."""
    return env.get("KUSTOMER_LOG_VALUES", "").strip().lower() in _TRUE


def _normalise_base_url(url: str, source: str = "base_url") -> str:
    try:
        parsed = httpx.URL(url.strip())
    except Exception as exc:  # httpx raises several types for bad URLs
        raise ConfigurationError(f"{source}={url!r} is not a URL: {exc}") from None
    if parsed.scheme not in ("https", "http") or not parsed.host:
        raise ConfigurationError(f"{source}={url!r} must be an absolute https:// URL")
    if parsed.scheme == "http" and parsed.host not in _LOOPBACK_HOSTS:
        raise ConfigurationError(
            f"{source}={url!r} uses plain http; Kustomer needs https (plain http is "
            "only allowed for a local emulator on localhost/127.0.0.1)"
        )
    text = str(parsed).rstrip("/")
    if text.endswith("/v1"):
        text = text[: -len("/v1")]
    return text


def _check_api_key(api_key: str | None, env: Mapping[str, str]) -> str:
    key = api_key if api_key is not None else env.get("KUSTOMER_API_KEY")
    if not key or not key.strip():
        raise ConfigurationError(
            "No Kustomer API key: pass api_key= or set KUSTOMER_API_KEY "
            "(create one under Settings > Security > API Keys)"
        )
    if any(c in key for c in "\r\n\t ") or not key.isprintable():
        raise ConfigurationError("The API key contains whitespace or control characters")
    if not key.isascii():
        # An HTTP header is ASCII: such a key would only fail later, on the first request.
        raise ConfigurationError(
            "The API key contains non-ASCII characters; copy it again from Kustomer"
        )
    return key


def user_agent() -> str:
    """The User-Agent header: package, version, httpx and Python versions."""
    return (
        f"kustomer-activations/{__version__} httpx/{httpx.__version__} "
        f"python/{platform.python_version()}"
    )


@attrs.frozen(kw_only=True, repr=False)
class ClientConfig:
    """Validated client options. The API key never appears in ``repr()``."""

    api_key: str
    base_url: str
    timeout: httpx.Timeout
    max_retries: int
    max_rate_limit_wait: float
    requests_per_minute: int | None
    searches_per_minute: int
    default_headers: Mapping[str, str]
    log_values: bool = False

    @classmethod
    def build(
        cls,
        *,
        api_key: str | None,
        org: str | None,
        region: str | None,
        base_url: str | None,
        timeout: float | httpx.Timeout | None,
        max_retries: int,
        max_rate_limit_wait: float,
        requests_per_minute: int | None,
        searches_per_minute: int,
        default_headers: Mapping[str, str] | None,
        log_values: bool | None = None,
        env: Mapping[str, str] | None = None,
    ) -> ClientConfig:
        """Validate every option, raising :class:`ConfigurationError` on the first problem."""
        env = os.environ if env is None else env
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigurationError(f"max_retries must be an int >= 0, got {max_retries!r}")
        if max_rate_limit_wait < 0:
            raise ConfigurationError("max_rate_limit_wait must be >= 0 seconds")
        if requests_per_minute is not None and requests_per_minute <= 0:
            raise ConfigurationError("requests_per_minute must be > 0 (or None to learn it)")
        if searches_per_minute <= 0:
            raise ConfigurationError("searches_per_minute must be > 0")
        headers = dict(default_headers or {})
        if any(k.lower() == "authorization" for k in headers):
            raise ConfigurationError("Pass the key as api_key=, not in default_headers")
        return cls(
            api_key=_check_api_key(api_key, env),
            base_url=resolve_base_url(org=org, region=region, base_url=base_url, env=env),
            timeout=to_timeout(timeout),
            max_retries=max_retries,
            max_rate_limit_wait=float(max_rate_limit_wait),
            requests_per_minute=requests_per_minute,
            searches_per_minute=searches_per_minute,
            default_headers=headers,
            log_values=log_values_default(env) if log_values is None else bool(log_values),
        )

    def evolve(self, **changes: Any) -> ClientConfig:
        """A copy with some options changed (already validated by the caller)."""
        return attrs.evolve(self, **changes)

    def __repr__(self) -> str:
        return (
            f"ClientConfig(base_url={self.base_url!r}, api_key='***', "
            f"max_retries={self.max_retries}, timeout={self.timeout.read})"
        )


def to_timeout(timeout: float | httpx.Timeout | None) -> httpx.Timeout:
    """Normalise a timeout option; ``None`` means the SDK default, not "wait forever"."""
    if timeout is None:
        return httpx.Timeout(DEFAULT_TIMEOUT)
    if isinstance(timeout, httpx.Timeout):
        return timeout
    if isinstance(timeout, bool) or timeout <= 0:
        raise ConfigurationError(f"timeout must be a positive number of seconds, got {timeout!r}")
    return httpx.Timeout(float(timeout))
