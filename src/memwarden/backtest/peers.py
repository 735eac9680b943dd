"""The rules memwarden is measured against, as their projects publish them.

- the node-mixin's NodeMemoryHighUtilization (memoryHighUtilizationThreshold 90, for 15m);
- awesome-prometheus-alerts' HostOutOfMemory (host-and-hardware, < 10 % available for 2m);
- the naive prediction a newcomer writes from the predict_linear documentation:
  available memory fitted over 30 minutes runs out within the next 30, for 5 minutes.
"""

from __future__ import annotations

PEER_GROUP = "peers"
NODE_MIXIN = "NodeMemoryHighUtilization"
AWESOME = "HostOutOfMemory"
NAIVE_PREDICTION = "NaivePredictLinear"
PEERS = (NODE_MIXIN, AWESOME, NAIVE_PREDICTION)
# What the peers read: node_exporter's series under the job name their projects assume.
PEER_JOB, PEER_TOTAL, PEER_AVAILABLE = "node", "node_memory_MemTotal_bytes", "node_memory_MemAvailable_bytes"

PEER_RULES = {
    "groups": [
        {
            "name": PEER_GROUP,
            "rules": [
                {
                    "alert": NODE_MIXIN,
                    "expr": '100 - (node_memory_MemAvailable_bytes{job="node"} / node_memory_MemTotal_bytes{job="node"} * 100) > 90',
                    "for": "15m",
                    "labels": {"severity": "warning"},
                },
                {
                    "alert": AWESOME,
                    "expr": 'node_memory_MemAvailable_bytes{job="node"} / node_memory_MemTotal_bytes{job="node"} * 100 < 10',
                    "for": "2m",
                    "labels": {"severity": "warning"},
                },
                {
                    "alert": NAIVE_PREDICTION,
                    "expr": 'predict_linear(node_memory_MemAvailable_bytes{job="node"}[30m], 1800) < 0',
                    "for": "5m",
                    "labels": {"severity": "warning"},
                },
            ],
        }
    ]
}
