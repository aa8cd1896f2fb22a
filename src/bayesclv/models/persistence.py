"""Save and load fitted models: one netCDF file holding the posterior, the fit data and the configuration.

The file is the model's ``idata`` groups plus ``fit_data`` (the validated
frame), with the class name, priors, time unit, fit method, diagnostics,
constructor arguments and fit state as JSON attributes; :func:`load` rebuilds
an instance of the saved class that predicts exactly as the saved one did.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import xarray as xr

from bayesclv.models.diagnostics import FitDiagnostics
from bayesclv.priors import priors_from_json, priors_to_json

__all__ = ["load", "register", "save_model"]

_REGISTRY: dict[str, type] = {}


def register(cls: type) -> None:
    """Make ``cls`` loadable by its name (every model class registers itself when defined)."""
    _REGISTRY[cls.__name__] = cls


def save_model(model: Any, path: str | Path) -> None:
    """Write a fitted ``model`` to ``path`` (see :meth:`bayesclv.models.CLVModel.save`)."""
    model.check_fitted()
    data = model.data.set_index("customer_id").to_xarray()
    tree = model.idata.copy()
    tree["fit_data"] = xr.DataTree(dataset=data)
    tree.attrs = {
        **tree.attrs,
        "bayesclv_model": type(model).__name__,
        "priors": priors_to_json(model.priors),
        "time_unit": model.time_unit,
        "fit_method": model.fit_method,
        "data_attrs": json.dumps({k: str(v) for k, v in model.data.attrs.items()}),
        "diagnostics": json.dumps(dict(model.diagnostics or {})),
        "config": json.dumps(model._config()),
        "fit_state": json.dumps(model._fit_state()),
    }
    tree.to_netcdf(path, engine="h5netcdf")


def load(path: str | Path) -> Any:
    """Read a model written by :meth:`~bayesclv.models.CLVModel.save`.

    Parameters
    ----------
    path : str or Path
        File written by ``save``.

    Returns
    -------
    CLVModel
        An instance of the saved class, ready to predict.
    """
    tree = xr.open_datatree(path, engine="h5netcdf").load()
    cls = _REGISTRY[tree.attrs["bayesclv_model"]]
    model = cls(priors=priors_from_json(tree.attrs["priors"]), **json.loads(tree.attrs.get("config", "{}")))
    data = tree["fit_data"].to_dataset().to_dataframe().reset_index()
    data.attrs = json.loads(tree.attrs["data_attrs"])
    model.data = data
    model.time_unit = tree.attrs["time_unit"]
    model.fit_method = tree.attrs["fit_method"]
    model.diagnostics = FitDiagnostics(json.loads(tree.attrs["diagnostics"]))
    model.idata = xr.DataTree.from_dict(
        {name: tree[name].to_dataset() for name in tree.children if name != "fit_data"}
    )
    model._restore_fit_state(model.idata["posterior"].to_dataset(), json.loads(tree.attrs.get("fit_state", "{}")))
    return model
