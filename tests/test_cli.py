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


def _small_log(tmp_path, suffix=".csv"):
    """The first 200 CDNOW sample customers' transactions with the raw yyyymmdd dates."""
    tx = bc.datasets.load_cdnow("sample")
    tx = tx[tx["customer_id"].isin(tx["customer_id"].unique()[:200])].copy()
    tx["date"] = tx["date"].dt.strftime("%Y%m%d")
    src = tmp_path / f"tx{suffix}"
    if suffix == ".parquet":
        tx.to_parquet(src, index=False)
    else:
        tx.to_csv(src, index=False)
    return src, tx


def test_report_command_writes_html_and_tables(tmp_path):
    src, _ = _small_log(tmp_path, ".parquet")
    out = tmp_path / "r.html"
    result = runner.invoke(app, ["report", str(src), "--date-format", "%Y%m%d", "--method", "map",
                                 "--calibration-end", "1997-09-30", "--out", str(out), "--tables-dir",
                                 str(tmp_path / "tables"), "--tables-format", "parquet", "--quiet"])
    assert result.exit_code == 0, result.output
    html = out.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and html.count("data:image/png;base64,") == 6
    assert "refit with NUTS" in html  # a MAP report says its intervals are not to be quoted
    tiers = pd.read_parquet(tmp_path / "tables" / "tiers.parquet")
    assert tiers["customers"].sum() == 200
    customers = pd.read_parquet(tmp_path / "tables" / "customers.parquet")
    assert len(customers) == 200 and {"clv_mean", "tier", "stage", "offer_target"} <= set(customers.columns)


def test_report_command_one_line_errors(tmp_path):
    src, _ = _small_log(tmp_path)
    bad_out = runner.invoke(app, ["report", str(src), "--out", str(tmp_path / "r.pdf")])
    assert bad_out.exit_code == 2 and "--out must end in .html" in bad_out.output
    # dates read without the format are numbers, which the data layer refuses by name
    numeric = runner.invoke(app, ["report", str(src), "--method", "map", "--out", str(tmp_path / "r.html"),
                                  "--quiet"])
    assert numeric.exit_code == 2 and numeric.output.strip().splitlines()[-1].startswith("error: column 'date'")
    wrong = runner.invoke(app, ["report", str(src), "--date-format", "%d/%m/%Y", "--method", "map",
                                "--out", str(tmp_path / "r.html"), "--quiet"])
    assert wrong.exit_code == 2 and "Traceback" not in wrong.output
    assert "do not match --date-format '%d/%m/%Y' (first: '19970101' in row 1)" in wrong.output
    prob = runner.invoke(app, ["report", str(src), "--prob", "1.5"])
    assert prob.exit_code == 2 and "--prob" in prob.output


def test_evaluate_command(tmp_path):
    src, tx = _small_log(tmp_path)
    out = tmp_path / "eval.parquet"
    result = runner.invoke(app, ["evaluate", str(src), "--date-format", "%Y%m%d", "--calibration-end",
                                 "1997-09-30", "--method", "map", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "auc" in result.output and "coverage_90" in result.output
    table = pd.read_parquet(out)
    assert len(table) == 200
    holdout = tx[pd.to_datetime(tx["date"], format="%Y%m%d") > "1997-09-30"]
    # actual holdout purchases are distinct purchase days per customer
    days = holdout.groupby("customer_id")["date"].nunique()
    assert table["actual"].sum() == days.sum()
    missing = runner.invoke(app, ["evaluate", str(src)])
    assert missing.exit_code == 2 and "--calibration-end" in missing.output


def test_help_explains_the_commands():
    for command, words in (("report", ["self-contained HTML", "--offer-cost", "--tables-dir", "--date-format"]),
                           ("evaluate", ["holdout", "--calibration-end", "coverage"])):
        result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
        assert result.exit_code == 0
        for word in words:
            assert word in result.output, (command, word)
