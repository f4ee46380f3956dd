"""The log filter masks secrets wherever they hide; the JSON formatter keeps extra fields."""

from __future__ import annotations

import io
import json
import logging

import pytest

from tracker_bridge.observability import SecretFilter, setup_logging

SECRET = "s3cret-Passphrase!"
HEX = "f00dfeedf00dfeedf00dfeedf00dfeedf00dfeed"


@pytest.mark.parametrize("text", [
    f"GET https://bz.example.org/rest/bug?Bugzilla_api_key={HEX}&ids=1",
    f"GET https://redmine.example.org/issues.json?key={HEX}",
    f"GET https://x.example.org/a?limit=1&access_token={SECRET}",
    f"headers: {{'X-Redmine-API-Key': '{HEX}', 'Accept': '*/*'}}",
    f"Authorization: Bearer {SECRET}",
    f"proxy https://bridge:{SECRET}@proxy.example.org:3128",
    f"the configured value {SECRET} itself",
    f"a bare token {HEX} in a message",
])
def test_secrets_are_masked(text: str) -> None:
    out = SecretFilter([SECRET]).redact(text)
    assert SECRET not in out and HEX not in out and "***" in out


def test_ordinary_text_is_left_alone() -> None:
    text = "desk:42: rejected: labels field does not accept sla-high (key desk:42)"
    assert SecretFilter([SECRET]).redact(text) == text


def test_arguments_tracebacks_and_extra_fields_are_masked() -> None:
    out = io.StringIO()
    setup_logging("json", "DEBUG", [SECRET], stream=out)
    log = logging.getLogger("tracker_bridge.test")
    try:
        raise RuntimeError(f"failed with {SECRET}")
    except RuntimeError:
        log.exception("request %s failed", f"?key={HEX}", extra={"url": f"u?token={SECRET}",
                                                                  "tracker": "desk"})
    text = out.getvalue()
    assert SECRET not in text and HEX not in text
    doc = json.loads(text)
    assert doc["tracker"] == "desk" and doc["level"] == "error" and "RuntimeError" in doc["exc"]
