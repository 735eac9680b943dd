"""One collector per source of memory facts; each works alone on any registry."""

from .base import Source
from .cgroups import CgroupCollector
from .components import ComponentsCollector
from .meminfo import MeminfoCollector
from .pressure import PressureCollector
from .vmstat import VmstatCollector

__all__ = [
    "CgroupCollector",
    "ComponentsCollector",
    "MeminfoCollector",
    "PressureCollector",
    "Source",
    "VmstatCollector",
]
