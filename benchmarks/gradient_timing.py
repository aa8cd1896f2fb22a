"""Time one log-density gradient of each model on CDNOW full (what NUTS pays per leapfrog step).

Usage::

    uv run python benchmarks/gradient_timing.py

Writes ``benchmarks/results/gradient_timing.json``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import bayesclv as bc
from bayesclv.models.engine import compress_rows


def main(repeats: int = 50) -> None:
    rfm = bc.rfm_summary(bc.datasets.load_cdnow("full"), value="value", calibration_end="1997-09-30")
    distinct, _ = compress_rows(rfm, ["frequency", "recency", "T"])
    results = {"customers": len(rfm), "distinct_histories": len(distinct), "gradient_ms": {}}
    for cls in (bc.BetaGeoModel, bc.ParetoNBDModel, bc.GammaGammaModel):
        model = cls().build_model(rfm)
        dlogp = model.compile_dlogp()
        point = model.initial_point()
        dlogp(point)
        start = time.perf_counter()
        for _ in range(repeats):
            dlogp(point)
        ms = round((time.perf_counter() - start) / repeats * 1000, 2)
        results["gradient_ms"][cls.__name__] = ms
        print(f"{cls.__name__}: {ms} ms per gradient", flush=True)
    path = Path(__file__).parent / "results" / "gradient_timing.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
