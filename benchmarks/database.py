"""Database benchmark: rfm_summary of 1M / 10M / 100M transactions in DuckDB against the pandas and dask paths.

Synthetic transactions (``generate``: vectorised, in chunks, so any size fits
in memory) are written once per size to a DuckDB database file (table
``transactions``: ``customer_id BIGINT, date TIMESTAMP, value DOUBLE``) and to a
folder of Parquet files with the same rows. A row's customer is uniform among
``rows / 10`` customers, its time uniform over two years, its value Gamma
distributed; the summary has a calibration end six months before the end
(``KWARGS``), so every column of the pandas path is computed.

Each path runs in its own subprocess, so its wall time, CPU time and peak
memory are its own (peak RSS is ``ru_maxrss`` from ``os.wait4``; the process
tree is also polled every 0.1 s and killed if it passes ``--memory-cap-gb``,
which is then recorded instead of a time; the data are generated in a subprocess of
their own, so that no measured process inherits its peak):

* ``duckdb``: ``rfm_summary("<file>.duckdb", table="transactions", ...)``;
* ``duckdb_2gb``: the same through a connection opened with ``memory_limit = 2GB``
  (DuckDB's default limit is 80% of RAM; beyond its limit it spills to disk);
* ``duckdb_parquet``: ``rfm_summary("<folder>", ...)`` (the Parquet files read by DuckDB);
* ``duckdb_chunks``: ``rfm_summary_chunks`` through the 2 GB connection, 1M customers
  a chunk, each chunk dropped after use: memory bounded whatever the numbers of
  transactions and customers;
* ``pandas``: ``pd.read_parquet(folder)`` then ``rfm_summary(frame, ...)``;
* ``dask``: ``dd.read_parquet(folder)`` then ``rfm_summary(ddf, ...).compute()``
  on dask's default (threaded) scheduler.

A path whose peak at the previous size, scaled by the size ratio, exceeds the
cap is skipped at the larger size and recorded as such. Every path reports the
number of customers and column sums, so that the paths can be seen to agree.

Usage::

    uv run python benchmarks/database.py                       # 1M and 10M rows
    uv run python benchmarks/database.py --rows 100000000      # one size (the data are generated once)
    uv run python benchmarks/database.py report                # results -> markdown

Results are merged into ``benchmarks/results/database.json`` and written to
``benchmarks/results/database.md``; the data stay under ``--work`` (default
``/tmp/bayesclv-database-bench``) for the next run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
JSON_PATH = RESULTS / "database.json"
MD_PATH = RESULTS / "database.md"
PATHS = ["duckdb", "duckdb_2gb", "duckdb_parquet", "duckdb_chunks", "pandas", "dask"]
SEED = 19
START = "2022-01-01"
DAYS = 730
KWARGS = {"value": "value", "calibration_end": "2023-06-30", "observation_end": "2023-12-31"}
GEN_CHUNK = 5_000_000


# --------------------------------------------------------------------------- data
def generate(rows: int, work: Path) -> tuple[Path, Path]:
    """The DuckDB file and Parquet folder of ``rows`` synthetic transactions (made once, then reused)."""
    import duckdb
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    db, folder, done = work / f"tx-{rows}.duckdb", work / f"tx-{rows}", work / f"tx-{rows}.done"
    if done.exists():
        return db, folder
    work.mkdir(parents=True, exist_ok=True)
    db.unlink(missing_ok=True)
    folder.mkdir(exist_ok=True)
    for old in folder.glob("*.parquet"):
        old.unlink()
    customers = max(rows // 10, 1)
    rng = np.random.default_rng([SEED, rows])
    start = np.datetime64(START, "us")
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE transactions (customer_id BIGINT, date TIMESTAMP, value DOUBLE)")
        for i, lo in enumerate(range(0, rows, GEN_CHUNK)):
            n = min(GEN_CHUNK, rows - lo)
            micros = rng.integers(0, DAYS * 86_400_000_000, size=n)
            chunk = pa.table({
                "customer_id": rng.integers(0, customers, size=n, dtype=np.int64),
                "date": pa.array(start + micros.astype("timedelta64[us]")),
                "value": np.round(rng.gamma(2.0, 20.0, size=n), 2),
            })
            pq.write_table(chunk, folder / f"part-{i:04d}.parquet")
            con.execute("INSERT INTO transactions SELECT * FROM chunk")
            print(f"  generated {lo + n:,} / {rows:,} rows", flush=True)
    done.write_text(json.dumps({"rows": rows, "customers_drawn_from": customers, "seed": SEED}))
    return db, folder


# --------------------------------------------------------------------------- one path (child process)
def run_path(path: str, db: Path, folder: Path) -> dict:
    import bayesclv as bc
    from bayesclv.data.database import rfm_summary_chunks

    import psutil

    timings = {"rss_after_import_mb": round(psutil.Process().memory_info().rss / 2**20, 1)}
    t0, cpu0 = time.perf_counter(), time.process_time()
    if path == "duckdb":
        rfm = bc.rfm_summary(str(db), table="transactions", **KWARGS)
    elif path == "duckdb_2gb":
        import duckdb

        with duckdb.connect(str(db), read_only=True, config={"memory_limit": "2GB"}) as con:
            rfm = bc.rfm_summary(con, table="transactions", **KWARGS)
    elif path == "duckdb_parquet":
        rfm = bc.rfm_summary(str(folder), **KWARGS)
    elif path == "duckdb_chunks":
        import duckdb

        sums = None
        with duckdb.connect(str(db), read_only=True, config={"memory_limit": "2GB"}) as con:
            for chunk in rfm_summary_chunks(con, table="transactions", chunk_customers=1_000_000, **KWARGS):
                part = _sums(chunk)
                sums = part if sums is None else {k: sums[k] + part[k] for k in sums}
        return {**sums, **timings, "summary_s": round(time.perf_counter() - t0, 2),
                "summary_cpu_s": round(time.process_time() - cpu0, 2)}
    elif path == "pandas":
        import pandas as pd

        frame = pd.read_parquet(folder)
        timings["read_s"] = round(time.perf_counter() - t0, 2)
        rfm = bc.rfm_summary(frame, **KWARGS)
    elif path == "dask":
        import dask.dataframe as dd

        rfm = bc.rfm_summary(dd.read_parquet(str(folder)), **KWARGS).compute()
    else:
        raise ValueError(path)
    timings["summary_s"] = round(time.perf_counter() - t0 - timings.get("read_s", 0.0), 2)
    timings["summary_cpu_s"] = round(time.process_time() - cpu0, 2)  # read included for pandas
    return {**_sums(rfm), **timings}


def _sums(rfm) -> dict:
    return {"customers": int(len(rfm)), "sum_frequency": float(rfm["frequency"].sum()),
            "sum_frequency_holdout": float(rfm["frequency_holdout"].sum()),
            "sum_recency": float(rfm["recency"].sum()), "sum_monetary_value": float(rfm["monetary_value"].sum())}


# --------------------------------------------------------------------------- measurement (parent)
def _tree_rss(pid: int) -> int:
    import psutil

    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total


def measured(path: str, db: Path, folder: Path, cap_bytes: int) -> dict:
    """Run one path in a subprocess: its result, wall and CPU time, peak RSS; killed past the memory cap."""
    out = Path(os.environ.get("TMPDIR", "/tmp")) / f"bayesclv-database-{os.getpid()}.json"
    out.unlink(missing_ok=True)
    load = os.getloadavg()
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "_child", path, str(db), str(folder), str(out)])
    peak, killed, done = [0], [False], threading.Event()

    def watch():
        while not done.is_set():
            rss = _tree_rss(proc.pid)
            peak[0] = max(peak[0], rss)
            if rss > cap_bytes and not killed[0]:
                killed[0] = True
                proc.kill()
            time.sleep(0.1)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    done.set()
    thread.join()
    result = {"wall_s": round(wall, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
              "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "peak_polled_mb": round(peak[0] / 2**20, 1),
              "load_avg_before": [round(x, 2) for x in load]}
    code = os.waitstatus_to_exitcode(status)
    if killed[0]:
        result["status"] = f"killed at the {cap_bytes / 2**30:.0f} GB memory cap"
    elif code != 0:
        result["status"] = f"failed (exit code {code})"
    else:
        result.update(json.loads(out.read_text()), status="ok")
    out.unlink(missing_ok=True)
    return result


def merge(rows: int, path: str, value: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    results = json.loads(JSON_PATH.read_text()) if JSON_PATH.exists() else {}
    results.setdefault("machine", {}).update(_machine())
    results.setdefault("sizes", {}).setdefault(str(rows), {})[path] = value
    JSON_PATH.write_text(json.dumps(results, indent=2))


def _machine() -> dict:
    import dask
    import duckdb
    import pandas as pd

    return {"cpus": os.cpu_count(), "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "python": platform.python_version(), "duckdb": duckdb.__version__, "pandas": pd.__version__,
            "dask": dask.__version__, "kwargs": KWARGS}


def _estimate_mb(results: dict, rows: int, path: str) -> float | None:
    """Peak memory of ``path`` at ``rows``, scaled linearly from the largest smaller size that ran."""
    done = [(int(n), r[path]) for n, r in results.get("sizes", {}).items()
            if int(n) < rows and path in r and r[path].get("status") == "ok"]
    if not done:
        return None
    n, r = max(done, key=lambda item: item[0])
    return max(r["peak_rss_mb"], r["peak_polled_mb"]) * rows / n


def bench(rows: int, work: Path, cap_gb: float, paths: list[str]) -> None:
    print(f"{rows:,} rows: data under {work}", flush=True)
    # in a subprocess: Linux keeps a process's peak RSS across fork + exec, so a parent that had
    # generated the data would lend its peak to every measured child
    subprocess.run([sys.executable, __file__, "_generate", str(rows), str(work)], check=True)
    db, folder = work / f"tx-{rows}.duckdb", work / f"tx-{rows}"
    for path in paths:
        results = json.loads(JSON_PATH.read_text()) if JSON_PATH.exists() else {}
        estimate = _estimate_mb(results, rows, path)
        if estimate is not None and estimate > cap_gb * 1024 and not path.startswith("duckdb"):
            value = {"status": f"skipped: about {estimate / 1024:.0f} GB expected (peak at the last size x "
                               f"size ratio) > the {cap_gb:.0f} GB cap"}
        else:
            print(f"  {path} ...", flush=True)
            value = measured(path, db, folder, int(cap_gb * 2**30))
        merge(rows, path, value)
        print(f"  {path}: {json.dumps(value)}", flush=True)
    report()


def report() -> None:
    results = json.loads(JSON_PATH.read_text())
    m = results["machine"]
    lines = [
        "# rfm_summary from a database: DuckDB against the pandas and dask paths",
        "",
        f"Written by `benchmarks/database.py`. Machine: {m['cpus']} CPUs, {m['memory_gb']} GB RAM (shared with "
        f"other work: wall times are inflated, CPU times less so); DuckDB {m['duckdb']}, pandas {m['pandas']}, "
        f"dask {m['dask']}. Arguments: `{m['kwargs']}`. Each path in its own process; peak RSS is `ru_maxrss` "
        "(the polled process-tree peak is in the JSON). pandas: read = `pd.read_parquet`, summary = "
        "`rfm_summary` on the frame; dask: `rfm_summary(dd.read_parquet(...)).compute()` (threaded scheduler).",
        "",
        "`summary s` / `CPU s`: the call itself (for pandas: read + summary, the read in brackets), measured in "
        "the process; `process s`: the whole subprocess, Python start and `import bayesclv` included; "
        "`import MB`: RSS after the imports, before any data.",
        "",
        "| rows | customers | path | status | summary s | CPU s | process s | peak RSS MB | import MB |",
        "| ---: | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for n, paths in sorted(results["sizes"].items(), key=lambda item: int(item[0])):
        reference = _reference(paths)
        for path in PATHS:
            r = paths.get(path)
            if r is None:
                continue
            status = r["status"]
            if status == "ok" and reference is not None and _key(r) != reference:
                status = f"WRONG result ({r['customers']:,} customers; the other paths agree on another)"
            customers = f"{r['customers']:,}" if "customers" in r else ""
            summary = "" if "summary_s" not in r else f"{r['summary_s'] + r.get('read_s', 0.0):.1f}" + (
                f" ({r['read_s']:.1f})" if "read_s" in r else "")
            cpu = f"{r['summary_cpu_s']:.1f}" if "summary_cpu_s" in r else ""
            wall = f"{r['wall_s']:.1f}" if "wall_s" in r else ""
            rss = f"{max(r['peak_rss_mb'], r['peak_polled_mb']):,.0f}" if "peak_rss_mb" in r else ""
            base = f"{r['rss_after_import_mb']:,.0f}" if "rss_after_import_mb" in r else ""
            lines.append(f"| {int(n):,} | {customers} | {path} | {status} | {summary} | {cpu} | {wall} | "
                         f"{rss} | {base} |")
    lines += ["", "A result is checked against the others by its number of customers and the sums of `frequency`, "
              "`frequency_holdout`, `recency` and `monetary_value` (to 10 significant digits).", ""]
    MD_PATH.write_text("\n".join(lines) + "\n")
    print(f"wrote {MD_PATH}", flush=True)


def _key(r: dict) -> tuple:
    return tuple(float(f"{r[k]:.10g}") for k in ("customers", "sum_frequency", "sum_frequency_holdout",
                                                 "sum_recency", "sum_monetary_value"))


def _reference(paths: dict) -> tuple | None:
    """The result that most paths of one size agree on (None if no path ran)."""
    keys = [_key(r) for r in paths.values() if r.get("status") == "ok"]
    return max(set(keys), key=keys.count) if keys else None


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        _, _, path, db, folder, out = sys.argv
        Path(out).write_text(json.dumps(run_path(path, Path(db), Path(folder))))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_generate":
        generate(int(sys.argv[2]), Path(sys.argv[3]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "report":
        report()
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--paths", nargs="+", default=PATHS, choices=PATHS)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bayesclv-database-bench"))
    parser.add_argument("--memory-cap-gb", type=float, default=12.0,
                        help="kill a path whose process tree passes this resident memory (default 12)")
    args = parser.parse_args()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    for rows in args.rows:
        bench(rows, args.work, args.memory_cap_gb, args.paths)


if __name__ == "__main__":
    main()
