"""One function that keeps credentials out of everything the bridge prints or stores.

Every output path goes through :func:`mask_secrets`: log records (the daemon's
:class:`~tracker_bridge.observability.SecretFilter`), the CLI's text and JSON output, the
messages recorded in the state store (``errors`` and ``cycles``), the sync report. It masks

- the secret values the bridge knows (each tracker's resolved ``credentials``);
- anything shaped like a credential: the userinfo of a URL (``https://user:pass@host``, and a
  bare ``https://token@host``), a query parameter named like a key or token
  (``?key=``, ``&Bugzilla_api_key=``, ``access_token=``), an authentication header as text or
  as a dict repr (``X-Redmine-API-Key: v``, ``'Authorization': 'Bearer v'``), and a bare run
  of 32 to 64 hex digits (Redmine keys are 40).

The patterns run on text that may quote a tracker's answer (customer text): they are RE2,
linear in the text's length.
"""

from __future__ import annotations

from collections.abc import Iterable

from .core.saferegex import compile_safe, scrub

MASK = "***"

#: secrets shorter than this are not masked by value: they would mask ordinary words
MIN_SECRET_LEN = 4

_PATTERNS = tuple(
    (compile_safe(rx), repl)
    for rx, repl in (
        # URL userinfo: scheme://user:password@host, scheme://token@host
        (r"(?i)(\b[a-z][a-z0-9+.-]*://)[^/?#\s@'\"<>]+@", rf"\1{MASK}@"),
        # query parameters: ?key=..., &api_key=..., token=..., Bugzilla_api_key=...
        (r"(?i)([?&;][a-z0-9_.-]*(?:key|token|password|passwd|secret|auth)=)[^&\s'\"#]+",
         rf"\1{MASK}"),
        # headers, as text or as a dict repr
        (r"(?i)((?:x-redmine-api-key|x-api-key|api-key|private-token|authorization|"
         r"proxy-authorization|cookie|set-cookie)['\"]?\s*[:=]\s*['\"]?)"
         r"(?:(?:bearer|basic|token|digest)\s+)?[^\s'\",}]+", rf"\1{MASK}"),
        # a bare token
        (r"\b[0-9a-fA-F]{32,64}\b", MASK),
    )
)


def mask_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret value and every credential-shaped part masked."""
    text = scrub(text)
    for s in sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LEN}, key=len,
                    reverse=True):  # the longest first: one secret may contain another
        if s in text:
            text = text.replace(s, MASK)
    for rx, repl in _PATTERNS:
        text = rx.sub(repl, text)
    return text


def url_has_userinfo(url: str) -> bool:
    """Whether ``url`` carries credentials before its host (``scheme://user[:pass]@host``)."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return False
    return "@" in parts.netloc
