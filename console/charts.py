"""Charts as inline SVG (no script, no CDN): horizontal bars of shares 0..1 per row."""

from __future__ import annotations

from collections.abc import Sequence

from console.html import e

ROW, LABEL_W, BAR_W = 22, 130, 300


def bars(title: str, rows: Sequence[tuple[str, float | None, float | None]],
         legend: tuple[str, str] = ("", "")) -> str:
    """One row per (label, first share, second share or None); shares 0..1."""
    height = ROW * len(rows) + 34
    width = LABEL_W + BAR_W + 60
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{e(title)}" xmlns="http://www.w3.org/2000/svg">'
             f'<text x="4" y="14">{e(title)}</text>']
    for i, (label, a, b) in enumerate(rows):
        y = 24 + i * ROW
        parts.append(f'<text x="4" y="{y + 13}">{e(label[:10])}</text>')
        for j, (share, cls) in enumerate(((a, "bar"), (b, "bar2"))):
            if share is None:
                continue
            w = max(0.0, min(1.0, share)) * BAR_W
            h = (ROW - 6) / 2
            parts.append(f'<rect class="{cls}" x="{LABEL_W}" y="{y + j * h:.1f}" '
                         f'width="{w:.1f}" height="{h - 1:.1f}"/>')
        text = " / ".join(f"{s:.0%}" for s in (a, b) if s is not None) or "—"
        parts.append(f'<text x="{LABEL_W + BAR_W + 4}" y="{y + 13}">{e(text)}</text>')
    if any(legend):
        parts.append(f'<text x="{LABEL_W}" y="{height - 2}">■ {e(legend[0])}  □ {e(legend[1])}'
                     f"</text>")
    parts.append("</svg>")
    return "".join(parts)
