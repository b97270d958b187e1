"""The sm-assets code location (`dagster dev`, `dg`): the component instance in sm_assets/defs/defs.yaml,
loaded the way a deployment loads its own defs folder."""

from pathlib import Path

import dagster as dg

import sm_assets.defs
from sm_assets.core.config import Settings
from sm_assets.defs.component import build_inventory_definitions

_PACKAGE = Path(__file__).parent


def build_definitions(settings: Settings) -> dg.Definitions:
    """The inventory with the historical names and these settings (the CLI's in-process runs, the tests)."""
    return build_inventory_definitions(settings)


def _load() -> dg.Definitions:
    if (_PACKAGE.parent / "pyproject.toml").is_file():  # a source checkout: its [tool.dg] names the defs folder
        return dg.load_from_defs_folder(path_within_project=_PACKAGE)
    # Installed from a wheel, no pyproject: the same defs folder (walking up from site-packages could find
    # another project's config).
    return dg.ComponentTree.from_module(defs_module=sm_assets.defs, project_root=_PACKAGE.parent).build_defs()


defs = _load()
