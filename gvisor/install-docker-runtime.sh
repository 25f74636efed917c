#!/usr/bin/env bash
# Registers gVisor's runsc as the Docker runtime `runsc` (gvisor/daemon.json), for docker-compose.yml's
# sandbox service. Installs Debian's runsc when missing, merges the entry into /etc/docker/daemon.json
# (other settings are kept) and reloads dockerd (SIGHUP). Idempotent; needs root.
#   --platform=ptrace   the 2022 build has no systrap, and kvm hangs on VMs of this kind
#   --network=none      runsc refuses to start in the host's network namespace otherwise
#   --host-uds=create   the sandbox daemon's socket, bound inside gVisor, must be a real socket on the
#                       shared volume so that the gateway (runc) can connect to it
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
runsc="$("$here/../sandbox/daemon/scripts/install-runsc.sh")"
conf=/etc/docker/daemon.json
python3 - "$conf" "$here/daemon.json" "$runsc" <<'PY'
import json, os, sys
conf, snippet, runsc = sys.argv[1:]
current = json.load(open(conf)) if os.path.exists(conf) and os.path.getsize(conf) else {}
entry = json.load(open(snippet))["runtimes"]["runsc"]
entry["path"] = runsc
if current.get("runtimes", {}).get("runsc") != entry:
    current.setdefault("runtimes", {})["runsc"] = entry
    os.makedirs(os.path.dirname(conf), exist_ok=True)
    with open(conf + ".tmp", "w") as f:
        json.dump(current, f, indent=2)
    os.replace(conf + ".tmp", conf)
    print(f"install-docker-runtime: wrote the runsc runtime to {conf}", file=sys.stderr)
PY
if pid="$(pidof dockerd)"; then
    kill -HUP $pid
    for _ in $(seq 20); do
        docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"' && break
        sleep 0.5
    done
fi
if docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"'; then
    echo "install-docker-runtime: Docker lists the runsc runtime" >&2
else
    echo "install-docker-runtime: Docker does not list runsc (is dockerd running?); docker-compose.yml's sandbox needs it, docker-compose.native.yml does not" >&2
    exit 1
fi
