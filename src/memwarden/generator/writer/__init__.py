"""The one writer of generated files: the banner and YAML dumper (format), the comparison
with a folder (check) and the bundle's replacement as a whole (replace)."""

from .check import BundleError, leftover_files, stale_files, unsafe_targets
from .format import as_text, banner, dump, was_generated
from .replace import recover, replace_bundle

__all__ = [
    "BundleError",
    "as_text",
    "banner",
    "dump",
    "leftover_files",
    "recover",
    "replace_bundle",
    "stale_files",
    "unsafe_targets",
    "was_generated",
]
