# Container image of stacd.
#
#   docker build -t stacd:0.1.0 .
#   docker run --rm -p 7822:7822 -v stacd-data:/var/lib/stacd stacd:0.1.0
#
# The image serves the SQLite file /var/lib/stacd/stacd.sqlite unless
# STACD_DATABASE_URL names another store, such as postgres://USER:PASSWORD@HOST:5432/DB.
# Arguments after the image name replace `serve`, for example
# `docker run --rm stacd:0.1.0 migrate --database-url postgres://...`.

# --- build ---------------------------------------------------------------------------

# The crate is edition 2024 with rust-version 1.94. The slim Rust image ships gcc and
# libc6-dev, which is all that the bundled C libraries need to compile (SQLite in
# libsqlite3-sys, zstd in zstd-sys). No OpenSSL is needed, because Cargo.lock has no
# TLS crate (sqlx is built with the `tls-none` feature).
FROM rust:1.95-slim-bookworm AS builder

WORKDIR /build

# Dependency caching: build the dependencies first, against stub sources, in a layer
# that depends only on Cargo.toml and Cargo.lock. Editing stacd's own code then
# rebuilds only the stacd crate. This layer is an ordinary image layer, so it also
# works with the classic builder and can be shared through a registry layer cache
# in CI (`docker buildx build --cache-to type=registry,...`). BuildKit cache mounts
# would be faster locally but stay on the machine that built them, so a fresh CI
# runner would compile every dependency again.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src

# The sources embed migrations/ and schemas/ with include_str!, so both are needed
# at compile time.
COPY src ./src
COPY migrations ./migrations
COPY schemas ./schemas

# COPY keeps the files' modification times from the build context, which can be
# older than the stub build above. Cargo would then take the stub stacd crate as up
# to date, so touching the crate roots forces it to be rebuilt.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked \
    && mkdir -p /rootfs/usr/local/bin /rootfs/var/lib/stacd \
    && cp target/release/stacd /rootfs/usr/local/bin/stacd

# --- runtime -------------------------------------------------------------------------

# stacd links glibc (and libgcc_s for unwinding) and bundles SQLite, which is what
# distroless/cc provides: glibc, libgcc, CA certificates, and no shell or package
# manager. Its `nonroot` variant defines the user nonroot with UID and GID 65532.
# NOTE: pin the base images by digest (image:tag@sha256:...) for reproducible builds.
FROM gcr.io/distroless/cc-debian12:nonroot

ARG VERSION=0.1.0
ARG REVISION=unknown

LABEL org.opencontainers.image.title="stacd" \
      org.opencontainers.image.description="A STAC API and OGC API Features catalog server for aerial and drone imagery, on SQLite or PostgreSQL + PostGIS" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="MIT OR Apache-2.0" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"

COPY --from=builder /rootfs/usr/local/bin/stacd /usr/local/bin/stacd
# The data folder of the default SQLite file. It must be writable by the runtime
# user, and the base image has no shell to create it, so it is copied in with its owner.
COPY --from=builder --chown=65532:65532 /rootfs/var/lib/stacd /var/lib/stacd

# Inside a container the server must listen on all interfaces, because the default
# bind address (127.0.0.1) is unreachable from outside the container.
ENV STACD_BIND=0.0.0.0:7822 \
    STACD_LOG_FORMAT=json \
    STACD_DATABASE_URL=sqlite:///var/lib/stacd/stacd.sqlite

USER 65532:65532
WORKDIR /var/lib/stacd
EXPOSE 7822

# No HEALTHCHECK: the base image has no HTTP client to run one. Orchestrators probe
# GET /health (liveness) and GET /ready (readiness) on port 7822 instead.
ENTRYPOINT ["stacd"]
CMD ["serve"]
