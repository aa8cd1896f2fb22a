"""``bayesclv compare``: checks before any work (one line, exit 2), and a real run."""

import pandas as pd
import pytest
from typer.testing import CliRunner

import bayesclv as bc
from bayesclv import cli
from bayesclv.cli import app
from bayesclv.comparison import compare as library_compare

runner = CliRunner()

# (command line, fragment of the one-line message); every row exits with status 2 before any data is read
COMPARE_ERRORS = [
    ("compare tx.csv", "Missing option '--calibration-end'"),
    ("compare tx.csv --calibration-end 1997-13-45", "'--calibration-end': '1997-13-45' is not a date"),
    ("compare tx.csv --calibration-end 1997-03-01 --model weibull",
     "'--model': Value error, 'weibull' is not one of 'bgnbd', 'pnbd', 'mbgnbd', 'ggomnbd', 'hbgnbd', 'hpnbd'"),
    ("compare tx.csv --calibration-end 1997-03-01 --model pnbd --model pnbd", "'--model': pnbd given more than once"),
    ("compare tx.csv --calibration-end 1997-03-01 --model bgnbd --model hbgnbd --method map",
     "'--method': hbgnbd cannot be fitted by map: the joint mode"),
    ("compare tx.csv --calibration-end 1997-03-01 --prob 1", "'--prob': 1 is not in (0, 1)"),
    ("compare tx.csv --calibration-end 1997-03-01 --out exists.csv", "'--out': 'exists.csv' already exists; pass --force"),
    ("compare tx.csv --calibration-end 1997-03-01 --html exists.html", "'--html': 'exists.html' already exists"),
    ("compare tx.csv --calibration-end 1997-03-01 --html c.pdf", "'--html': 'c.pdf' must end in .html, .htm"),
    ("compare tx.csv --calibration-end 1997-03-01 --out missing/c.csv", "'--out': folder 'missing' does not exist"),
    ("compare tx.csv --calibration-end 1997-03-01 --draws 0", "'--draws': Input should be greater than or equal to 1"),
]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    pd.DataFrame({"customer_id": ["1"], "date": ["1997-01-01"]}).to_csv(tmp_path / "tx.csv", index=False)
    for name in ("exists.csv", "exists.html"):
        (tmp_path / name).write_text("keep me")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _refuse(*args, **kwargs):
    raise AssertionError("reached work that the checks should have prevented")


@pytest.mark.parametrize(("command", "fragment"), COMPARE_ERRORS, ids=[row[0] for row in COMPARE_ERRORS])
def test_bad_option_is_one_line_before_reading(workdir, monkeypatch, command, fragment):
    monkeypatch.setattr(cli, "read_transactions", _refuse)
    before = {p: p.stat().st_mtime_ns for p in workdir.rglob("*")}
    result = runner.invoke(app, command.split())
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert result.stdout == "" and len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert fragment in lines[0], lines[0]
    assert {p: p.stat().st_mtime_ns for p in workdir.rglob("*")} == before  # nothing written or touched


def test_compare_writes_table_and_page_over_old_outputs_only_with_force(tmp_path, monkeypatch):
    """``bayesclv compare`` on 400 CDNOW sample customers with MAP fits, over old outputs. In-process: the
    module entry point, exit statuses in a real process and Ctrl-C are tested in test_cli.py."""
    tx = bc.datasets.load_cdnow("sample")
    tx = tx[tx["customer_id"].isin(tx["customer_id"].unique()[:400])]
    tx.to_csv(tmp_path / "tx.csv", index=False)
    for name in ("bayesclv_comparison.csv", "bayesclv_comparison.html"):
        (tmp_path / name).write_text("old")
    monkeypatch.chdir(tmp_path)
    calls = []

    def recorded(*args, **kwargs):  # the library's compare, run once, with what the command passed it
        calls.append((args, kwargs, library_compare(*args, **kwargs)))
        return calls[-1][2]

    monkeypatch.setattr(bc, "compare", recorded)
    args = ["compare", "tx.csv", "--calibration-end", "1997-09-30", "--method", "map", "--quiet", "--seed", "7"]
    kept = runner.invoke(app, args)
    assert kept.exit_code == 2 and "already exists; pass --force" in kept.stderr
    assert (tmp_path / "bayesclv_comparison.csv").read_text() == "old"
    run = runner.invoke(app, [*args, "--force"])
    assert run.exit_code == 0, run.output
    table = pd.read_csv(tmp_path / "bayesclv_comparison.csv", index_col="model")
    assert list(table.index) == ["bgnbd", "pnbd"]
    assert table["family"].tolist() == ["BG/NBD", "Pareto/NBD"]
    # the library's table on the same frame (the customer table built here), the same seeds and MAP fits
    rfm = bc.rfm_summary(tx.astype({"customer_id": str}), calibration_end="1997-09-30")
    ((specs, frame), kwargs, expected), = calls
    assert specs == {"bgnbd": bc.BetaGeoModel, "pnbd": bc.ParetoNBDModel}
    pd.testing.assert_frame_equal(frame.reset_index(drop=True), rfm.reset_index(drop=True), check_dtype=False)
    assert kwargs["random_seed"] == 7 and kwargs["fit_kwargs"]["random_seed"] == 7
    assert kwargs["fit_kwargs"]["method"] == "map" and kwargs["prob"] == 0.9
    for col in ("mae", "rmse", "actual_total", "pit_coverage_90", "auc_p_alive", "brier"):
        assert table[col].to_numpy() == pytest.approx(expected[col].to_numpy(float), rel=1e-6), col
    assert table["actual_total"].iloc[0] == rfm["frequency_holdout"].sum()
    assert table["note"].str.contains("MAP fit").all()
    page = (tmp_path / "bayesclv_comparison.html").read_text()
    assert "Model comparison: tx.csv" in page and "holdout MAE per customer" in page and "Pareto/NBD" in page
    assert "BG/NBD" in run.stdout and "bayesclv_comparison.html" in run.stdout
