#!/usr/bin/env bash
# End-to-end test of the compose deployment (docker-compose.yml), against a local Docker daemon.
#
#   tests/docker/run.sh
#
# 1. loads the base image when missing: debootstrap's Debian bookworm (minbase) imported and tagged as
#    debian:bookworm-slim, the name the Dockerfiles use (no registry is needed; the rootfs tarball is
#    cached under ~/.cache/sluice/docker);
# 2. builds the images; the gateway and sandbox take the binaries the test command already built on the
#    host ($CARGO_TARGET_DIR/debug, staged in docker/prebuilt/, BINARIES=prebuilt): the Dockerfile's
#    `source` stage needs a Rust image, which this machine cannot pull;
# 3. checks `docker-compose config`;
# 4. starts the deployment (the default file: the sandbox under gVisor, `runtime: runsc`) with two
#    gateway instances and waits until every service is healthy;
# 5. with the Python MCP SDK through the proxy: tools/list, query_database on a mounted DuckDB
#    warehouse registered with `docker-compose exec gateway sluice connection add`, execute_code and
#    sandbox_status (backend gvisor); the code sees gVisor's kernel (4.4.0); escape attempts from a run
#    (another session's workspace, other processes, the network, writes outside the workspace and /tmp,
#    a background process outliving its run) all fail with the expected error;
# 6. kills the sandbox: a tool call says the sandbox is unavailable; starts it again: it works;
# 7. `down` and `up` again (volumes kept): keys, connections and the audit log survive;
# 7b. master key rotation with docker-compose.rotate.yml: both instances restarted with the new key and the
#    old one as the previous key, `sluice secrets rotate`, then the new key alone: the stored connection
#    still opens and the old key alone is refused;
# 8. sessions against two gateway instances: 50 calls each (cursor paging, workspace files), all on one
#    instance per session (affinity), and both instances used;
# 9. the native overlay (docker-compose.native.yml: runc, the daemon's native backend), briefly: up,
#    healthy, one execute_code;
# 10. `down -v`, also when a step fails.
#
# Docker must have the runsc runtime (gvisor/install-docker-runtime.sh registers it).
#
# Environment: SLUICE_DOCKER_KEEP=1 leaves the deployment up on failure (for inspection);
# SLUICE_DOCKER_HEALTH_TIMEOUT (seconds, default 300).
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
. .ci/env.sh

