"""GGom/NBD and DERT against their independent references on the full extreme grids, and the CDNOW fit.

Usage::

    uv run python validation/ggomnbd_reference.py

- GGom/NBD log-likelihood on all 3^5 parameter combinations (r, alpha, s, beta in 1e-3..1e3,
  b in 1e-4..3) x 10 extreme histories against QUADPACK integration of the individual-level model
  (tests/reference_ggomnbd.py); the tests use every 6th combination.
- The Pareto/NBD limit (b = 1e-14, beta = b beta_P) on 3^4 x 10 cases against the library's Pareto/NBD.
- The maximum-likelihood fit on the CDNOW sample beside Bemmaor & Glady (2012) and CLVTools.
- Pareto/NBD DERT against FHL's closed form (mpmath) on a grid of discount rates.

Writes ``validation/results/ggomnbd_reference.json``.
"""

from __future__ import annotations

import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy import optimize

import bayesclv as bc
from bayesclv.formulas import NP, ggomnbd, paretonbd
from bayesclv.formulas._ggom_integral import summed_loglik_kernel
from bayesclv.models.engine import compress_rows

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from reference_ggomnbd import ggomnbd as gref  # noqa: E402
from reference_residual import paretonbd_residual as pn_ref  # noqa: E402

HISTORIES = np.array([(0, 0, 0.01), (0, 0, 1000), (1, 0, 1000), (1, 1000, 1000), (3, 2, 2.5), (30, 1, 78),
                      (500, 0, 1000), (500, 999.99, 1000), (500, 10, 10), (2, 30.43, 38.86)], dtype=float)
EXTREMES = (1e-3, 1.0, 1e3)


def _relative(got, want):
    return np.abs(got - want) / np.maximum(1.0, np.abs(want))


def main() -> None:
    out = {}
    start = time.process_time()
    x, t_x, T = HISTORIES.T
    errors = [_relative(ggomnbd.loglik(x, t_x, T, *p, xp=NP), gref.loglik(x, t_x, T, *p))
              for p in itertools.product(EXTREMES, EXTREMES, (1e-4, 0.1, 3.0), EXTREMES, EXTREMES)]
    out["loglik_vs_quadpack"] = {"cases": int(np.size(errors)), "max_relative_error": float(np.max(errors))}
    errors = [_relative(ggomnbd.loglik(x, t_x, T, r, a, 1e-14, s, 1e-14 * bp, xp=NP),
                        paretonbd.loglik(x, t_x, T, r, a, s, bp, xp=NP))
              for r, a, s, bp in itertools.product(EXTREMES, repeat=4)]
    out["pareto_limit_b_1e-14"] = {"cases": int(np.size(errors)), "max_relative_error": float(np.max(errors))}
    errors = [np.abs(paretonbd.discounted_expected_residual_transactions(d, x[:4], t_x[:4], T[:4], *p)
                     / pn_ref.dert_mpmath(d, x[:4], t_x[:4], T[:4], *p) - 1.0)
              for d in (1e-4, 0.0027, 0.1, 10.0)
              for p in [(0.553, 10.578, 0.606, 11.669), (2.0, 1.0, 3.0, 50.0), (0.1, 100.0, 0.01, 0.01)]]
    out["paretonbd_dert_vs_fhl_closed_form"] = {"cases": int(np.size(errors)), "max_relative_error": float(np.max(errors))}

    rfm = bc.rfm_summary(bc.datasets.load_cdnow("sample"), value="value", calibration_end="1997-09-30")
    rows, _ = compress_rows(rfm, ["frequency", "recency", "T"])
    tables = ggomnbd.loglik_tables(*(rows[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T", "weight")))

    def objective(theta):
        value, grad = summed_loglik_kernel(*(np.array([p]) for p in np.exp(theta)), *tables)
        return -value, -grad[:, 0] * np.exp(theta)

    res = optimize.minimize(objective, np.log([0.5, 2.0, 0.5, 0.5, 0.5]), jac=True, method="L-BFGS-B",
                            options={"ftol": 1e-15, "gtol": 1e-9, "maxiter": 2000})
    fit = dict(zip(ggomnbd.PARAMETERS, np.exp(res.x).tolist(), strict=True))
    out["cdnow_sample_mle"] = {
        "ours": {**fit, "beta_over_b": fit["beta"] / fit["b"], "loglik": -float(res.fun)},
        "bemmaor_glady_2012": {"r": 0.553, "alpha": 10.578, "b": 0.0002, "s": 0.603, "beta": 0.0026,
                               "loglik": -9594.98},
        "clvtools": {"r": 0.55313, "alpha": 10.5758, "b": 0.0000011, "s": 0.60682, "beta": 0.000013,
                     "loglik": -9594.9762},
        "paretonbd_beta": 11.669,
    }
    out["cpu_seconds"] = round(time.process_time() - start, 1)
    path = Path(__file__).parent / "results" / "ggomnbd_reference.json"
    path.write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
