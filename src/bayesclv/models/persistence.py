"""Save and load fitted models: one netCDF file holding the posterior, the fit data and the configuration.

The file is the model's ``idata`` groups plus ``fit_data`` (the validated
frame), with the class name, priors, time unit, fit method, diagnostics,
constructor arguments and fit state as JSON attributes; :func:`load` rebuilds
an instance of the saved class that predicts exactly as the saved one did.

Compatibility policy: the layout has a format number (``bayesclv_format``,
:data:`FORMAT_VERSION`), raised whenever a change would make an older reader
misread a file. :func:`load` reads every format up to its own and refuses a
newer one with a message to upgrade; files written before the number existed
have format 1's layout and are read as format 1. The package version that wrote
a file (``bayesclv_version``) is recorded for people, not checked.
"""

from __future__ import annotations

import json
import os
import secrets
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from bayesclv.data.validation import check_time_unit
from bayesclv.errors import ModelFileError, OverwriteError
from bayesclv.models.diagnostics import FitDiagnostics
from bayesclv.models.inference import FIT_METHODS
from bayesclv.priors import priors_from_json, priors_to_json

__all__ = ["FORMAT_VERSION", "load", "register", "save_model"]

#: The file layout written by :func:`save_model`; :func:`load` reads this one and older ones.
FORMAT_VERSION = 1

_REGISTRY: dict[str, type] = {}
_JSON_ATTRIBUTES = ("priors", "data_attrs", "diagnostics", "config", "fit_state")


def register(cls: type) -> None:
    """Make ``cls`` loadable by its name (every model class registers itself when defined)."""
    _REGISTRY[cls.__name__] = cls


def _package_version() -> str:
    try:
        return version("bayesclv")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree that is not installed
        return "unknown"


