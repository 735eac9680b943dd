"""The exporter and the responder as DaemonSets, with their policy, Services and ServiceMonitors.

Both run on every node and see the node, not their pod: the exporter reads the node's
/proc and /sys through read-only hostPath mounts, the responder shares the node's PID
namespace to signal its processes. Each gets only the Linux capabilities its systemd
unit has (deploy/systemd/), for the same reasons.
"""

from __future__ import annotations

from typing import Any

import yaml

from ...policy import Policy, selector_job
from .objects import metadata, selector_labels

EXPORTER = "memwarden-exporter"
RESPONDER = "memwarden-responder"
POLICY_CONFIGMAP = "memwarden-policy"
EXPORTER_PORT = 9105
RESPONDER_PORT = 9106
SECRETS_DIR = "/etc/memwarden/secrets"
STATE_DIR = "/var/lib/memwarden/responder"
# Kubernetes gives added capabilities to a container's root user only (no ambient
# capabilities for others), so both run as uid 0 with everything else dropped.
EXPORTER_CAPABILITIES = ["DAC_READ_SEARCH", "SYS_PTRACE"]
RESPONDER_CAPABILITIES = ["KILL", "DAC_OVERRIDE", "DAC_READ_SEARCH", "SYS_PTRACE"]


def responder_url(policy: Policy) -> str:
    return f"http://{RESPONDER}.{policy.kubernetes.namespace}.svc:{RESPONDER_PORT}/alerts"


def token_key(policy: Policy) -> str:
    """Return the Secret key of the responder's token: the file name the policy gives it."""
    return policy.responses.auth.token_file.rsplit("/", 1)[-1] if policy.responses.auth.token_file else "responder.token"


def wired_policy(policy: Policy) -> Policy:
    """Return the policy as the pods run it: the responder at its Service, the token from the Secret."""
    data = policy.model_dump(mode="json", by_alias=True)
    token = f"{SECRETS_DIR}/{token_key(policy)}"
    data["alertmanager"]["responder"].update({"url": responder_url(policy), "credentials_file": token})
    if data["responses"]["auth"]["mode"] == "bearer":
        data["responses"]["auth"]["token_file"] = token
    if data["responses"]["identity"]["labels"] is None:
        # instance is the exporter pod's address, which no node has; the host label names the node.
        data["responses"]["identity"]["labels"] = [policy.source.host_label]
    return Policy.model_validate(data)


def policy_configmap(policy: Policy) -> dict[str, Any]:
    text = yaml.safe_dump(wired_policy(policy).model_dump(mode="json", by_alias=True), sort_keys=False)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(policy, POLICY_CONFIGMAP, "policy"),
        "data": {"policy.yaml": text},
    }


def _security(capabilities: list[str], *, writable_root: bool = False) -> dict[str, Any]:
    return {
        "runAsUser": 0,
        "runAsNonRoot": False,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": not writable_root,
        "capabilities": {"drop": ["ALL"], "add": list(capabilities)},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _host_path(name: str, path: str, kind: str = "Directory") -> dict[str, Any]:
    return {"name": name, "hostPath": {"path": path, "type": kind}}


def _probe(port: str, path: str) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": port}, "periodSeconds": 10, "timeoutSeconds": 5, "failureThreshold": 3}


def _daemonset(policy: Policy, name: str, component: str, pod: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": metadata(policy, name, component),
        "spec": {
            "selector": {"matchLabels": selector_labels(component)},
            # One node at a time: a bad image or policy stops after the first node.
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": {**policy.kubernetes.labels, **selector_labels(component)}},
                "spec": {
                    "automountServiceAccountToken": False,  # neither talks to the API server
                    # Every node, control plane and tainted ones too, like node_exporter.
                    "tolerations": [{"operator": "Exists"}],
                    **pod,
                },
            },
        },
    }


def _container(policy: Policy, name: str, args: list[str], port: int, security: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "image": policy.kubernetes.image,
        "imagePullPolicy": policy.kubernetes.image_pull_policy,
        "command": ["memwarden"],
        "args": args,
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "securityContext": security,
    }