step() { echo "== $*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

cache="$HOME/.cache/sluice/docker"
work="$(mktemp -d /tmp/sluice-docker-test.XXXXXX)"
project="sluicetest$$"
export COMPOSE_PROJECT_NAME="$project"
export SLUICE_SECRETS_DIR="$work/secrets" SLUICE_WAREHOUSES="$work/warehouses" SLUICE_DBT_PROJECTS="$work/dbt"
export SLUICE_BIND=127.0.0.1
SLUICE_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export SLUICE_PORT
url="http://127.0.0.1:$SLUICE_PORT/mcp"
compose=(docker-compose -f docker-compose.yml)
native=(docker-compose -f docker-compose.yml -f docker-compose.native.yml)

cleanup() {
    local rc=$?
    if [[ $rc -ne 0 ]]; then
        echo "== failed (exit $rc); last logs:" >&2
        "${compose[@]}" logs --tail=30 >&2 2>&1 || true
    fi
    if [[ $rc -ne 0 && "${SLUICE_DOCKER_KEEP:-}" == 1 ]]; then
        echo "== SLUICE_DOCKER_KEEP=1: left project $project up (docker-compose -p $project ... down -v)" >&2
    else
        "${native[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# ---- 0. Docker itself ------------------------------------------------------------------------------------
docker info >/dev/null 2>&1 || fail "the Docker daemon is not reachable (scripts/setup-test-deps.sh starts it)"
command -v docker-compose >/dev/null || fail "docker-compose is missing (apt-get install docker-compose)"
# BuildKit builds only the stages a target needs. The docker CLI on PATH may be a newer one without the
# buildx plugin; Debian's 20.10 CLI has BuildKit built in.
docker_build=""
for cli in docker /usr/bin/docker; do
    if command -v "$cli" >/dev/null && DOCKER_BUILDKIT=1 "$cli" build --help >/dev/null 2>&1; then
        docker_build="$cli"; break
    fi
done
[[ -n "$docker_build" ]] || fail "no docker CLI with BuildKit (install docker-buildx, or Debian's docker.io CLI)"

# ---- 1. base image ---------------------------------------------------------------------------------------
step "1. base image debian:bookworm-slim"
if docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
    echo "present"
else
    tarball="$cache/bookworm-minbase.tar"
    if [[ ! -s "$tarball" ]]; then
        command -v debootstrap >/dev/null || fail "debootstrap is missing (apt-get install debootstrap)"
        mirror="$(grep -rhoE '^(deb|URIs:) +https?://[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null \
            | grep -v security | head -1 | awk '{print $2}')"
        mirror="${mirror:-http://deb.debian.org/debian}"
        echo "debootstrap --variant=minbase bookworm from $mirror (about a minute)"
        rm -rf "$cache/rootfs" && mkdir -p "$cache"
        debootstrap --variant=minbase bookworm "$cache/rootfs" "$mirror" >"$cache/debootstrap.log" 2>&1 \
            || fail "debootstrap failed; see $cache/debootstrap.log"
        tar -C "$cache/rootfs" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
    fi
    docker import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]' "$tarball" sluice-base/debian:bookworm >/dev/null
    docker tag sluice-base/debian:bookworm debian:bookworm-slim
    echo "imported $tarball as debian:bookworm-slim"
fi

# ---- 2. images ---------------------------------------------------------------------------------------------
step "2. images (gateway and sandbox from the host's debug binaries in $CARGO_TARGET_DIR/debug)"
for b in sluice sluice-sandbox sluice-sandbox-zygote; do
    [[ -x "$CARGO_TARGET_DIR/debug/$b" ]] || fail "$CARGO_TARGET_DIR/debug/$b is missing: cargo build -p sluice-gateway -p sluice-sandbox -p sluice-sandbox-zygote first"
    ln -f "$CARGO_TARGET_DIR/debug/$b" "docker/prebuilt/$b" 2>/dev/null || cp -f "$CARGO_TARGET_DIR/debug/$b" "docker/prebuilt/$b"
done
# A network whose egress proxy re-signs TLS: trust its CA while pip fetches the sandbox's wheels.
find docker/certs -name '*.crt' -delete
shopt -s nullglob
for crt in /usr/local/share/ca-certificates/*.crt; do cp "$crt" docker/certs/; done
shopt -u nullglob
build() { # target-or-dir tag [args...]
    local log="$work/build-$2.log"
    if ! DOCKER_BUILDKIT=1 "$docker_build" build --progress=plain "${@:3}" -t "sluice/$2:latest" >"$log" 2>&1; then
        tail -30 "$log" >&2; fail "building sluice/$2 failed"
    fi
    echo "built sluice/$2"
}
mkdir -p "$work"
build x postgres docker/postgres
build x proxy docker/proxy
build x sandbox --build-arg BINARIES=prebuilt --target sandbox .
build x gateway --build-arg BINARIES=prebuilt --target gateway .

# ---- 3. compose config -----------------------------------------------------------------------------------
step "3. docker-compose config"
mkdir -p "$SLUICE_SECRETS_DIR" "$SLUICE_WAREHOUSES" "$SLUICE_DBT_PROJECTS"
chmod 700 "$SLUICE_SECRETS_DIR"
head -c 32 /dev/urandom | base64 >"$SLUICE_SECRETS_DIR/master_key"
head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$SLUICE_SECRETS_DIR/store_password"
chmod 644 "$SLUICE_SECRETS_DIR"/*
docker-compose -f docker-compose.yml config -q || fail "docker-compose.yml is not valid"
"${compose[@]}" config -q || fail "docker-compose.yml + docker-compose.native.yml is not valid"
! grep -qE '^version:' docker-compose.yml || fail "docker-compose.yml has a version: key"
echo "valid (both the default file and the native overlay)"

# ---- gVisor: Docker must offer runsc ---------------------------------------------------------------------
step "gVisor runtime"
docker info --format '{{json .Runtimes}}' | grep -q '"runsc"' \
    || fail "Docker has no runsc runtime (docker info lists: $(docker info --format '{{json .Runtimes}}')); docker-compose.yml runs the sandbox with runtime: runsc (gvisor/install-docker-runtime.sh registers it)"
echo "Docker has the runsc runtime: $(docker info --format '{{json .Runtimes.runsc}}')"
# Fail closed: the sandbox service as docker-compose.yml defines it, but with a writable root file system
# (gVisor ignores read-only flags on binds, so the installation would be writable): the daemon must refuse.
fc_log="$(docker run --rm --runtime=runsc --network=none --user 0:0 --cap-drop ALL \
    --cap-add SYS_ADMIN --cap-add SYS_CHROOT --cap-add SETUID --cap-add SETGID --cap-add SETPCAP --cap-add CHOWN \
    --cap-add DAC_OVERRIDE --cap-add KILL --tmpfs /var/lib/sluice-sandbox:uid=10001,gid=10001,mode=0700 --tmpfs /tmp \
    --tmpfs /run/sluice-sandbox sluice/sandbox:latest serve --socket /run/sluice-sandbox/sandbox.sock \
    --root /var/lib/sluice-sandbox/root --python /opt/sluice/sandbox-venv/bin/python 2>&1 || true)"
grep -q 'read-only binds are writable' <<<"$fc_log" && grep -q '^Error: the gvisor-container mode cannot run' <<<"$fc_log" \
    || { echo "$fc_log" | tail -5 >&2; fail "with a writable root file system the daemon under runsc should refuse to start"; }
echo "ok: without a read-only root file system the daemon under runsc refuses to start: $(grep '^Error' <<<"$fc_log" | cut -c1-160)..."

# ---- 4. up ------------------------------------------------------------------------------------------------
wait_healthy() { # expected-container-count [compose command...]
    local deadline=$((SECONDS + ${SLUICE_DOCKER_HEALTH_TIMEOUT:-300})) ids states want=$1
    shift
    local cmd=("$@")
    [[ ${#cmd[@]} -gt 0 ]] || cmd=("${compose[@]}")
    while :; do
        ids="$("${cmd[@]}" ps -q)"
        states="$(for id in $ids; do docker inspect -f '{{.Name}} {{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$id"; done)"
        if [[ "$(grep -c ' healthy$' <<<"$states")" -eq "$want" ]]; then
            echo "$states" | sed 's/^\//    /'
            return 0
        fi
        if ((SECONDS > deadline)); then
            echo "$states" >&2
            fail "the deployment did not become healthy within ${SLUICE_DOCKER_HEALTH_TIMEOUT:-300}s"
        fi
        sleep 2
    done
}
step "4. up -d --scale gateway=2 (docker-compose.yml: the sandbox under runsc), waiting for every healthcheck"
t0=$SECONDS
"${compose[@]}" up -d --no-build --scale gateway=2 >"$work/up.log" 2>&1 || { cat "$work/up.log" >&2; fail "up failed"; }
wait_healthy 5
echo "healthy after $((SECONDS - t0))s"

# The first admin key: written once, by exactly one of the racing instances.
key="$("${compose[@]}" exec -T --index=1 gateway cat /var/lib/sluice/first_admin_key | tr -d '\r\n')"
[[ "$key" == sluice_* ]] || fail "no admin key in /var/lib/sluice/first_admin_key"
keys_created="$("${compose[@]}" logs gateway 2>&1 | grep -c 'created the first admin API key (named admin)' || true)"
[[ "$keys_created" -eq 1 ]] || fail "expected exactly one instance to create the first key, saw $keys_created"
echo "ok: one first admin key for two instances"

# ---- 5. MCP through the proxy ------------------------------------------------------------------------------
step "5. MCP client (Python SDK) through the proxy at $url"
python="$(./tests/clients/python/install.sh)"
# The warehouse: 10,000 rows of about 200 bytes (enough for 40+ pages of query_database's 40 KB pages),
# written with DuckDB 2.x (the gateway's engine version) from a venv that has it.
duck_py=""
for p in "$HOME/.cache/sluice/dbt-venv/bin/python" /opt/sluice/sandbox-venv/bin/python "$HOME/.cache/sluice/sandbox-venv/bin/python"; do
    if [[ -x "$p" ]] && "$p" -c 'import duckdb' 2>/dev/null; then duck_py="$p"; break; fi
done
[[ -n "$duck_py" ]] || fail "no Python with duckdb to write the warehouse (sandbox/daemon/scripts/setup-python.sh)"
"$duck_py" - "$SLUICE_WAREHOUSES/shop.duckdb" <<'PY'
import sys, duckdb
c = duckdb.connect(sys.argv[1])
c.execute("CREATE TABLE events AS SELECT i::INTEGER AS id, repeat(chr((97 + i % 26)::INTEGER), 200) AS payload FROM range(1, 10001) t(i)")
c.close()
PY
chmod 644 "$SLUICE_WAREHOUSES/shop.duckdb"
"${compose[@]}" exec -T --index=1 gateway sluice connection add --config /etc/sluice/sluice.toml --data-dir /var/lib/sluice \
    --name shop --kind duckdb --dsn /warehouses/shop.duckdb --description "test warehouse" \
    || fail "sluice connection add failed"
"$python" tests/docker/mcp_check.py "$url" "$key" smoke shop gvisor || fail "MCP smoke checks"
echo "sluice-sandbox status inside the sandbox container:"
"${compose[@]}" exec -T sandbox sluice-sandbox status --socket /run/sluice-sandbox/sandbox.sock | sed 's/^/    /' | cut -c1-240
"${compose[@]}" exec -T sandbox sluice-sandbox status --socket /run/sluice-sandbox/sandbox.sock --json >"$work/status.json"
python3 - "$work/status.json" <<'PY' || fail "the sandbox's protections are not what the gVisor mode promises"
import json, sys
st = json.load(open(sys.argv[1]))
by = {p["name"]: p for p in st["protections"]}
assert st["backend"] == "gvisor" and not st["degraded"], st
for name in ("gvisor_container", "unprivileged_uid", "workspace_tmpfs", "pid_namespace", "network_namespace",
             "ipc_namespace", "minimal_root", "rlimits", "capabilities_dropped", "no_new_privs", "seccomp"):
    assert by[name]["state"] == "active" and by[name]["required"], by.get(name)
assert by["landlock"]["state"] == "missing" and not by["landlock"]["required"], by["landlock"]
print("ok: status: backend gvisor, not degraded, gvisor_container and every per-run wall active, landlock reported missing")
PY
step "5b. escape attempts from code under gVisor"
"$python" tests/docker/mcp_check.py "$url" "$key" gvisor || fail "gVisor escape checks"

# ---- 6. sandbox killed and restarted -----------------------------------------------------------------------
step "6. kill the sandbox: tools say it is unavailable; start it: it works again"
"${compose[@]}" kill sandbox >/dev/null 2>&1
"$python" tests/docker/mcp_check.py "$url" "$key" unavailable || fail "sandbox down"
"${compose[@]}" start sandbox >/dev/null 2>&1
wait_healthy 5
"$python" tests/docker/mcp_check.py "$url" "$key" smoke shop gvisor || fail "sandbox back"

# ---- 7. down / up keeps state ------------------------------------------------------------------------------
step "7. down (volumes kept) and up: keys, connections and the audit log survive"
audit_before="$("${compose[@]}" exec -T --index=1 gateway sluice audit --config /etc/sluice/sluice.toml --data-dir /var/lib/sluice --limit 1000 | grep -c . || true)"
"${compose[@]}" down >/dev/null 2>&1
"${compose[@]}" up -d --no-build --scale gateway=2 >"$work/up2.log" 2>&1 || { cat "$work/up2.log" >&2; fail "second up failed"; }
wait_healthy 5
ex() { "${compose[@]}" exec -T --index=1 gateway sluice "$@" --config /etc/sluice/sluice.toml --data-dir /var/lib/sluice; }
ex key list | grep -q admin || fail "the admin key is gone after down/up"
ex connection list | grep -q shop || fail "the connection is gone after down/up"
audit_after="$(ex audit --limit 1000 | grep -c . || true)"
[[ "$audit_before" -gt 0 && "$audit_after" -ge "$audit_before" ]] \
    || fail "the audit log did not survive: $audit_before records before, $audit_after after"
"$python" tests/docker/mcp_check.py "$url" "$key" smoke shop gvisor || fail "after down/up"
echo "ok: key, connection and $audit_before audit records kept; the old key still works"

# ---- 7b. master key rotation -----------------------------------------------------------------------------
step "7b. master key rotation (docker-compose.rotate.yml): new key + previous key, rotate, new key alone"
rotate=(docker-compose -f docker-compose.yml -f docker-compose.rotate.yml)
"${rotate[@]}" config -q || fail "docker-compose.yml + docker-compose.rotate.yml is not valid"
ex secrets status | tee "$work/status-before.txt" | sed 's/^/    /'
grep -q 'every sealed record is under version 1' "$work/status-before.txt" || fail "expected everything under version 1 before the rotation"
cp "$SLUICE_SECRETS_DIR/master_key" "$SLUICE_SECRETS_DIR/master_key_previous"
head -c 32 /dev/urandom | base64 >"$SLUICE_SECRETS_DIR/master_key.new"
mv "$SLUICE_SECRETS_DIR/master_key.new" "$SLUICE_SECRETS_DIR/master_key"
chmod 644 "$SLUICE_SECRETS_DIR"/*
"${rotate[@]}" up -d --no-build --scale gateway=2 >"$work/up-rotate.log" 2>&1 || { cat "$work/up-rotate.log" >&2; fail "up with the rotation overlay failed"; }
wait_healthy 5 "${rotate[@]}"
"$python" tests/docker/mcp_check.py "$url" "$key" smoke shop gvisor || fail "serving with the new and the previous key"
rex() { "${rotate[@]}" exec -T --index=1 gateway sluice "$@" --config /etc/sluice/sluice.toml --data-dir /var/lib/sluice; }
rex secrets rotate | sed 's/^/    /' || fail "sluice secrets rotate failed"
rex secrets status | tee "$work/status-after.txt" | sed 's/^/    /'
grep -q 'every sealed record is under version 2' "$work/status-after.txt" || fail "expected everything under version 2 after the rotation"
"${compose[@]}" up -d --no-build --scale gateway=2 >"$work/up-new-key.log" 2>&1 || { cat "$work/up-new-key.log" >&2; fail "up with the new key alone failed"; }
wait_healthy 5
"$python" tests/docker/mcp_check.py "$url" "$key" smoke shop gvisor || fail "serving with the new key alone"
# The old key alone no longer opens the store: a one-off gateway command with it is refused, saying why.
old_log="$("${compose[@]}" run --rm --no-deps -T -e SLUICE_MASTER_KEY_FILE=/run/secrets/master_key_previous \
    -v "$SLUICE_SECRETS_DIR/master_key_previous:/run/secrets/master_key_previous:ro" \
    gateway secrets rotate --config /etc/sluice/sluice.toml --data-dir /var/lib/sluice 2>&1 || true)"
grep -q 'version 1 of this store' <<<"$old_log" || { echo "$old_log" | tail -5 >&2; fail "the retired key alone should be refused"; }
rm "$SLUICE_SECRETS_DIR/master_key_previous"
echo "ok: rotated from version 1 to 2 while serving; the stored connection opens under the new key; the old key alone is refused"

# ---- 8. two instances behind the proxy ---------------------------------------------------------------------
step "8. sessions across two gateway instances (50 calls each; affinity; both instances used)"
"$python" tests/docker/mcp_check.py "$url" "$key" sessions shop 6 || fail "sessions across instances"

# ---- 9. the native overlay, briefly ------------------------------------------------------------------
step "9. native overlay (runc, the daemon's native backend): up, healthy, one execute_code"
"${compose[@]}" down -v --remove-orphans >/dev/null 2>&1 || fail "down -v failed"
"${native[@]}" up -d --no-build >"$work/up-native.log" 2>&1 || { cat "$work/up-native.log" >&2; fail "native up failed"; }
wait_healthy 4 "${native[@]}"
key="$("${native[@]}" exec -T gateway cat /var/lib/sluice/first_admin_key | tr -d '\r\n')"
"${native[@]}" exec -T gateway sluice connection add --config /etc/sluice/sluice.toml --data-dir /var/lib/sluice \
    --name shop --kind duckdb --dsn /warehouses/shop.duckdb --description "test warehouse" >/dev/null \
    || fail "sluice connection add failed (native overlay)"
"$python" tests/docker/mcp_check.py "$url" "$key" smoke shop native || fail "native overlay smoke"

# ---- 10. down -v ------------------------------------------------------------------------------------------
step "10. down -v"
"${native[@]}" down -v --remove-orphans >/dev/null 2>&1 || fail "down -v failed"
[[ -z "$(docker volume ls -q --filter "name=${project}_")" ]] || fail "volumes left after down -v"
echo "ok: containers, network and volumes removed"
echo "== docker deployment test passed in ${SECONDS}s"
