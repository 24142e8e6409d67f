"""Server-side SVG charts for the dashboard: no JavaScript, no CDN, works offline."""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from apps.overview import DayOfSends

SERIES = (("successful", "#2e7d32"), ("failed", "#f9a825"), ("errored", "#c62828"))
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 720, 220, 44, 28, 12


def _nice_ceiling(value: int) -> int:
    """The smallest 1, 2 or 5 times a power of ten at or above ``value`` (at least 1), for a readable axis."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return max(1, step * factor)
        step *= 10


def sends_chart(days: Sequence[DayOfSends]) -> SafeString:
    """Stacked bars per day: successful, failed and errored deliveries."""
    ceiling = _nice_ceiling(max((day.total for day in days), default=0))
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    slot = plot_w / max(1, len(days))
    bar_w = max(2.0, slot * 0.7)
    shapes = []
    for index, day in enumerate(days):
        x = LEFT + index * slot + (slot - bar_w) / 2
        base = TOP + plot_h
        for name, color in SERIES:
            value = getattr(day, name)
            if not value:
                continue
            height = plot_h * value / ceiling
            base -= height
            shapes.append(
                (
                    f"{x:.1f}",
                    f"{base:.1f}",
                    f"{bar_w:.1f}",
                    f"{height:.1f}",
                    color,
                    f"{day.day}: {value} {name}",
                )
            )
    bars = format_html_join(
        "",
        '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}</title></rect>',
        shapes,
    )
    labels = format_html_join(
        "",
        '<text x="{}" y="{}" font-size="10" text-anchor="middle">{}</text>',
        (
            (f"{LEFT + index * slot + slot / 2:.1f}", HEIGHT - 10, day.day.strftime("%m-%d"))
            for index, day in enumerate(days)
            if index % 5 == 0 or index == len(days) - 1
        ),
    )
    legend = format_html_join(
        "",
        '<rect x="{}" y="2" width="10" height="10" fill="{}"/><text x="{}" y="11" font-size="11">{}</text>',
        ((LEFT + i * 110, color, LEFT + i * 110 + 14, name) for i, (name, color) in enumerate(SERIES)),
    )
    return format_html(
        '<svg class="herald-chart" viewBox="0 0 {w} {h}" width="100%" role="img" '
        'aria-label="Deliveries per day over the last {n} days">'
        '<line x1="{l}" y1="{t}" x2="{l}" y2="{b}" stroke="#888"/>'
        '<line x1="{l}" y1="{b}" x2="{r}" y2="{b}" stroke="#888"/>'
        '<text x="{lx}" y="{ty}" font-size="10" text-anchor="end">{top}</text>'
        '<text x="{lx}" y="{b}" font-size="10" text-anchor="end">0</text>'
        "{legend}{bars}{labels}</svg>",
        w=WIDTH,
        h=HEIGHT,
        n=len(days),
        l=LEFT,
        t=TOP,
        b=TOP + plot_h,
        r=WIDTH - 8,
        lx=LEFT - 4,
        ty=TOP + 8,
        top=ceiling,
        legend=legend,
        bars=bars,
        labels=labels,
    )