def exporter_daemonset(policy: Policy) -> dict[str, Any]:
    args = ["exporter", "-p", "/etc/memwarden/policy.yaml", "--listen", f":{EXPORTER_PORT}",
            "--path.procfs", "/host/proc", "--path.cgroupfs", "/host/sys/fs/cgroup",
            # The pod's own cgroup is not the node: report the node's memory always.
            "--memory.scope", "host"]  # fmt: skip
    container = _container(policy, "exporter", args, EXPORTER_PORT, _security(EXPORTER_CAPABILITIES))
    container.update(
        resources={"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "128Mi"}},
        readinessProbe=_probe("http", "/metrics"),
        volumeMounts=[
            {"name": "policy", "mountPath": "/etc/memwarden", "readOnly": True},
            # HostToContainer: the node's later mounts (a new cgroup) show up without a restart.
            {"name": "proc", "mountPath": "/host/proc", "readOnly": True, "mountPropagation": "HostToContainer"},
            {"name": "sys", "mountPath": "/host/sys", "readOnly": True, "mountPropagation": "HostToContainer"},
        ],
    )
    pod = {
        "containers": [container],
        "volumes": [
            {"name": "policy", "configMap": {"name": POLICY_CONFIGMAP}},
            _host_path("proc", "/proc"),
            _host_path("sys", "/sys"),
        ],
    }
    return _daemonset(policy, EXPORTER, "exporter", pod)


def responder_daemonset(policy: Policy) -> dict[str, Any]:
    args = ["responder", "-p", "/etc/memwarden/policy.yaml", "--listen", f":{RESPONDER_PORT}", "--state-dir", STATE_DIR]
    container = _container(policy, "responder", args, RESPONDER_PORT, _security(RESPONDER_CAPABILITIES))
    container.update(
        # Its limit is what it needs to keep acting while the node runs out of memory.
        resources={"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
        readinessProbe=_probe("http", "/-/ready"),
        livenessProbe=_probe("http", "/-/healthy"),
        volumeMounts=[
            {"name": "policy", "mountPath": "/etc/memwarden", "readOnly": True},
            {"name": "token", "mountPath": SECRETS_DIR, "readOnly": True},
            # Cooldowns, caps and what to thaw survive a pod restart on the same node.
            {"name": "state", "mountPath": STATE_DIR},
            # Throttles write memory.high in the node's cgroups.
            {"name": "cgroup", "mountPath": "/sys/fs/cgroup"},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    )
    pod = {
        # The node's processes, so signal, freeze and kill reach them by pid.
        "hostPID": True,
        # The node's network, so the responder finds itself by the node's hostname and
        # addresses (its identity) and acts only on alerts about its own node.
        "hostNetwork": True,
        "dnsPolicy": "ClusterFirstWithHostNet",
        # Stopping waits out running actions (a kill's sigkill_after) like the systemd unit.
        "terminationGracePeriodSeconds": 90,
        "containers": [container],
        "volumes": [
            {"name": "policy", "configMap": {"name": POLICY_CONFIGMAP}},
            {"name": "token", "secret": {"secretName": policy.kubernetes.secret, "defaultMode": 0o400,
                                         "items": [{"key": token_key(policy), "path": token_key(policy)}]}},
            _host_path("state", STATE_DIR, "DirectoryOrCreate"),
            _host_path("cgroup", "/sys/fs/cgroup"),
            {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
        ],
    }  # fmt: skip
    return _daemonset(policy, RESPONDER, "responder", pod)


def service(policy: Policy, name: str, component: str, port: int) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "selector": selector_labels(component),
        "ports": [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}],
    }
    if component == "exporter":
        spec["clusterIP"] = "None"  # scraped per pod, never load-balanced
    return {"apiVersion": "v1", "kind": "Service", "metadata": metadata(policy, name, component), "spec": spec}


def service_monitor(policy: Policy, name: str, component: str, job: str) -> dict[str, Any]:
    """Return a ServiceMonitor whose targets carry the job the rules select and the node as host."""
    relabelings = [
        # The operator's job is the Service's name; the rules select the policy's.
        {"action": "replace", "targetLabel": "job", "replacement": job},
        # The host label names the node, as the responder and the dashboards know it.
        {"action": "replace", "sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": policy.source.host_label},
    ]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": metadata(policy, name, component),
        "spec": {
            "selector": {"matchLabels": selector_labels(component)},
            "namespaceSelector": {"matchNames": [policy.kubernetes.namespace]},
            "endpoints": [{"port": "http", "interval": str(policy.source.scrape_interval), "relabelings": relabelings}],
        },
    }


def exporter_objects(policy: Policy) -> list[dict[str, Any]]:
    """Return the exporter's DaemonSet, Service and ServiceMonitor."""
    job = selector_job(policy.source.component_selector) or "memwarden"
    return [
        exporter_daemonset(policy),
        service(policy, EXPORTER, "exporter", EXPORTER_PORT),
        service_monitor(policy, EXPORTER, "exporter", job),
    ]


def responder_objects(policy: Policy) -> list[dict[str, Any]]:
    """Return the responder's DaemonSet, Service and ServiceMonitor."""
    return [
        responder_daemonset(policy),
        service(policy, RESPONDER, "responder", RESPONDER_PORT),
        service_monitor(policy, RESPONDER, "responder", "memwarden-responder"),
    ]
