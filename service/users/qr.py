"""TOTP enrolment as a QR code, drawn here (segno): the secret never goes to an online QR service."""

from __future__ import annotations

import segno


def qr_svg_data_uri(uri: str) -> str:
    """An ``data:image/svg+xml`` URI of the QR code for ``uri`` (the console's CSP allows data: images)."""
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=2)


def qr_terminal(uri: str) -> str:
    """The QR code as text for a terminal (two rows per line, block characters)."""
    code = segno.make(uri, error="m")
    rows = [[bool(cell) for cell in row] for row in code.matrix_iter(scale=1, border=2)]
    if len(rows) % 2:
        rows.append([False] * len(rows[0]))
    glyph = {(True, True): "█", (True, False): "▀", (False, True): "▄", (False, False): " "}
    lines = []
    for top, bottom in zip(rows[0::2], rows[1::2], strict=True):
        lines.append("".join(glyph[(t, b)] for t, b in zip(top, bottom, strict=True)))
    return "\n".join(lines)
