"""Model sizes: the DeepSeek family, what fits this machine, pull/switch/loaded."""

from ..errors import InsufficientResources
from .family import ModelSpec, catalog, platform_mode, reported, spec_for
from .fit import Machine, recommend
from .manage import check_resources, lesson, loaded, measure, pull, switch

__all__ = [
    "InsufficientResources",
    "Machine",
    "ModelSpec",
    "catalog",
    "check_resources",
    "lesson",
    "loaded",
    "measure",
    "platform_mode",
    "pull",
    "recommend",
    "reported",
    "spec_for",
    "switch",
]
