"""Figures as pictures an HTML page embeds: matplotlib figures as inline SVG, image bytes as data URIs."""

from __future__ import annotations

import base64
import io

from matplotlib.figure import Figure


def svg(fig: Figure) -> str:
    """The figure as an `<svg>` element (no XML prologue), laid out tight."""
    fig.tight_layout()
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"
