# syntax=docker/dockerfile:1
#
# otpgate container image: the gateway binary alone on distroless (glibc, CA certificates,
# /etc/passwd with `nonroot`; no shell, no package manager).
#
#   docker build -t REGISTRY/otpgate:0.1.0 .
#   docker run --rm REGISTRY/otpgate:0.1.0 --help
#
# Kubernetes: helm/otpgate (runs `otpgate serve …` as UID/GID 65532 with a read-only root).
# For reproducible builds, pin both base images by digest (rust:1-bookworm@sha256:…).

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

# --- build -------------------------------------------------------------------------------------
FROM ${RUST_IMAGE} AS builder
WORKDIR /src
# Only what the binary is built from: the manifest and lock file, the sources, and the shipped
# policy (compiled into the binary for `otpgate demo`, src/config/mod.rs).
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY policies ./policies
# Cache mounts keep the crate registry and the target directory between builds (BuildKit); the
# binary is copied out of the cached target directory in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin otpgate \
    && install -D -m 0755 target/release/otpgate /out/otpgate

# --- runtime -----------------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE}
ARG RUNTIME_IMAGE
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="otpgate" \
      org.opencontainers.image.description="OTP-gated personal-data API gateway" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.base.name="${RUNTIME_IMAGE}"
COPY --from=builder --chown=0:0 --chmod=0555 /out/otpgate /otpgate
# distroless' nonroot user; the Helm chart sets the same IDs and runAsNonRoot.
USER 65532:65532
# 8443 public HTTPS, 8444 partner mTLS, 9090 admin (/healthz, /readyz, /metrics).
EXPOSE 8443 8444 9090
ENTRYPOINT ["/otpgate"]
