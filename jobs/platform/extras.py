"""Optional packages: the ones a setup.cfg extra installs, imported where their feature runs.

A worker installed without an extra imports and runs everything else; only the feature that
needs the package fails, with :class:`~jobs.platform.errors.MissingExtra` naming what to install.
"""

from __future__ import annotations

import importlib
import types

from jobs.platform.errors import MissingExtra


def optional_import(module: str, *, extra: str, feature: str) -> types.ModuleType:
    """Import ``module`` (installed by the ``extra`` extra), or raise MissingExtra saying how to get it.

    ``feature`` names what needs the module, for the message (e.g. "Backing up PostgreSQL").
    Imported modules are cached by Python, so calling this on every use costs a dict look-up.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtra(
            f"{feature} needs the {module} package, which cannot be imported ({error}); "
            f"install it with: pip install 'jobdeck[{extra}]'"
        ) from error
