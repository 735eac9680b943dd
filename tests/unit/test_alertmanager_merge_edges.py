"""`memwarden alertmanager merge` on the configs operators really have: hand edits, odd layouts, file modes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml

from memwarden.generator.alertmanager.merge import MergeError, merge, merge_text
from memwarden.generator.cli import main_alertmanager
from memwarden.policy import Policy, load_policy
from support import fastyaml

RICH = Path(__file__).resolve().parents[1] / "golden" / "alertmanager" / "in-components-and-receivers.yaml"

BASE = """\
route:
  receiver: default
  routes:
  - matchers: [team="db"]
    receiver: dba-pager
receivers:
- name: default
  email_configs:
  - to: ops@example.com
    from: am@example.com
    smarthost: mail.example.com:25
- name: dba-pager
  webhook_configs:
  - url: http://127.0.0.1:9/dba
"""


@pytest.fixture(scope="module")
def policy() -> Policy:
    return load_policy()[0]


def _hand_add_route(merged: str, receiver: str) -> str:
    """Add a child route of the operator's first among memwarden's subtree's own routes."""
    lines = merged.splitlines(keepends=True)
    root = lines.index("  - receiver: memwarden-unrouted\n")  # the head
    under = next(i for i in range(root + 1, len(lines)) if lines[i] == "    routes:\n")
    lines.insert(under + 1, f'    - matchers: [service="postgres"]\n      receiver: {receiver}\n')
    return "".join(lines)


def test_an_operator_receiver_used_by_a_hand_added_route_in_memwardens_subtree_is_kept(policy: Policy) -> None:
    edited = _hand_add_route(merge_text(BASE, policy), "dba-pager")
    assert any(r.get("receiver") == "dba-pager" for r in fastyaml.load(edited)["route"]["routes"][0]["routes"])
    result = merge(edited, policy)
    names = [r["name"] for r in fastyaml.load(result.text)["receivers"]]
    assert "dba-pager" in names
    assert not [note for note in result.notes if "removed receiver dba-pager" in note]
    assert any("routes memwarden did not write inside them (using dba-pager)" in note for note in result.notes)
    assert merge_text(result.text, policy) == result.text


def test_an_operator_receiver_only_the_hand_added_route_uses_is_kept_too(policy: Policy) -> None:
    base = BASE + "- name: dba-oncall\n"
    edited = _hand_add_route(merge_text(base, policy), "dba-oncall")
    assert "dba-oncall" in [r["name"] for r in fastyaml.load(merge_text(edited, policy))["receivers"]]


def test_an_in_place_merge_keeps_the_files_mode_and_a_symlink(tmp_path: Path) -> None:
    config = tmp_path / "alertmanager.yml"
    config.write_text(BASE.replace("receivers:\n", "global:\n  smtp_auth_password: secret\nreceivers:\n", 1))
    config.chmod(0o600)
    link = tmp_path / "current.yml"
    link.symlink_to(config.name)
    assert main_alertmanager(["merge", str(link), "-o", str(link)]) == 0
    assert link.is_symlink() and os.readlink(link) == config.name
    assert "memwarden-unrouted" in config.read_text()
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert main_alertmanager(["merge", str(config), "-o", str(config)]) == 0
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    # A new file gets the usual mode.
    fresh = tmp_path / "new" / "fresh.yml"
    assert main_alertmanager(["merge", str(config), "-o", str(fresh)]) == 0
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o644


@pytest.mark.skipif(os.geteuid() != 0, reason="only root may give a file to another owner")
def test_an_in_place_merge_keeps_the_files_owner_and_group(tmp_path: Path) -> None:
    config = tmp_path / "alertmanager.yml"
    config.write_text(BASE)
    os.chown(config, 65534, 65534)
    assert main_alertmanager(["merge", str(config), "-o", str(config)]) == 0
    assert (config.stat().st_uid, config.stat().st_gid) == (65534, 65534)


@pytest.mark.parametrize("key", ["receivers", "inhibit_rules", "time_intervals", "templates"])
def test_an_empty_flow_list_takes_memwardens_entries(key: str) -> None:
    rich = load_policy(RICH)[0]
    base = (
        "route:\n  receiver: default\nreceivers:\n- name: default\n  webhook_configs: [{url: 'http://127.0.0.1:9/d'}]\n"
        if key != "receivers"
        else "route:\n  receiver: default\n"
    )
    base += f"{key}: []   # none yet\n"
    if key == "receivers":
        base = base.replace("  receiver: default\n", "  receiver: memwarden-unrouted\n")
    merged = merge_text(base, rich)
    assert fastyaml.load(merged)[key], merged
    assert merge_text(merged, rich) == merged


