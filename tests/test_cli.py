"""Command line: end-to-end runs (MAP, a few short NUTS fits), one-line errors before any work,
outputs never half-written or silently replaced, customer ids kept as text, and Ctrl-C."""

import os
import re
import signal
import subprocess
import sys
from importlib.metadata import version

import pandas as pd
import pytest
from typer.testing import CliRunner

import bayesclv as bc
from bayesclv import cli, cli_conventions
from bayesclv.cli import app

runner = CliRunner()
# one per fitted model
DIAGNOSTICS = re.compile(r"divergences \d+ of \d+ draws|no sampling diagnostics|optimiser (?:converged|failed)")


def _run_module(*args, cwd=None, timeout=600):
    """``python -m bayesclv ARGS`` in a fresh process."""
    return subprocess.run([sys.executable, "-m", "bayesclv", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout, check=False)


def _small_log(tmp_path, suffix=".csv", customers=200):
    """The first CDNOW sample customers' transactions with the raw yyyymmdd dates."""
    tx = bc.datasets.load_cdnow("sample")
    tx = tx[tx["customer_id"].isin(tx["customer_id"].unique()[:customers])].copy()
    tx["date"] = tx["date"].dt.strftime("%Y%m%d")
    src = tmp_path / f"tx{suffix}"
    if suffix == ".parquet":
        tx.to_parquet(src, index=False)
    else:
        tx.to_csv(src, index=False)
    return src, tx


def _one_line_error(result, fragment):
    assert result.exit_code == 2, result.output
    assert result.stdout == "", result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert fragment in lines[0], lines[0]


# ------------------------------------------------------------------ the error table
# (command line, fragment of the one-line message); every row exits with status 2 before any data
# is read. Relative paths name the files made by `workdir`.
OPTION_ERRORS = [
    ("fit tx.csv --prob 1.5", "Invalid value for '--prob': 1.5 is not in (0, 1)"),
    ("fit tx.csv --prob nan", "'--prob': nan is not in (0, 1)"),
    ("fit tx.csv --draws -5", "'--draws': Input should be greater than or equal to 1"),
    ("fit tx.csv --draws 0", "'--draws': Input should be greater than or equal to 1"),
    ("fit tx.csv --chains 0", "'--chains': Input should be greater than or equal to 1"),
    ("fit tx.csv --tune -1", "'--tune': Input should be greater than or equal to 0"),
    ("fit tx.csv --seed -1", "'--seed': Input should be greater than or equal to 0"),
    ("fit tx.csv --discount-rate -2", "'--discount-rate': -2 is not in [0, 1)"),
    ("fit tx.csv --discount-rate 10", "10 is not in [0, 1): a rate per period, write 1% as 0.01"),
    ("fit tx.csv --margin 30", "'--margin': 30 is not in (0, 1]: a share of revenue, write 30% as 0.3"),
    ("fit tx.csv --margin -0.2", "'--margin': -0.2 is not in (0, 1]"),
    ("fit tx.csv --horizon 0", "'--horizon': Input should be greater than or equal to 1"),
    ("fit tx.csv --horizon twelve", "'--horizon': Input should be a valid integer"),
    ("fit tx.csv --model weibull", "'--model': Value error, 'weibull' is not one of 'bgnbd', 'pnbd'"),
    ("fit tx.csv --method mcmc", "'--method': Value error, 'mcmc' is not one of 'nuts', 'map', 'advi'"),
    ("fit tx.csv --time-unit Q", "'--time-unit': Value error, 'Q' is not one of 'D', 'W', 'M', 'Y'"),
    ("fit tx.csv --horizon-unit w", "'--horizon-unit': Value error, 'w' is not one of 'D', 'W', 'M', 'Y'"),
    ("fit tx.csv --calibration-end 1997-13-45", "'--calibration-end': '1997-13-45' is not a date"),
    ("fit tx.csv --calibration-end=", "'--calibration-end': '' is not a date (YYYY-MM-DD)"),
    ("fit nope.csv", "'transactions': file 'nope.csv' does not exist"),
    ("fit tx.xlsx", "'tx.xlsx' is neither CSV (.csv, also .csv.gz/.bz2/.zip/.xz/.zst) nor Parquet"),
    ("fit full", "'transactions': file 'full' is a directory"),
    ("fit tx.csv --out missing/out.csv", "'--out': folder 'missing' does not exist"),
    ("fit tx.csv --out exists.csv", "'--out': 'exists.csv' already exists; pass --force to overwrite it"),
    ("fit tx.csv --out out.txt", "'--out': 'out.txt' must end in .csv, .csv.gz"),
    ("fit tx.csv --out full.csv", "'--out': 'full.csv' is a folder"),
    ("fit tx.csv --bogus 1", "No such option: --bogus"),
    ("evaluate tx.csv", "Missing option '--calibration-end'"),
    ("evaluate tx.csv --calibration-end 1997-09-30 --out exists.csv", "'exists.csv' already exists"),
    ("evaluate tx.csv --calibration-end 1997-09-30 --prob 0", "'--prob': 0 is not in (0, 1)"),
    ("report tx.csv --out r.pdf", "'--out': 'r.pdf' must end in .html, .htm"),
    ("report tx.csv --out exists.html", "'--out': 'exists.html' already exists; pass --force"),
    ("report tx.csv --tables-dir afile", "'--tables-dir': 'afile' is a file, not a folder"),
    ("report tx.csv --tables-dir full", "'--tables-dir': 'full' is not empty; pass --force to write into it"),
    ("report tx.csv --tables-dir missing/tables", "'--tables-dir': folder 'missing' does not exist"),
    ("report tx.csv --tables-format xlsx", "'--tables-format': Value error, 'xlsx' is not one of 'csv', 'parquet'"),
    ("report tx.csv --uplift-sd -1", "'--uplift-sd': -1 is not in [0, inf)"),
    ("report tx.csv --offer-cost inf", "'--offer-cost': inf is not in [0, inf)"),
    ("report tx.csv --uplift 10%", "'--uplift': Input should be a valid number"),
    ("report tx.csv --min-prob-positive 2", "'--min-prob-positive': 2 is not in [0, 1]"),
    ("demo --out exists.csv", "'--out': 'exists.csv' already exists; pass --force to overwrite it"),
    ("demo --out missing/demo.csv", "'--out': folder 'missing' does not exist"),
    ("demo --draws 0", "'--draws': Input should be greater than or equal to 1"),
]

# errors in the data, found by reading it (the library's typed errors): exit 2 before any fit
DATA_ERRORS = [
    ("fit nocol.csv", "column 'customer_id'"),
    ("fit noid.csv", "column 'customer_id': missing (NaN/None) customer ids"),
    ("fit empty.csv", "cannot read empty.csv: No columns to parse from file"),
    ("fit tx.csv --date-format %d/%m/%Y",
     ("column 'date': 3 date(s) do not match --date-format '%d/%m/%Y' (first: '19970101') at the listed row "
      "positions (0 = the first row below the header) (offending rows: 0, 1, 2; 3 in all)")),
    ("fit tx.csv", "column 'date': dates are numbers (first: 19970101); give their format, e.g. --date-format %Y%m%d"),
    ("fit tx.csv --date-format %Y%m%d --calibration-end 2030-01-01", "is after the last transaction"),
    ("report tx.parquet --date-format %Y%m%d --calibration-end 1990-01-01", "is before the first transaction"),
]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A folder with the files the error table names, as the current directory."""
    tx = pd.DataFrame({"customer_id": ["1", "1", "2"], "date": ["19970101", "19970105", "19970102"],
                       "value": [10.0, 20.0, 5.0]})
    tx.to_csv(tmp_path / "tx.csv", index=False)
    tx.to_parquet(tmp_path / "tx.parquet", index=False)
    (tmp_path / "nocol.csv").write_text("id,date,value\n1,1997-01-01,1\n")
    (tmp_path / "noid.csv").write_text("customer_id,date,value\n1,1997-01-01,1\n,1997-01-02,2\n")
    (tmp_path / "empty.csv").write_text("")
    for name in ("tx.xlsx", "afile", "exists.csv", "exists.html"):
        (tmp_path / name).write_text("keep me")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.csv").write_text("keep me")
    (tmp_path / "full.csv").mkdir()
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _refuse(*args, **kwargs):
    raise AssertionError("reached work that the checks should have prevented")


@pytest.mark.parametrize(("command", "fragment"), OPTION_ERRORS, ids=[row[0] for row in OPTION_ERRORS])
def test_bad_option_is_one_line_before_reading(workdir, monkeypatch, command, fragment):
    monkeypatch.setattr(cli, "read_transactions", _refuse)
    monkeypatch.setattr(bc.datasets, "load_cdnow", _refuse)
    before = {p: p.stat().st_mtime_ns for p in workdir.rglob("*")}
    _one_line_error(runner.invoke(app, command.split()), fragment)
    assert {p: p.stat().st_mtime_ns for p in workdir.rglob("*")} == before  # nothing written or touched


@pytest.mark.parametrize(("command", "fragment"), DATA_ERRORS, ids=[row[0] for row in DATA_ERRORS])
def test_bad_data_is_one_line_before_fitting(workdir, monkeypatch, command, fragment):
    for model in (bc.BetaGeoModel, bc.ParetoNBDModel, bc.GammaGammaModel):
        monkeypatch.setattr(model, "fit", _refuse)
    _one_line_error(runner.invoke(app, command.split()), fragment)


def test_module_entry_point_version_and_errors(tmp_path):
    """``python -m bayesclv`` in a real process: --version, and an error on stderr with exit status 2."""
    result = _run_module("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"bayesclv {version('bayesclv')} (pymc ")
    bad = _run_module("fit", tmp_path / "tx.csv", "--draws", "-5")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("error: ") and len(bad.stderr.splitlines()) == 1, bad.stderr


def test_help_lists_choices_and_completion():
    fit_help = runner.invoke(app, ["fit", "--help"], env={"COLUMNS": "200"})
    assert fit_help.exit_code == 0
    for choice in ("bgnbd|pnbd", "nuts|map|advi", "D|W|M|Y", "--force", "[x>=1]"):
        assert choice in fit_help.output, choice
    top = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert "--version" in top.output and "--install-completion" in top.output
    bare = runner.invoke(app, [], env={"COLUMNS": "200"})
    assert bare.exit_code == 0 and "Commands" in bare.output
    completion = runner.invoke(app, [], prog_name="bayesclv", env={
        "_BAYESCLV_COMPLETE": "complete_bash", "COMP_WORDS": "bayesclv fit --method ", "COMP_CWORD": "3"})
    assert completion.output.split() == ["nuts", "map", "advi"]
    for command, words in (("report", ["self-contained HTML", "--offer-cost", "--tables-dir", "--date-format"]),
                           ("evaluate", ["holdout", "--calibration-end", "coverage"])):
        result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0
        for word in words:
            assert word in result.output, (command, word)


# ------------------------------------------------------------------ runs
def test_ids_are_text(tmp_path):
    """Ids ``007`` and ``7`` are two customers (read as numbers, 400 customers became 399). In-process: the
    module entry point runs in a real process in test_module_entry_point_version_and_errors and the Ctrl-C test."""
    tx = bc.datasets.load_cdnow("sample")
    tx = tx[tx["customer_id"] <= 400].copy()
    tx["customer_id"] = tx["customer_id"].map("{:03d}".format).replace({"123": "7"})
    src = tmp_path / "tx.csv"
    tx.to_csv(src, index=False)
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["fit", str(src), "--method", "map", "--calibration-end", "1997-09-30",
                                 "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "400 customers" in result.stdout
    assert len(DIAGNOSTICS.findall(result.stdout)) == 2  # one line per model, not two
    table = pd.read_csv(out, dtype={"customer_id": str})
    assert len(table) == 400 and {"007", "7"} <= set(table["customer_id"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv", "tx.csv"]  # no temporary file left


def test_fit_map_writes_table_and_refuses_to_overwrite(tmp_path):
    src, _ = _small_log(tmp_path)
    out = tmp_path / "out.parquet"
    args = ["fit", str(src), "--date-format", "%Y%m%d", "--method", "map", "--calibration-end", "1997-09-30",
            "--out", str(out), "--quiet"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Top 10 customers by CLV" in result.stdout and f"written to {out}" in result.stdout
    # a MAP fit is a point estimate: said so, never "credible", and no zero-width interval columns
    assert "credible" not in result.stdout.lower() and "HDI" not in result.stdout
    assert result.stdout.count("point estimate (no posterior uncertainty)") >= 3  # the note and both parameter tables
    table = pd.read_parquet(out)
    assert len(table) == 200 and pd.api.types.is_string_dtype(table.index)
    assert {"clv_point_estimate", "p_alive_point_estimate", "expected_purchases_point_estimate"} <= set(table.columns)
    assert not [c for c in table.columns if c.endswith(("_lower", "_upper", "_mean"))]
    assert (table["p_alive_point_estimate"].between(0, 1)).all()
    out.write_bytes(b"the user's file")
    _one_line_error(runner.invoke(app, args), "already exists; pass --force")
    assert out.read_bytes() == b"the user's file"
    forced = runner.invoke(app, [*args, "--margin", "0.5", "--force"])
    assert forced.exit_code == 0, forced.output
    assert pd.read_parquet(out)["clv_point_estimate"].to_numpy() == pytest.approx(
        table["clv_point_estimate"].to_numpy() / 2)


def test_interrupted_write_leaves_no_file(tmp_path):
    out = tmp_path / "out.csv.gz"

    def half_then_interrupt(path):
        path.write_bytes(b"half a tab")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cli_conventions.write_atomic(out, half_then_interrupt, force=False)
    assert list(tmp_path.iterdir()) == []
    out.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        cli_conventions.write_atomic(out, half_then_interrupt, force=True)
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv.gz"] and out.read_text() == "old"
    cli_conventions.write_table(pd.DataFrame({"a": [1, 2]}), out, force=True)  # the temporary name keeps .csv.gz
    assert pd.read_csv(out, compression="gzip")["a"].tolist() == [1, 2]


def test_data_warnings_reach_the_user(tmp_path):
    src, tx = _small_log(tmp_path)
    first = tx.groupby("customer_id")["date"].transform("min")
    tx.loc[(tx["customer_id"] == 1) & (tx["date"] > first), "value"] = 0.0  # customer 1 repeats for free
    tx.to_csv(src, index=False)
    result = runner.invoke(app, ["fit", str(src), "--date-format", "%Y%m%d", "--method", "map",
                                 "--calibration-end", "1997-09-30", "--out", str(tmp_path / "o.csv"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "warning: Gamma-Gamma: 1 repeat buyer(s) with mean spend 0 left out" in result.stderr


@pytest.mark.parametrize("quiet", [False, True])
def test_convergence_line_printed_once(tmp_path, quiet):
    """Model.fit prints a NUTS fit's convergence line when it shows progress; the CLI must not repeat it."""
    src, _ = _small_log(tmp_path)
    result = runner.invoke(app, ["fit", str(src), "--date-format", "%Y%m%d", "--draws", "60", "--tune", "60",
                                 "--chains", "2", "--out", str(tmp_path / "o.csv")] + (["--quiet"] if quiet else []))
    assert result.exit_code == 0, result.output
    lines = DIAGNOSTICS.findall(result.stdout)
    assert len(lines) == 2, result.stdout  # BG/NBD and Gamma-Gamma, once each


def test_demo_writes_only_where_asked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["demo", "--method", "map", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "per-customer table not saved (pass --out FILE.csv to save it)" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_report_command_writes_html_and_tables(tmp_path):
    src, _ = _small_log(tmp_path, ".parquet")
    out = tmp_path / "r.html"
    args = ["report", str(src), "--date-format", "%Y%m%d", "--method", "map", "--calibration-end", "1997-09-30",
            "--out", str(out), "--tables-dir", str(tmp_path / "tables"), "--tables-format", "parquet", "--quiet"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and html.count("data:image/png;base64,") == 6
    assert "refit with NUTS" in html  # a MAP report says its intervals are not to be quoted
    tiers = pd.read_parquet(tmp_path / "tables" / "tiers.parquet")
    assert tiers["customers"].sum() == 200
    customers = pd.read_parquet(tmp_path / "tables" / "customers.parquet")
    assert len(customers) == 200 and {"clv_mean", "tier", "stage", "offer_target"} <= set(customers.columns)
    assert not [p for p in tmp_path.rglob(".*")]  # no temporary file left
    again = runner.invoke(app, args)
    _one_line_error(again, "r.html' already exists; pass --force")


def test_evaluate_command(tmp_path):
    src, tx = _small_log(tmp_path)
    out = tmp_path / "eval.parquet"
    result = runner.invoke(app, ["evaluate", str(src), "--date-format", "%Y%m%d", "--calibration-end",
                                 "1997-09-30", "--method", "map", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "auc" in result.stdout and "coverage_90" in result.stdout
    table = pd.read_parquet(out)
    assert len(table) == 200
    holdout = tx[pd.to_datetime(tx["date"], format="%Y%m%d") > "1997-09-30"]
    # actual holdout purchases are distinct purchase days per customer
    days = holdout.groupby("customer_id")["date"].nunique()
    assert table["actual"].sum() == days.sum()


def test_ctrl_c_during_nuts_exits_130_without_output(tmp_path):
    """SIGINT while NUTS samples: exit status 130, one line on stderr, no output file."""
    tx = bc.datasets.load_cdnow("sample")
    src = tmp_path / "tx.csv"
    tx.to_csv(src, index=False)
    out = tmp_path / "out.csv"
    stderr = tmp_path / "stderr.txt"
    with open(stderr, "w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "bayesclv", "fit", str(src), "--calibration-end", "1997-09-30",
             "--draws", "500000", "--tune", "200", "--chains", "2", "--out", str(out), "--quiet"],
            stdout=subprocess.PIPE, stderr=err, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            for line in process.stdout:
                if line.startswith("fitting BG/NBD"):
                    break
            # the model compiles (or loads from the cache) and samples: half a million draws take minutes
            try:
                process.wait(timeout=8)
            except subprocess.TimeoutExpired:
                pass
            assert process.poll() is None, "the fit ended before it could be interrupted"
            process.send_signal(signal.SIGINT)
            stdout = process.stdout.read()
            code = process.wait(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
    assert code == 130, (stdout, stderr.read_text())
    assert stderr.read_text() == "interrupted (Ctrl-C): no output written\n"  # no warnings about a partial fit
    assert "fitting Gamma-Gamma" not in stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stderr.txt", "tx.csv"]
