# syntax=docker/dockerfile:1
#
# Coform server image.
#
#   docker build -t coform .
#   docker run --rm -p 8080:8080 -v coform-data:/data coform
#
# Stage 1 builds `coform` with the official Rust image; stage 2 runs it on
# Debian slim as an unprivileged user. Both stages use the same Debian
# release, so the binary finds the glibc it was linked against.
# The lockfile pulls crates that need Rust 1.89 or newer.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=trixie

# ---------------------------------------------------------------- build ----
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
WORKDIR /src
COPY . .
# The cache mounts keep the crate registry and the target directory between
# builds, so a code change recompiles only the workspace crates. The binary
# is copied out of the cached target directory in the same step.
# The release profile keeps line tables (debug = 1) for profiling; the image
# drops them (symbols stay, so backtraces still name functions).
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release -p coform --locked \
 && install -D -m 0755 target/release/coform /out/coform \
 && strip --strip-debug /out/coform

# -------------------------------------------------------------- runtime ----
FROM debian:${DEBIAN_RELEASE}-slim AS runtime

# ca-certificates: TLS to SMTP relays and managed MongoDB/Redis (rediss://).
# curl: the HEALTHCHECK below (the runtime has no other HTTP client).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*

# A fixed, unprivileged uid/gid (10001), matching runAsUser in k8s/.
RUN groupadd --system --gid 10001 coform \
 && useradd --system --uid 10001 --gid coform --home-dir /data --shell /usr/sbin/nologin coform \
 && install -d -o coform -g coform -m 0750 /data

COPY --from=build /out/coform /usr/local/bin/coform

# The embedded store and the mail outbox live under /data; with
# --store mongodb://... only the outbox does (unless --smtp-url is set).
ENV COFORM_BIND=0.0.0.0:8080 \
    COFORM_DATA_DIR=/data \
    COFORM_LOG_FORMAT=json
VOLUME ["/data"]
WORKDIR /data
USER coform:coform
EXPOSE 8080

# /healthz answers as long as the process serves HTTP. If you change
# COFORM_BIND's port, override the healthcheck as well.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["curl", "--fail", "--silent", "--show-error", "--max-time", "2", "-o", "/dev/null", "http://127.0.0.1:8080/healthz"]

# SIGTERM: coform stops accepting, stores everything pending and closes
# every WebSocket with 1012 so clients reconnect to another replica. Give
# the container more than --shutdown-grace to stop (docker stop -t,
# compose stop_grace_period, k8s terminationGracePeriodSeconds).
STOPSIGNAL SIGTERM
# `coform` alone is `coform serve`: arguments given to `docker run IMAGE ...`
# or compose's `command:` are serve flags.
ENTRYPOINT ["/usr/local/bin/coform"]
