"""Model sizes: the DeepSeek catalog, what fits this machine, pull/switch/loaded."""

from .catalog import Machine, ModelSpec, catalog, recommend, spec_for
from .manage import InsufficientResources, check_resources, loaded, pull, switch

__all__ = [
    "InsufficientResources",
    "Machine",
    "ModelSpec",
    "catalog",
    "check_resources",
    "loaded",
    "pull",
    "recommend",
    "spec_for",
    "switch",
]
