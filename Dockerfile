# syntax=docker/dockerfile:1
# The nines image: the gateway alone, on distroless, as a non-root user, ready for a read-only root filesystem.
#
#   docker build -t nines .
#   docker run --rm -p 4000:4000 -v "$PWD/nines.toml:/etc/nines/nines.toml:ro" -e OPENAI_API_KEY nines
#
# The configuration must say `listen = "0.0.0.0:4000"` (nines' default, 127.0.0.1:4000, is unreachable from outside
# the container); the Helm chart (deploy/helm/nines) writes that line itself. Keys come from the environment, named
# by the configuration's *_env fields. State files (SQLite) belong under /var/lib/nines, the one writable directory.

# ── Build ──────────────────────────────────────────────────────────────────────────────────────────────────────────
# Debian 12 (bookworm), like the runtime image below: the binary links glibc dynamically and must find the same one.
# The image has the C toolchain that jemalloc, the bundled SQLite and aws-lc (TLS) are built with.
FROM rust:1.95-bookworm AS build
WORKDIR /src
# Only what the build reads (.dockerignore keeps everything else, target/ above all, out of the context).
# .cargo/config.toml sets jemalloc's options, which are compiled into the binary.
COPY Cargo.toml Cargo.lock ./
COPY .cargo .cargo
COPY crates crates
# --locked: exactly the versions of Cargo.lock. The cache mounts (BuildKit) keep downloaded crates and compiled
# dependencies between builds; the binary is copied out of the cached target/ within the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p nines \
 && install -D -m 0755 target/release/nines /out/nines \
 && install -d -m 0755 /out/state

# ── Run ────────────────────────────────────────────────────────────────────────────────────────────────────────────
# distroless "cc": glibc and libgcc_s (all the binary links besides the kernel's vDSO), CA certificates (providers'
# TLS is verified against the system's roots) and tzdata; no shell, no package manager. The :nonroot variant's user
# is 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/nines /usr/local/bin/nines
# The state directory, owned by the user that writes it (the chart mounts an emptyDir over it).
COPY --from=build --chown=65532:65532 /out/state /var/lib/nines
# Numeric, so that Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
USER 65532:65532
EXPOSE 4000
ENTRYPOINT ["/usr/local/bin/nines"]
# JSON log lines, one per line, for the cluster's log collector. SIGTERM (the default stop signal) drains.
CMD ["serve", "--config", "/etc/nines/nines.toml", "--log-format", "json"]
