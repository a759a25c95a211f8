"""Output: tables and sentences for a terminal, the same data as JSON or YAML.

Names, messages, reasons and URIs come from the cluster, where anyone who can write a status, an
annotation or a termination message chose them. Printed raw, an escape sequence in a condition
message could recolour, hide or rewrite what the terminal shows. So every control character is
shown instead of obeyed, the way kubectl shows ESC as `^[`. JSON and YAML escape them already.
"""

from __future__ import annotations

import json

import yaml

# Line breaks and tabs inside one value become a space: a message cannot add rows to a table.
_SPACES = {ord(c): " " for c in "\t\n\v\f\r"}
_CARETS = {code: f"^{chr(code + 64)}" for code in range(0x20) if code not in _SPACES}  # ESC -> ^[
_C1 = {code: f"\\x{code:02x}" for code in range(0x80, 0xA0)}  # 0x9b alone starts a sequence too
# Bidirectional overrides and isolates reorder what is displayed ("Trojan Source").
_BIDI = {code: f"\\u{code:04x}" for code in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
_VISIBLE: dict[int, str] = {**_SPACES, **_CARETS, 0x7F: "^?", **_C1, **_BIDI}


def printable(value: str) -> str:
    """One cluster-supplied value, safe for a terminal and on one line."""
    return value.translate(_VISIBLE)


def printable_text(text: str) -> str:
    """Several lines built by the plugin: each line made safe, the line breaks kept."""
    return "\n".join(printable(line) for line in text.split("\n"))


def render(data: object, text: str, output: str) -> str:
    """What to print for -o json|yaml (the data) or table (the text)."""
    if output == "json":
        return json.dumps(data, indent=2, default=str)
    if output == "yaml":
        return yaml.safe_dump(json.loads(json.dumps(data, default=str)), sort_keys=False).rstrip()
    return printable_text(text)
