"""Numbers as the book reports them: ``mean +- sd`` and plain-text tables.

One convention for every chapter and benchmark: a spread is the *sample*
standard deviation (``ddof=1``) over seeds or images, and a single value is
printed without one. Non-finite values are dropped (and counted) rather than
turning the whole mean into NaN silently.
"""
from __future__ import annotations

import math

import numpy as np


def mean_sd(values, *, scale: float = 1.0) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``; 0.0 for one value) of the finite ``values`` times ``scale``."""
    v = _finite(values, "values") * scale
    if v.size == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0


def fmt_mean_sd(values, *, digits: int = 2, scale: float = 1.0, unit: str = "") -> str:
    """``"12.34 +- 0.56"`` (sample sd over ``values``), ``"12.34"`` for one value, ``"-"`` for none."""
    if not isinstance(digits, int) or isinstance(digits, bool) or digits < 0:
        raise ValueError(f"digits must be an int >= 0, got {digits!r}")
    v = _finite(values, "values") * scale
    if v.size == 0:
        return "-"
    m = f"{v.mean():.{digits}f}"
    text = f"{m} +- {v.std(ddof=1):.{digits}f}" if v.size > 1 else m
    return f"{text}{unit}"


def table(rows, cols, title: str | None = None) -> str:
    """A left-aligned plain-text table of ``rows`` (dicts) in the order of ``cols``; printed and returned."""
    if isinstance(cols, str) or not all(isinstance(c, str) for c in cols):
        raise TypeError(f"cols must be a list of column names (strings), got {cols!r}")
    rows = list(rows)
    if not all(isinstance(r, dict) for r in rows):
        raise TypeError("rows must be dicts of column name -> value")
    widths = [max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols]
    lines = ([f"## {title}"] if title else [])
    lines.append("  ".join(c.ljust(w) for c, w in zip(cols, widths)).rstrip())
    lines += ["  ".join(str(r.get(c, "")).ljust(w) for c, w in zip(cols, widths)).rstrip() for r in rows]
    text = "\n".join(lines)
    print(text + "\n", flush=True)
    return text


def method_rows(methods: dict, **label) -> list[dict]:
    """Table rows from per-image results ``{method: {"psnr": [...], "ssim": [...], "sharpness": [...],
    "seconds": s}}`` (as ``benchmarks/medical.py`` stores them): mean +- sd over images, with ``label``'s
    columns first."""
    rows = []
    for name, e in methods.items():
        row = {**label, "method": name, "PSNR": fmt_mean_sd(e["psnr"]), "SSIM": fmt_mean_sd(e["ssim"], digits=3)}
        if "sharpness" in e:
            row["sharpness"] = fmt_mean_sd(e["sharpness"])
        if "seconds" in e:
            row["s/img"] = f"{e['seconds']:.2f}"
        rows.append(row)
    return rows


def paired_rows(pairs: list, **label) -> list[dict]:
    """Table rows from paired differences ``[{"a": name, "b": name, "diff": [per image]}]``: the difference
    a - b as mean +- sd over images and how many images it favours a."""
    return [{**label, "difference (paired)": f"{p['a']} - {p['b']}", "mean +- sd": fmt_mean_sd(p["diff"]),
             "images better": f"{int(np.sum(_finite(p['diff'], 'diff') > 0))}/{len(p['diff'])}"} for p in pairs]


def _finite(values, name):
    if values is None or isinstance(values, (str, bytes, dict)):
        raise TypeError(f"{name} must be numbers (a list, array or tensor), got {type(values).__name__}")
    try:
        v = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be numbers (a list, array or tensor), got {type(values).__name__}") from None
    return v[np.isfinite(v)]
