# atc's image: `atc web` (ENTRYPOINT ["atc"]), and the Kubernetes runtime's
# helper image as well (atc at /usr/local/bin/atc beside sh, tar and
# coreutils). The Helm chart in helm/atc runs it.
#
#   docker build -t registry.example.com/atc:0.1.0 .
#
# Build arguments:
#   RUST_VERSION    the Rust toolchain image's tag (Cargo.toml's rust-version or newer)
#   DEBIAN_RELEASE  the Debian release both stages are based on (the binary
#                   links the build stage's glibc, so they must match)
#   ATC_UID         the non-root user the image runs as
#
# No container engine is available where atc is developed and tested, so
# this file is not built there; its cargo command is the one CI runs
# (scripts/test.sh), which a test keeps the same.
ARG RUST_VERSION=1.94
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin atc

FROM debian:${DEBIAN_RELEASE}-slim
ARG ATC_UID=10001
# git for the built-in git resource type; ca-certificates for TLS to
# PostgreSQL, the Kubernetes API, registries and collectors.
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid "${ATC_UID}" --user-group --home-dir /var/lib/atc --create-home atc
COPY --from=build /src/target/release/atc /usr/local/bin/atc
USER ${ATC_UID}:${ATC_UID}
WORKDIR /var/lib/atc
# 8080: the web UI and API (--bind-port); 9391: Prometheus (--prometheus-bind-port).
EXPOSE 8080 9391
ENTRYPOINT ["atc"]
CMD ["web"]
