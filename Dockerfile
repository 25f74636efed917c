# Sluice images: the gateway (`sluice`) and the sandbox daemon (`sluice-sandbox`).
#
#   docker build --target gateway -t sluice/gateway .
#   docker build --target sandbox -t sluice/sandbox .
#
# Where the binaries come from (build arg BINARIES):
#   source   (default) the `source` stage compiles them with `cargo build --release --locked` in a Rust
#            image (RUST_IMAGE). DuckDB's C++ makes a cold build take about half an hour on 2 cores.
#   prebuilt the runtime stages copy them from docker/prebuilt/ in the build context, where they were
#            put after a `cargo build` on the host (tests/docker/run.sh does this with the debug build).
#            The host must be glibc-compatible with Debian bookworm (a bookworm host is).
#
# Stage selection needs BuildKit (DOCKER_BUILDKIT=1 or buildx), which builds only the stages the target
# uses; the legacy builder builds every stage before the target, so with it BINARIES=prebuilt still
# needs the Rust image. No `# syntax=` line: BuildKit's built-in frontend is enough and nothing is pulled.
#
# The runtime stages are Debian bookworm-slim with no compiler, run as an unprivileged user, and keep
# nothing writable but their volumes (docker-compose.yml runs them with read-only root file systems).

ARG BINARIES=source
ARG RUST_IMAGE=rust:1.94-bookworm
ARG BASE_IMAGE=debian:bookworm-slim

# ---- binaries, compiled -------------------------------------------------------------------------------
FROM ${RUST_IMAGE} AS source
WORKDIR /src
COPY . .
# The sandbox's zygote embeds CPython: it links Debian's python3 (the interpreter the venv is made from).
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libpython3-dev \
    && rm -rf /var/lib/apt/lists/*
RUN PYO3_PYTHON=/usr/bin/python3 cargo build --release --locked -p sluice-gateway --bin sluice \
        -p sluice-sandbox --bin sluice-sandbox -p sluice-sandbox-zygote --bin sluice-sandbox-zygote \
    && install -D -m 0755 target/release/sluice target/release/sluice-sandbox target/release/sluice-sandbox-zygote -t /out

# ---- binaries, built on the host ----------------------------------------------------------------------
FROM ${BASE_IMAGE} AS prebuilt
COPY docker/prebuilt/ /staged/
RUN set -e; for b in sluice sluice-sandbox sluice-sandbox-zygote; do \
        test -x "/staged/$b" || { echo "docker/prebuilt/$b is missing: build it on the host and stage it first (tests/docker/run.sh)" >&2; exit 1; }; \
        install -D -m 0755 "/staged/$b" "/out/$b"; \
    done; rm -rf /staged

FROM ${BINARIES} AS binaries

# ---- gateway ------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS gateway
# libstdc++ for DuckDB's engine, CA certificates for TLS connections to warehouses, curl for the healthcheck.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libstdc++6 ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 sluice \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/sluice --shell /usr/sbin/nologin sluice \
    && install -d -o sluice -g sluice -m 0700 /var/lib/sluice \
    && install -d -o sluice -g sluice -m 0755 /run/sluice-sandbox
COPY --from=binaries /out/sluice /usr/local/bin/sluice
COPY docker/gateway/sluice.toml /etc/sluice/sluice.toml
USER sluice:sluice
WORKDIR /var/lib/sluice
ENV SLUICE_LOG=info
EXPOSE 3300
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 \
    CMD curl -fsS -o /dev/null http://127.0.0.1:3300/readyz || exit 1
ENTRYPOINT ["/usr/local/bin/sluice"]
CMD ["serve", "--config", "/etc/sluice/sluice.toml", "--listen", "0.0.0.0:3300", "--data-dir", "/var/lib/sluice"]

# ---- the sandbox's Python venv ------------------------------------------------------------------------
# Built in a stage of its own so that pip, the venv module and any build-time CA stay out of the image.
# docker/certs/*.crt (normally empty) are extra CA certificates trusted during this stage only, for
# networks whose egress proxy re-signs TLS (tests/docker/run.sh stages the host's local CAs there).
FROM ${BASE_IMAGE} AS sandbox-venv
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY docker/certs/ /usr/local/share/ca-certificates/sluice-build/
COPY sandbox/daemon/scripts/setup-python.sh /usr/local/lib/sluice/setup-python.sh
RUN update-ca-certificates >/dev/null \
    && PIP_CERT=/etc/ssl/certs/ca-certificates.crt /usr/local/lib/sluice/setup-python.sh /opt/sluice/sandbox-venv

# ---- sandbox ------------------------------------------------------------------------------------------
# Runs as `sluice` by default (the native backend under runc: docker-compose.native.yml). docker-compose.yml
# runs it under gVisor as root of gVisor's kernel (`user: "0:0"`, a few emulated capabilities), where the
# daemon's in-gVisor mode gives each run its session's own uid (sandbox/daemon/README.md).
FROM ${BASE_IMAGE} AS sandbox
# Debian's python3, the interpreter the venv was made from (same path, same version), and its shared
# library, which the sandbox's zygote (every backend's, the in-gVisor mode's included) embeds.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 libpython3.11 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 sluice \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/sluice-sandbox --shell /usr/sbin/nologin sluice \
    && install -d -o sluice -g sluice -m 0700 /var/lib/sluice-sandbox \
    && install -d -o sluice -g sluice -m 0755 /run/sluice-sandbox
COPY --from=sandbox-venv /opt/sluice/sandbox-venv /opt/sluice/sandbox-venv
COPY --from=binaries /out/sluice-sandbox /out/sluice-sandbox-zygote /usr/local/bin/
USER sluice:sluice
HEALTHCHECK --interval=5s --timeout=5s --start-period=120s --retries=3 \
    CMD ["/usr/local/bin/sluice-sandbox", "status", "--socket", "/run/sluice-sandbox/sandbox.sock"]
ENTRYPOINT ["/usr/local/bin/sluice-sandbox"]
CMD ["serve", "--socket", "/run/sluice-sandbox/sandbox.sock", "--root", "/var/lib/sluice-sandbox/root", \
     "--python", "/opt/sluice/sandbox-venv/bin/python"]
