#!/bin/sh
# Install the real Prometheus-family programs the tests and `memwarden up` run:
# promtool/prometheus, amtool/alertmanager and, for the peer benchmarks and the
# node_exporter profile, Debian's node_exporter and process-exporter; victoria-metrics
# (with vmalert) for the test that compares the rules' values in both engines.
set -eu

missing=""
have() { command -v "$1" >/dev/null 2>&1; }
have promtool && have prometheus || missing="$missing prometheus"
have amtool && { have prometheus-alertmanager || have alertmanager; } || missing="$missing prometheus-alertmanager"
have prometheus-node-exporter || have node_exporter || missing="$missing prometheus-node-exporter"
have prometheus-process-exporter || have process-exporter || missing="$missing prometheus-process-exporter"
have victoria-metrics && have vmalert || missing="$missing victoria-metrics"

[ -z "$missing" ] && exit 0

if [ "$(id -u)" = "0" ] && have apt-get; then
    echo "installing Debian packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || true
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
    exit 0
fi

echo "error: missing programs; install them with:" >&2
echo "  sudo apt-get install$missing" >&2
exit 1
