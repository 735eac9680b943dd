"""Fixtures the adversarial tests share."""

from support.disks import small_disk  # noqa: F401 - a fixture, found by its name