def test_sections_are_added_before_a_document_end_marker(policy: Policy) -> None:
    merged = merge_text(
        "---\nroute:\n  receiver: default\nreceivers:\n  - name: default\n    webhook_configs: [{url: 'http://127.0.0.1:9/d'}]\n...\n",
        policy,
    )
    assert merged.startswith("---\n") and merged.endswith("...\n")
    assert fastyaml.load(merged)["inhibit_rules"]
    assert merge_text(merged, policy) == merged


def test_a_flow_style_root_route_is_refused_with_a_clear_message(policy: Policy) -> None:
    with pytest.raises(MergeError, match=r"has its `route` in flow style .*write it as a block mapping"):
        merge_text("route: {receiver: default, group_by: [alertname]}\nreceivers:\n  - name: default\n", policy)


def test_a_mapping_that_merges_itself_is_refused_without_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = tmp_path / "alertmanager.yml"
    base.write_text(
        "route: &r\n  receiver: default\n  routes:\n    - <<: *r\n      receiver: db\nreceivers:\n  - name: default\n  - name: db\n"
    )
    out = tmp_path / "out.yml"
    assert main_alertmanager(["merge", str(base), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: {base} cannot be read: ") and "nothing was written" in err and not out.exists()


def test_a_tab_before_a_comment_gets_a_message_that_says_to_use_spaces(policy: Policy) -> None:
    with pytest.raises(MergeError, match="(?s)is not valid YAML: .*replace it with spaces"):
        merge_text("route:\n  receiver: default\t# the default\nreceivers:\n  - name: default\n", policy)


def test_a_crlf_config_keeps_its_line_ends(tmp_path: Path, policy: Policy, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "alertmanager.yml"
    config.write_bytes(BASE.replace("\n", "\r\n").encode())
    assert main_alertmanager(["merge", str(config), "-o", str(config)]) == 0
    merged = config.read_bytes().decode()
    assert "memwarden-unrouted" in merged and merged.count("\n") == merged.count("\r\n")
    for line in BASE.splitlines():
        assert line + "\r\n" in merged
    capsys.readouterr()
    assert main_alertmanager(["merge", str(config), "-o", str(config)]) == 0
    assert "unchanged" in capsys.readouterr().err and config.read_bytes().decode() == merged


def test_the_operators_path_to_memwardens_template_is_kept_unless_another_is_asked_for(
    tmp_path: Path, policy: Policy, capsys: pytest.CaptureFixture[str]
) -> None:
    base = BASE + "templates:\n- /etc/alertmanager/memwarden.tmpl\n"
    result = merge(base, policy)
    assert fastyaml.load(result.text)["templates"] == ["/etc/alertmanager/memwarden.tmpl"]
    assert not [note for note in result.notes if "template" in note]
    config = tmp_path / "alertmanager.yml"
    config.write_text(result.text)
    assert main_alertmanager(["merge", str(config), "-o", str(config), "--template", "/srv/am/memwarden.tmpl"]) == 0
    assert fastyaml.load(config.read_text())["templates"] == ["/srv/am/memwarden.tmpl"]
    assert "replaced template /etc/alertmanager/memwarden.tmpl with /srv/am/memwarden.tmpl" in capsys.readouterr().err
    assert main_alertmanager(["merge", str(config), "-o", str(config)]) == 0
    assert fastyaml.load(config.read_text())["templates"] == ["/srv/am/memwarden.tmpl"]


def test_leftovers_of_a_deleted_subtree_get_a_message_that_says_how_to_clear_them(policy: Policy) -> None:
    merged = fastyaml.load(merge_text(BASE, policy))
    merged["route"]["routes"] = [r for r in merged["route"]["routes"] if r["receiver"] != "memwarden-unrouted"]
    with pytest.raises(MergeError, match=r"delete the old memwarden-… receivers and time intervals too, or restore those routes"):
        merge_text(yaml.safe_dump(merged, sort_keys=False), policy)


def test_a_section_the_merge_added_goes_when_nothing_is_left_in_it_but_a_commented_one_stays(policy: Policy) -> None:
    rich = load_policy(RICH)[0]
    added = merge_text(BASE, rich)
    assert "\ntime_intervals:\n" in added
    assert "time_intervals" not in merge_text(added, policy)
    commented = added.replace("\ntime_intervals:\n", "\ntime_intervals:  # maintenance windows\n")
    assert "time_intervals:  # maintenance windows\n" in merge_text(commented, policy)