def save_model(model: Any, path: str | Path, *, overwrite: bool = False) -> None:
    """Write a fitted ``model`` to ``path`` (see :meth:`bayesclv.models.CLVModel.save`)."""
    model.check_fitted()
    path = Path(path)
    if path.exists() and not overwrite:
        raise OverwriteError(f"{str(path)!r} exists; pass overwrite=True to replace it")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot save to {str(path)!r}: the folder {str(path.parent)!r} does not exist")
    data = model.data.set_index("customer_id").to_xarray()
    tree = model.idata.copy()
    tree["fit_data"] = xr.DataTree(dataset=data)
    tree.attrs = {
        **tree.attrs,
        "bayesclv_format": FORMAT_VERSION,
        "bayesclv_version": _package_version(),
        "bayesclv_model": type(model).__name__,
        "priors": priors_to_json(model.priors),
        "time_unit": model.time_unit,
        "fit_method": model.fit_method,
        "data_attrs": json.dumps({k: str(v) for k, v in model.data.attrs.items()}),
        "diagnostics": json.dumps(dict(model.diagnostics or {})),
        "config": json.dumps(model._config()),
        "fit_state": json.dumps(model._fit_state()),
    }
    # Written under a temporary name in the same folder, then renamed: an interrupted or
    # failed save leaves the previous file (or none), never half a file.
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        tree.to_netcdf(temporary, engine="h5netcdf")
        if overwrite:
            os.replace(temporary, path)
        else:
            _rename_no_clobber(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _rename_no_clobber(temporary: Path, path: Path) -> None:
    """Give ``temporary`` the name ``path`` unless a file took that name meanwhile."""
    try:
        os.link(temporary, path)  # atomic, and fails if ``path`` exists
    except FileExistsError:
        raise OverwriteError(f"{str(path)!r} appeared while the model was written; pass overwrite=True "
                             "to replace it") from None
    except OSError:  # a file system without hard links: check, then rename
        if path.exists():
            raise OverwriteError(f"{str(path)!r} exists; pass overwrite=True to replace it") from None
        os.replace(temporary, path)


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

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    bayesclv.errors.ModelFileError
        The file is not one ``save`` wrote (corrupt, truncated, empty, another
        program's netCDF), is of a newer format than this version reads, names
        an unknown model class or one its contents do not fit, or holds a bad
        attribute, time unit or a non-finite posterior.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {str(path)!r}")
    where = str(path)
    try:
        tree = xr.open_datatree(path, engine="h5netcdf").load()
    except Exception as exc:  # h5py/netCDF raise OSError, ValueError or KeyError for a damaged file
        raise ModelFileError(f"not a readable netCDF file (empty, truncated or corrupt): {exc}", path=where) from exc
    attrs = tree.attrs
    _check_format(attrs, where)
    values = {}
    for name in _JSON_ATTRIBUTES:
        try:
            values[name] = json.loads(attrs.get(name, "{}"))
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"attribute {name!r} is not valid JSON ({exc})", path=where) from exc
    for name in ("posterior", "fit_data"):
        if name not in tree.children:
            raise ModelFileError(f"the {name!r} group is missing", path=where)
    model = _rebuild(tree, values, where)
    _check_posterior(model, where)
    return model


def _check_format(attrs: dict, where: str) -> None:
    name = attrs.get("bayesclv_model")
    if name is None:
        raise ModelFileError("not a bayesclv model file (no 'bayesclv_model' attribute; written by another "
                             "program?)", path=where)
    written = attrs.get("bayesclv_format", 1)
    if not isinstance(written, (int, np.integer)) or isinstance(written, bool) or written < 1:
        raise ModelFileError(f"the format number {written!r} is not a whole number >= 1", path=where)
    if written > FORMAT_VERSION:
        raise ModelFileError(
            f"written in model-file format {int(written)} by bayesclv {attrs.get('bayesclv_version', '?')}; this "
            f"bayesclv ({_package_version()}) reads formats up to {FORMAT_VERSION}: upgrade bayesclv to load it",
            path=where)
    if name not in _REGISTRY:
        raise ModelFileError(f"unknown model class {name!r}; known classes: {', '.join(sorted(_REGISTRY))}",
                             path=where)
    for key in ("time_unit", "fit_method"):
        if key not in attrs:
            raise ModelFileError(f"the {key!r} attribute is missing", path=where)
    try:
        check_time_unit(attrs["time_unit"])
    except ValueError as exc:
        raise ModelFileError(f"bad time unit: {exc}", path=where) from exc
    if attrs["fit_method"] not in FIT_METHODS:
        raise ModelFileError(f"unknown fit method {attrs['fit_method']!r}; one of {FIT_METHODS} expected",
                             path=where)


def _rebuild(tree: xr.DataTree, values: dict, where: str) -> Any:
    """An instance of the file's class with its configuration, data and posterior."""
    name = tree.attrs["bayesclv_model"]
    cls = _REGISTRY[name]
    try:
        config = values["config"]
        if not isinstance(config, dict):
            raise TypeError(f"config is {type(config).__name__}, not a mapping")
        model = cls(priors=priors_from_json(tree.attrs["priors"]), **config)
        data = tree["fit_data"].to_dataset().to_dataframe().reset_index()
        data.attrs = values["data_attrs"]
        model.data = data
        model.time_unit = tree.attrs["time_unit"]
        model.fit_method = tree.attrs["fit_method"]
        model.diagnostics = FitDiagnostics(values["diagnostics"])
        model.idata = xr.DataTree.from_dict(
            {child: tree[child].to_dataset() for child in tree.children if child != "fit_data"}
        )
        posterior = model.idata["posterior"].to_dataset()
        missing = [v for v in model._summary_names() if v not in posterior]
        if missing:
            raise KeyError(f"the posterior lacks {missing}")
        model._restore_fit_state(posterior, values["fit_state"])
    except (KeyError, TypeError, ValueError) as exc:  # BayesCLVError is a ValueError
        raise ModelFileError(f"the contents do not fit the class it names, {name}: {exc}", path=where) from exc
    return model


def _check_posterior(model: Any, where: str) -> None:
    bad = [name for name, values in model.idata["posterior"].to_dataset().data_vars.items()
           if np.issubdtype(values.dtype, np.number) and not np.isfinite(values.values).all()]
    if bad:
        share = {name: np.mean(~np.isfinite(model.idata["posterior"][name].values)) for name in bad}
        shown = ", ".join(f"{name} ({s:.0%} of its values)" for name, s in share.items())
        raise ModelFileError(f"the posterior holds non-finite values: {shown}", path=where)
