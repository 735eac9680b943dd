"""Find and measure what memwarden watches on this host: processes, cgroups, their memory.

A neutral leaf package: the exporter measures with it, the responder finds what to act on
with it. Roots are parameters (`proc_root`, `cgroup_root`) so tests run on fake trees.

    target = resolve(component)               # live pids and cgroup of a policy component
    working_set_bytes(target)                 # what memwarden_component_memory_bytes shows
    Resolver(policy.components).resolve_all() # all components, one /proc scan, cached
"""

from .cgroup_memory import CgroupMemory, effective_limit, read_memory
from .cgroupfs import Cgroup, Hierarchy
from .procfs import FileReader
from .psi import parse_pressure, read_pressure
from .spec import ComponentSpec
from .targets import (
    DEFAULT_CGROUP_ROOT,
    DEFAULT_PROC_ROOT,
    ComponentTarget,
    Resolver,
    process_memory_bytes,
    resolve,
    working_set_bytes,
)
from .units import unit_name

__all__ = [
    "DEFAULT_CGROUP_ROOT",
    "DEFAULT_PROC_ROOT",
    "Cgroup",
    "CgroupMemory",
    "ComponentSpec",
    "ComponentTarget",
    "FileReader",
    "Hierarchy",
    "Resolver",
    "effective_limit",
    "parse_pressure",
    "process_memory_bytes",
    "read_memory",
    "read_pressure",
    "resolve",
    "unit_name",
    "working_set_bytes",
]
