"""Does ``fit(random_seed=s)`` give the same draws twice in one process?

Fits each case twice with the same seed and compares the posterior draws bit for bit: the pooled BG/NBD on
the CDNOW sample (nutpie on its direct density), and the integrated HB Pareto/NBD with a covariate on the
customers of ``tests/test_group_offsets.py``'s large-groups test (``bayesclv.testing.segmented_customers``,
3 x 150 simulated customers, 2 x 200 draws), whose divergence count differed between the suite and a standalone run on the same code: without groups,
with the 3 groups, and with the groups on one thread (``cores=1``). Then the grouped fit once in each of three
separate processes, each after a different set of allocations (so the fit's arrays lie elsewhere in memory, as in
a user's session), compared with the first process's draws; and once more with the second and third process
compiling the kernels (an empty numba cache), as the first run after an install does.

Usage::

    uv run python validation/fit_reproducibility.py

Writes ``validation/results/fit_reproducibility.json`` and ``.md``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent


def _pooled():
    import bayesclv as bc

    rfm = bc.rfm_summary(bc.datasets.load_cdnow("sample"), value="value", calibration_end="1997-09-30")
    return bc.BetaGeoModel(), rfm, {"draws": 300, "chains": 2}


def _hb(group: str | None = None, **settings):
    """The integrated HB Pareto/NBD on the large-groups test's customers (grouped by segment or not)."""
    import bayesclv as bc
    from bayesclv.testing import segmented_customers

    def build():
        return (bc.HierarchicalParetoNBDModel(covariates=["x"], group=group), segmented_customers([150, 150, 150]),
                {"draws": 200, "chains": 2, **settings})

    return build


def twice(build, seed: int) -> dict:
    """Two fits of the case ``build()`` with ``random_seed=seed``: divergences and whether the draws are equal."""
    runs = []
    for _ in range(2):
        model, data, settings = build()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(data, random_seed=seed, progressbar=False, **settings)
        post = model.posterior
        runs.append((int(model.diagnostics["divergences"]),
                     {name: post[name].values.copy() for name in post.data_vars}))
    (d0, a), (d1, b) = runs
    gaps = {name: float(np.max(np.abs(a[name] - b[name]))) for name in a}
    return {"seed": seed, "divergences": [d0, d1], "identical": all(g == 0.0 for g in gaps.values()),
            "max_abs_difference": max(gaps.values())}


def _child(heap_seed: int, out: str) -> None:
    """Fit the grouped case once after ``heap_seed``'s allocations and save its draws to ``out`` (``.npz``)."""
    rng = np.random.default_rng(heap_seed)
    held = [np.empty(int(rng.integers(1, 30000))) for _ in range(int(rng.integers(0, 200)))]
    del held[::3]
    model, data, settings = _hb("segment")()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(data, random_seed=11, progressbar=False, **settings)
    np.savez(out, divergences=model.diagnostics["divergences"],
             **{name: model.posterior[name].values for name in model.posterior.data_vars})


def separate_processes(heap_seeds=(1, 2, 3), compile_kernels: bool = False) -> dict:
    """The grouped fit in one fresh process per heap seed: divergences and whether the draws equal the first's.

    With ``compile_kernels`` the processes after the first start from an empty numba cache (``NUMBA_CACHE_DIR``
    a new folder each), so they compile the kernels instead of loading them, as the first run after an install
    or a kernel change does."""
    with tempfile.TemporaryDirectory() as folder:
        runs = []
        for k, seed in enumerate(heap_seeds):
            out = str(Path(folder) / f"{seed}.npz")
            env = dict(os.environ)
            if compile_kernels and k > 0:
                env["NUMBA_CACHE_DIR"] = str(Path(folder) / f"numba{seed}")
            subprocess.run([sys.executable, __file__, "--child", str(seed), out], check=True, env=env)
            with np.load(out) as saved:
                runs.append({name: saved[name] for name in saved.files})
    names = [name for name in runs[0] if name != "divergences"]
    gaps = [max(float(np.max(np.abs(runs[0][name] - run[name]))) for name in names) for run in runs[1:]]
    return {"seed": 11, "divergences": [int(run["divergences"]) for run in runs],
            "identical": all(g == 0.0 for g in gaps), "max_abs_difference": max(gaps)}


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        _child(int(sys.argv[2]), sys.argv[3])
        return
    cases = {"pooled BG/NBD, CDNOW sample": _pooled,
             "integrated HB Pareto/NBD, covariate, no groups": _hb(),
             "integrated HB Pareto/NBD, covariate, 3 groups": _hb("segment"),
             "integrated HB Pareto/NBD, covariate, 3 groups, cores=1": _hb("segment", cores=1)}
    results = {name: twice(build, 11) for name, build in cases.items()}
    results["integrated HB Pareto/NBD, covariate, 3 groups, 3 processes"] = separate_processes()
    results["same, the 2nd and 3rd process compiling the kernels (empty numba cache)"] = separate_processes(
        compile_kernels=True)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    record = {"command": "uv run python validation/fit_reproducibility.py", "commit": commit,
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "results": results}
    out = HERE / "results"
    (out / "fit_reproducibility.json").write_text(json.dumps(record, indent=2))
    lines = ["# Same seed, same draws? Two fits in one process, and one fit in each of three processes", "",
             f"Command: `{record['command']}` (commit `{commit}`, {record['date']}).", "",
             "| case | seed | divergences (run 1, run 2, ...) | draws identical | max abs difference |",
             "|---|---|---|---|---|"]
    lines += [f"| {name} | {r['seed']} | {', '.join(map(str, r['divergences']))} | {r['identical']} | "
              f"{r['max_abs_difference']:.3g} |" for name, r in results.items()]
    (out / "fit_reproducibility.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
