"""Unit names and where systemd puts their cgroups."""

from __future__ import annotations

from memwarden.system.units import unit_candidates, unit_name


def test_unit_names_and_where_systemd_puts_them() -> None:
    assert unit_name("api") == "api.service"
    assert unit_name("backup.scope") == "backup.scope"
    assert unit_candidates("a-b-c.slice") == ["/a.slice/a-b.slice/a-b-c.slice"]
    assert unit_candidates("-.slice") == ["/"]
    assert unit_candidates("get-ty@tty1.service") == [
        "/system.slice/get-ty@tty1.service",
        "/system.slice/system-get\\x2dty.slice/get-ty@tty1.service",
    ]
