"""Atlassian Document Format (Jira Cloud's rich text) to plain text and back, with no I/O.

Comments, descriptions and textarea fields come as ADF documents on REST v3: the bridge reads
their text (blocks separated by blank lines, hard breaks kept) and writes its notes as one
paragraph per blank-line block.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ...core.saferegex import compile_safe, scrub

_BLOCKS = {"doc", "paragraph", "heading", "blockquote", "codeBlock", "bulletList",
           "orderedList", "listItem", "panel", "table", "tableRow", "tableHeader",
           "tableCell", "rule", "mediaSingle", "mediaGroup", "expand", "nestedExpand",
           "decisionList", "decisionItem", "taskList", "taskItem"}


def adf_to_text(node: Any) -> str:
    """The plain text of an ADF document: blocks separated by blank lines, hard breaks kept."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node
    if not isinstance(node, Mapping):
        return ""

    def inline(n: Mapping[str, Any]) -> str:
        t = n.get("type")
        if t == "text":
            return str(n.get("text") or "")
        if t == "hardBreak":
            return "\n"
        attrs = n.get("attrs") or {}
        if t in ("mention", "emoji", "status", "date"):
            return str(attrs.get("text") or attrs.get("shortName") or attrs.get("timestamp")
                       or "")
        if t in ("inlineCard", "blockCard", "embedCard"):
            return str(attrs.get("url") or "")
        return "".join(inline(c) for c in n.get("content") or () if isinstance(c, Mapping))

    def blocks(n: Mapping[str, Any]) -> list[str]:
        content = [c for c in n.get("content") or () if isinstance(c, Mapping)]
        if not any(c.get("type") in _BLOCKS for c in content):
            text = inline(n)
            return [text] if text else []
        out: list[str] = []
        for c in content:
            if c.get("type") in _BLOCKS:
                sub = blocks(c)
                if c.get("type") == "listItem":
                    sub = ["- " + "\n".join(sub)] if sub else []
                out.extend(sub)
            else:
                text = inline(c)
                if text:
                    out.append(text)
        if n.get("type") in ("bulletList", "orderedList"):
            return ["\n".join(out)] if out else []
        return out

    return "\n\n".join(blocks(node))


#: a blank line (RE2: the note text quotes customer comments)
_BLANK_LINES = compile_safe(r"\n\s*\n")


def text_to_adf(text: str) -> dict[str, Any]:
    """Plain text as an ADF document: a paragraph per blank-line block, hard breaks for lines."""
    paragraphs: list[dict[str, Any]] = []
    for block in _BLANK_LINES.split(scrub(text.strip())):
        if not block.strip():
            continue
        content: list[dict[str, Any]] = []
        for i, line in enumerate(block.split("\n")):
            if i:
                content.append({"type": "hardBreak"})
            if line:
                content.append({"type": "text", "text": line})
        paragraphs.append({"type": "paragraph", "content": content})
    return {"type": "doc", "version": 1, "content": paragraphs}
