"""Calibration of the Gauss-Legendre rules of the Pareto/NBD lifetime integral in lanes (``_lifetime_lanes.RULES``).

The covariate Pareto/NBD kernel integrates ``exp(g(Q))``, ``g(Q) = (1 - p) Q - q log(e^Q + c)`` (after shifting
the lower limit to ``Q = 0``: ``p`` the exponent on the smaller scale's factor, ``q`` the other's, ``c`` the
scale gap over ``m + t_x``), over ``[0, W]``, and with it the expectations of ``log(e^Q + c)``, ``Q``,
``1/e^Q`` and ``1/(e^Q + c)`` that make its gradient. For random ``(p, q, c, W)`` this script evaluates every
``n``-node rule on the whole interval against a 480-node reference (40 nodes on each of 12 pieces), and for each
rule of ``RULES`` (``n`` nodes where ``W <= width`` and the change of ``g``, ``C = W max(|g'(0)|, |g'(W)|)``, is at
most ``change``) reports the largest error over the samples in its bounds: the error of ``log J`` relative to
``max(1, |log J|)`` (the scale of a row's log-likelihood, to which ``log J`` is added), or of an expectation
(relative to ``max(1, |E|)`` for the two logarithms), whichever is larger, less twice the error
of the converged 14- and 16-node rules on the same sample (the rounding of the integrand itself, which grows
with ``q log(e^Q + c)`` and is no rule's truncation). The row-by-row rule's 8-node piece (``W <= 1``, ``C <= 3``)
is the baseline.

Two populations: moderate (``p, q`` in 0.01..300, ``c`` in 1e-4..1e4, ``W`` up to 3.2) and wide (``p, q`` up to
3,000, ``c`` in 1e-7..1e7), each with 3% of samples at ``c = 0`` (equal scales), log-uniform draws, samples with
``C > 6.5`` dropped (no rule takes them).

    nice -n 10 uv run python validation/lifetime_rule_calibration.py

Writes ``validation/results/lifetime_rule_calibration.md`` and ``.json``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from numpy.polynomial.legendre import leggauss

from bayesclv.formulas._lifetime_lanes import RULES

RESULTS = Path(__file__).resolve().parent / "results"
POPULATIONS = {"moderate": (300.0, 1e4), "wide": (3000.0, 1e7)}
SAMPLES, CHUNK = 600_000, 40_000
BASELINE = (8, 1.0, 3.0)  # the row-by-row rule's piece
CONVERGED = (14, 16)


def draw(rng, shape_max: float, gap_max: float):
    """``(p, q, c, W, C)`` of the samples whose change ``C`` is at most 6.5."""
    p, q = (np.exp(rng.uniform(np.log(0.01), np.log(shape_max), SAMPLES)) for _ in range(2))
    c = np.where(rng.random(SAMPLES) < 0.03, 0.0, np.exp(rng.uniform(-np.log(gap_max), np.log(gap_max), SAMPLES)))
    W = rng.uniform(0.0, 3.2, SAMPLES)

    def slope(u):
        e = np.exp(u)
        return 1.0 - p - q * e / (e + c)

    C = W * np.maximum(np.abs(slope(0.0 * W)), np.abs(slope(W)))
    keep = (C <= 6.5) & (W > 0)
    return p[keep], q[keep], c[keep], W[keep], C[keep]


def rule(p, q, c, W, n: int, pieces: int):
    """``log J`` and the four expectations by ``pieces`` equal pieces of an ``n``-node Gauss-Legendre rule."""
    x, w = leggauss(n)
    nodes = ((np.arange(pieces)[:, None] + (x[None, :] + 1.0) / 2.0).ravel() / pieces)
    weights = np.tile(w / 2.0, pieces) / pieces
    u = W[:, None] * nodes[None, :]
    e = np.exp(u)
    log_c = np.log(e + c[:, None])
    h = (1.0 - p[:, None]) * u - q[:, None] * log_c
    top = h.max(axis=1, keepdims=True)
    v = weights * np.exp(h - top)
    total = v.sum(axis=1)
    log_j = np.log(W) + top[:, 0] + np.log(total)
    expectations = [(v * f).sum(axis=1) / total for f in (log_c, u, 1.0 / e, 1.0 / (e + c[:, None]))]
    return log_j, expectations


def errors(p, q, c, W, sizes) -> dict[int, np.ndarray]:
    """Per sample and rule size: the larger of ``J``'s relative error and the expectations' errors."""
    ref_j, ref_e = rule(p, q, c, W, 40, 12)
    scales = [np.maximum(1.0, np.abs(ref_e[0])), np.maximum(1.0, np.abs(ref_e[1])), np.abs(ref_e[2]),
              np.abs(ref_e[3])]
    out = {}
    for n in sizes:
        log_j, e = rule(p, q, c, W, n, 1)
        out[n] = np.maximum(np.abs(log_j - ref_j) / np.maximum(1.0, np.abs(ref_j)),
                            np.max([np.abs(a - b) / s for a, b, s in zip(e, ref_e, scales, strict=True)], axis=0))
    return out


def main() -> None:
    sizes = sorted({n for n, _, _ in (*RULES, BASELINE)} | set(CONVERGED))
    report = {}
    for seed, (name, (shape_max, gap_max)) in enumerate(POPULATIONS.items(), start=5):
        p, q, c, W, C = draw(np.random.default_rng(seed), shape_max, gap_max)
        err = {n: np.empty(p.size) for n in sizes}
        for lo in range(0, p.size, CHUNK):
            part = slice(lo, lo + CHUNK)
            for n, v in errors(p[part], q[part], c[part], W[part], sizes).items():
                err[n][part] = v
        floor = np.maximum(*(err[n] for n in CONVERGED))
        rows = []
        for n, width, change in (BASELINE, *RULES):
            inside = (W <= width) & (C <= change)
            excess = err[n][inside] - 2.0 * floor[inside]
            worst = int(np.argmax(excess))
            rows.append({"nodes": n, "width": width, "change": change, "samples": int(inside.sum()),
                         "max_error": float(err[n][inside].max()), "max_excess": float(excess[worst]),
                         "worst": {k: float(v[inside][worst]) for k, v in (("p", p), ("q", q), ("c", c), ("W", W),
                                                                             ("C", C))}})
        report[name] = {"samples": int(p.size), "rules": rows}
        print(name, json.dumps(rows), flush=True)
    meta = {"started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "rules": RULES}
    (RESULTS / "lifetime_rule_calibration.json").write_text(json.dumps({"meta": meta, "results": report}, indent=1))
    lines = ["# Pareto/NBD lifetime integral in lanes: calibration of the Gauss-Legendre rules\n",
             f"`nice -n 10 uv run python validation/lifetime_rule_calibration.py`; {meta['started']}. Each rule: "
             "`n` nodes on a piece at most `width` wide in `Q` over which the log-integrand changes by at most "
             "`change`; error = the larger of `log J`'s error relative to max(1, |log J|) and its gradient expectations' "
             "errors against a "
             "480-node reference; excess = that less twice the converged 14/16-node rules' error on the same "
             "sample (rounding of the integrand). First row of each table: the row-by-row rule's 8-node piece "
             "(the baseline).\n"]
    for name, r in report.items():
        lines += [f"## {name} ({r['samples']} samples)\n", "| nodes | width | change | samples in bounds | max error "
                  "| max excess | worst sample (p, q, c, W, C) |", "|---|---|---|---|---|---|---|"]
        for row in r["rules"]:
            w = row["worst"]
            lines.append(f"| {row['nodes']} | {row['width']} | {row['change']} | {row['samples']} | "
                         f"{row['max_error']:.1e} | {row['max_excess']:.1e} | {w['p']:.3g}, {w['q']:.3g}, "
                         f"{w['c']:.3g}, {w['W']:.3f}, {w['C']:.3f} |")
        lines.append("")
    (RESULTS / "lifetime_rule_calibration.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
