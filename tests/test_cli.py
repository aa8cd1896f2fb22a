"""Command line: the fit command end to end, and one-line errors for bad input."""

import pandas as pd
from typer.testing import CliRunner

import bayesclv as bc
from bayesclv.cli import app

runner = CliRunner()


def test_fit_map_writes_table(tmp_path):
    tx = bc.datasets.load_cdnow("sample")
    src = tmp_path / "tx.csv"
    tx.rename(columns={"customer_id": "cust"}).to_csv(src, index=False)
    out = tmp_path / "out.csv"
    result = runner.invoke(app, ["fit", str(src), "--customer-id", "cust", "--method", "map",
                                 "--calibration-end", "1997-09-30", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "Top 10 customers by CLV" in result.output
    table = pd.read_csv(out)
    assert len(table) == 2357
    assert {"clv_mean", "clv_lower", "clv_upper", "p_alive_mean", "expected_purchases_mean"} <= set(table.columns)
    assert (table["clv_lower"] <= table["clv_upper"]).all()


def test_bad_file_gives_one_line_error(tmp_path):
    src = tmp_path / "tx.csv"
    pd.DataFrame({"customer_id": [1, 2], "date": ["2020-01-01", "not a date"], "value": [1.0, 2.0]}).to_csv(src)
    result = runner.invoke(app, ["fit", str(src), "--method", "map", "--quiet"])
    assert result.exit_code == 2
    assert result.output.strip().startswith("error:")
    assert "date" in result.output and "Traceback" not in result.output
    missing = runner.invoke(app, ["fit", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2 and "file not found" in missing.output


def test_missing_column_names_it(tmp_path):
    src = tmp_path / "tx.csv"
    pd.DataFrame({"id": [1], "date": ["2020-01-01"], "value": [1.0]}).to_csv(src, index=False)
    result = runner.invoke(app, ["fit", str(src), "--method", "map", "--quiet"])
    assert result.exit_code == 2 and "customer_id" in result.output


def test_unknown_model_is_a_one_line_error():
    result = runner.invoke(app, ["demo", "--model", "weibull", "--quiet"])
    assert result.exit_code == 2 and "--model must be one of" in result.output


def test_data_warnings_reach_the_user(tmp_path):
    tx = bc.datasets.load_cdnow("sample")
    first = tx.groupby("customer_id")["date"].transform("min")
    tx.loc[(tx["customer_id"] == 1) & (tx["date"] > first), "value"] = 0.0  # customer 1 repeats for free
    src = tmp_path / "tx.csv"
    tx.to_csv(src, index=False)
    result = runner.invoke(app, ["fit", str(src), "--method", "map", "--calibration-end", "1997-09-30",
                                 "--out", str(tmp_path / "o.csv"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "warning: Gamma-Gamma: 1 repeat buyer(s) with mean spend 0 left out" in result.output
