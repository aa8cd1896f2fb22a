"""(M)BG/CNBD-k and MBG/NBD formulas: published CDNOW values, the choice of k, the full reference grid.

1. Maximum likelihood (scipy on the summed kernel) of the MBG/NBD on the CDNOW
   sample against the published estimates (lifetimes' and PyMC-Marketing's
   reference values, "close to BTYDplus"), and of the BG/NBD (= BG/CNBD-1) against
   Fader, Hardie & Lee (2005).
2. The k-selection table (``cnbd.select_k``, k = 1..8, both variants) on the CDNOW
   sample and the full CDNOW cohort (39-week calibration).
3. The log-likelihood against the independent numerical integration of
   ``tests/reference_cnbd.py`` on every point of the extreme grid (parameters
   1e-3, 1, 1e3; histories up to x = 500, T = 1000; k = 2 and 5; both variants);
   ``tests/test_cnbd.py`` runs a part of it.

Usage::

    nice -n 10 uv run python validation/cnbd_formulas.py [--skip-grid]

Writes ``validation/results/cnbd_formulas.{json,md}``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

import bayesclv as bc
from bayesclv.formulas import NP, cnbd, mbgnbd
from bayesclv.formulas._mle import maximum_likelihood

RESULTS = Path(__file__).parent / "results"
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

PUBLISHED = {
    "MBG/NBD": {"values": (0.525, 6.183, 0.891, 1.614), "loglik": None,
                "source": "lifetimes tests/test_estimation.py (ModifiedBetaGeoFitter on the CDNOW sample, "
                          "'close to BTYDplus'); PyMC-Marketing tests/clv/models/test_modified_beta_geo.py"},
    "BG/NBD = BG/CNBD-1": {"values": (0.2426, 4.414, 0.793, 2.426), "loglik": -9582.43,
                           "source": "Fader, Hardie & Lee (2005), Marketing Science 24(2)"},
}
EXTREME_PARAMS = list(itertools.product((1e-3, 1.0, 1e3), repeat=4))
EXTREME_HISTORIES = np.array([(0, 0, 0.01), (0, 0, 1000), (1, 0.5, 1000), (1, 1000, 1000), (3, 2, 2.5),
                              (30, 1, 78), (500, 1, 1000), (500, 999.99, 1000), (500, 1000, 1000),
                              (500, 10, 10)], dtype=float)


def cdnow(kind: str) -> dict[str, np.ndarray]:
    rfm = bc.rfm_summary(bc.datasets.load_cdnow(kind), calibration_end="1997-09-30", litt=True)
    return {c: rfm[c].to_numpy(dtype=float) for c in ("litt", "frequency", "recency", "T")}


def published_checks(data) -> list[dict]:
    rows = []
    weight = np.ones(data["T"].size)
    for name, modified in (("MBG/NBD", True), ("BG/NBD = BG/CNBD-1", False)):
        tables = cnbd.loglik_tables(0.0, data["frequency"], data["recency"], data["T"], weight, k=1,
                                    modified=modified)
        params, value = maximum_likelihood(cnbd._summed_loglik_kernel, tables, (1.0, 3.0, 1.0, 3.0))
        want = PUBLISHED[name]
        rows.append({"model": name, "source": want["source"], "loglik": value, "loglik_published": want["loglik"],
                     "parameters": dict(zip(cnbd.PARAMETERS, params.tolist(), strict=True)),
                     "published": dict(zip(cnbd.PARAMETERS, want["values"], strict=True)),
                     "relative_error": dict(zip(cnbd.PARAMETERS, (params / np.array(want["values"]) - 1).tolist(),
                                                strict=True))})
    rows[0]["mbgnbd_module_loglik"] = float(mbgnbd.loglik(data["frequency"], data["recency"], data["T"],
                                                          *rows[0]["parameters"].values(), xp=NP).sum())
    return rows


def k_tables(kind: str, data, k_max: int) -> list[dict]:
    out = []
    for modified in (False, True):
        start = time.process_time()
        table = cnbd.select_k(data["litt"], data["frequency"], data["recency"], data["T"], k_max=k_max,
                              modified=modified)
        cpu = time.process_time() - start
        for i in range(k_max):
            out.append({"data": kind, "model": "MBG/CNBD-k" if modified else "BG/CNBD-k",
                        **{name: float(table[name][i]) for name in table}, "cpu_s_all_k": cpu})
    return out


def reference_grid() -> dict:
    import reference_cnbd as ref

    H = EXTREME_HISTORIES
    litt = np.where(H[:, 0] > 0, H[:, 0] * np.log(np.maximum(H[:, 1], 1e-3) / np.maximum(H[:, 0], 1.0)) - 0.1 * H[:, 0],
                    0.0)
    worst, cases, start = 0.0, 0, time.process_time()
    worst_case = None
    for k, modified, params in itertools.product((2, 5), (False, True), EXTREME_PARAMS):
        refmod = ref.mbgcnbd if modified else ref.bgcnbd
        got = cnbd.loglik(litt, *H.T, *params, k=k, modified=modified, xp=NP)
        want = refmod.loglik(litt, *H.T, *params, k)
        err = np.abs(got - want) / np.maximum(1.0, np.abs(want))
        cases += err.size
        if err.max() > worst:
            i = int(err.argmax())
            worst = float(err.max())
            worst_case = {"k": k, "modified": modified, "params": params, "history": H[i].tolist(),
                          "got": float(got[i]), "reference": float(want[i])}
    return {"cases": cases, "worst_error": worst, "worst_case": worst_case, "cpu_s": time.process_time() - start,
            "error": "|ours - reference| / max(1, |reference|) of the log-likelihood"}


def markdown(result: dict) -> str:
    lines = ["# (M)BG/CNBD-k and MBG/NBD: published values, choice of k, reference grid", "",
             "## Published CDNOW estimates (maximum likelihood on the summed kernel, CDNOW sample)", "",
             "| model | parameter | published | ours | relative error |", "|---|---|---|---|---|"]
    for row in result["published"]:
        for name in cnbd.PARAMETERS:
            lines.append(f"| {row['model']} | {name} | {row['published'][name]} | {row['parameters'][name]:.4f} | "
                         f"{row['relative_error'][name]:+.2e} |")
        ll = f"{row['loglik']:.2f}" + (f" (published {row['loglik_published']})" if row["loglik_published"] else "")
        lines.append(f"| {row['model']} | log-likelihood | | {ll} | |")
    lines += ["", "Sources: " + "; ".join(f"{r['model']}: {r['source']}" for r in result["published"]), "",
              "## k by maximum likelihood (the log-likelihoods include the inter-purchase-time constant)", "",
              "| data | model | k | r | alpha | a | b | log-likelihood |", "|---|---|---|---|---|---|---|---|"]
    for row in result["k_tables"]:
        lines.append(f"| {row['data']} | {row['model']} | {row['k']:.0f} | {row['r']:.4f} | {row['alpha']:.4f} | "
                     f"{row['a']:.4f} | {row['b']:.4f} | {row['loglik']:.2f} |")
    if "reference_grid" in result:
        grid = result["reference_grid"]
        lines += ["", "## Log-likelihood against numerical integration (tests/reference_cnbd.py)", "",
                  f"{grid['cases']} cases (k = 2, 5; both variants; 81 extreme parameter points x "
                  f"{len(EXTREME_HISTORIES)} histories): worst {grid['error']} = {grid['worst_error']:.2e}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-grid", action="store_true", help="leave out the reference grid (minutes)")
    parser.add_argument("--k-max", type=int, default=8)
    args = parser.parse_args()
    sample = cdnow("sample")
    result = {"published": published_checks(sample),
              "k_tables": k_tables("CDNOW sample", sample, args.k_max) + k_tables("CDNOW full", cdnow("full"),
                                                                                 args.k_max)}
    if not args.skip_grid:
        result["reference_grid"] = reference_grid()
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cnbd_formulas.json").write_text(json.dumps(result, indent=2))
    (RESULTS / "cnbd_formulas.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
