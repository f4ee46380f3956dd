"""The browser helper (tests/browser.py) sees what it promises to see: a script error, a
console error, a dialog, a request to another host, the rendered DOM and a screenshot."""

from __future__ import annotations

from pathlib import Path


def test_the_helper_catches_errors_and_outside_requests(tmp_path: Path) -> None:
    from browser import open_page

    page = tmp_path / "bad.html"
    page.write_text("""<!DOCTYPE html><html><body><p id="x">static</p>
<img src="https://example.invalid/pixel.png">
<script>
document.getElementById("x").textContent = "changed by script";
console.error("boom");
alert("hi");
undefinedFunction();
</script></body></html>""")
    with open_page(page, screenshot=tmp_path / "bad.png") as p:
        p.page.wait_for_function("document.readyState === 'complete'")
        assert p.page.inner_text("#x") == "changed by script"
        assert "changed by script" in p.dom
        assert any("boom" in e for e in p.errors)
        assert any("undefinedFunction" in e for e in p.errors)
        assert p.dialogs == ["alert: hi"]
        assert p.external == ["https://example.invalid/pixel.png"]
    assert (tmp_path / "bad.png").read_bytes()[:4] == b"\x89PNG"
