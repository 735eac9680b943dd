"""Two clusters that share instance names stay two sets of hosts in the default policy's rules.

Each Prometheus of a fleet adds its own `cluster` (external_labels or relabeling); the
same `ip:port` then names two hosts. promtool proves the recorded series keep them apart,
nothing is summed across clusters, and one cluster's firing tier does not hold the other
cluster's same instance inside its hysteresis band.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from memwarden.generator import render_bundle
from memwarden.policy import load_policy

INSTANCE = 'instance="10.0.0.5:9105", job="memwarden"'


def _host(cluster: str, available: int) -> list[dict[str, str]]:
    labels = f'{INSTANCE}, cluster="{cluster}"'
    return [
        {"series": f"memwarden_memory_total_bytes{{{labels}}}", "values": "1000x80"},
        {"series": f"memwarden_memory_available_bytes{{{labels}}}", "values": f"{available}x80"},
        {"series": f"up{{{labels}}}", "values": "1x80"},
    ]


def _test() -> dict:
    usage = "instance:memwarden_memory_usage:ratio"
    return {
        "rule_files": ["../rules/memwarden.rules.yaml", "../rules/memwarden.alerts.yaml"],
        "evaluation_interval": "15s",
        "tests": [
            {
                "name": "the same instance in two clusters is recorded and alerted as two hosts",
                "interval": "15s",
                # a at 96 % (every tier fires), b at 92 %: inside the emergency tier's band only.
                "input_series": _host("a", 40) + _host("b", 80),
                "promql_expr_test": [
                    {
                        "expr": usage,
                        "eval_time": "10m",
                        "exp_samples": [
                            {"labels": f'{usage}{{{INSTANCE}, cluster="a"}}', "value": 0.96},
                            {"labels": f'{usage}{{{INSTANCE}, cluster="b"}}', "value": 0.92},
                        ],
                    },
                    {
                        "expr": "instance:memwarden_memory_available:bytes",
                        "eval_time": "10m",
                        "exp_samples": [
                            {"labels": f'instance:memwarden_memory_available:bytes{{{INSTANCE}, cluster="a"}}', "value": 40},
                            {"labels": f'instance:memwarden_memory_available:bytes{{{INSTANCE}, cluster="b"}}', "value": 80},
                        ],
                    },
                    {
                        "expr": 'count by (cluster, instance) (ALERTS{alertname="MemoryUsageEmergency", alertstate="firing"})',
                        "eval_time": "10m",
                        "exp_samples": [{"labels": '{cluster="a", instance="10.0.0.5:9105"}', "value": 1}],
                    },
                    {
                        "expr": 'count by (cluster) (ALERTS{alertname="MemoryUsageCritical", alertstate="firing"})',
                        "eval_time": "10m",
                        "exp_samples": [{"labels": '{cluster="a"}', "value": 1}, {"labels": '{cluster="b"}', "value": 1}],
                    },
                ],
            }
        ],
    }


def test_two_clusters_sharing_an_instance_stay_apart(tmp_path: Path, promtool: str) -> None:
    policy = load_policy()[0]
    for relative, text in render_bundle(policy, "test", ["rules"]).items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    test_file = tmp_path / "tests" / "clusters.yaml"
    test_file.parent.mkdir(exist_ok=True)
    test_file.write_text(yaml.safe_dump(_test(), sort_keys=False))
    result = subprocess.run([promtool, "test", "rules", str(test_file)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
