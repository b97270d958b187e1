"""sm-assets: SageMaker Model Monitor inventory of an AWS organization, as Dagster assets.

The Dagster API, `SageMakerMonitoringInventory` (a component, registered with `dg` through the package's
`dagster_dg_cli.registry_modules` entry point) and `build_defs` (the same from Python), is imported on first
use: the CLI and the core do not import Dagster (it is slow to import).
"""

from typing import Any

__all__ = ["SageMakerMonitoringInventory", "build_defs"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from sm_assets.defs import component

        return getattr(component, name)
    raise AttributeError(f"module 'sm_assets' has no attribute {name!r}")


def __dir__() -> list[str]:
    # `dg list components` finds the component by listing this module's attributes.
    return sorted({*globals(), *__all__})
