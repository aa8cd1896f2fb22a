"""CPU seconds of each contract-table fit (tests/test_contract.py's ROWS), first fits in one process.

Run from the repository root; run twice to see warm caches (PyTensor's compile directory
and the numba kernels' caches)::

    uv run python benchmarks/contract_fit_cpu.py [--out benchmarks/results/contract_fit_cpu.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
from pathlib import Path


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="JSON file for the per-row CPU seconds")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import bayesclv as bc
    import test_contract as contract

    rfm = bc.rfm_summary(bc.datasets.load_cdnow("sample"), value="value", calibration_end="1997-09-30")
    frames = contract.frames.__wrapped__(rfm)
    seconds = {}
    for row in contract.ROWS:
        start = _cpu()
        contract._fit(row, frames[row.data])
        seconds[row.name] = round(_cpu() - start, 2)
        print(f"{row.name:48s} {seconds[row.name]:7.1f}", flush=True)
    print(f"{'all fits':48s} {sum(seconds.values()):7.1f}")
    if args.out:
        args.out.write_text(json.dumps({"cpu_s": seconds}, indent=1) + "\n")


if __name__ == "__main__":
    main()
