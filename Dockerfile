# Multi-stage build of a small static image that runs as non-root.
# Alpine's Rust targets musl, so the binary is fully static and the runtime image needs no libc.
FROM rust:1.95-alpine AS build
RUN apk add --no-cache musl-dev
WORKDIR /src
# Every workspace member must be present for cargo to load the workspace (tests/release.rs
# stages these COPY lines and loads it with --locked).
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY crates ./crates
COPY tests/control-plane ./tests/control-plane
COPY bench ./bench
RUN cargo build --release --locked --bin dataminer-keys-operator \
    && strip target/release/dataminer-keys-operator

FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="dataminer-keys-operator" \
      org.opencontainers.image.source="https://github.com/dataminer-keys-operator/dataminer-keys-operator" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY LICENSE /usr/share/doc/dataminer-keys-operator/LICENSE
COPY --from=build /src/target/release/dataminer-keys-operator /usr/local/bin/dataminer-keys-operator
# The chart sets the same UID; nonroot is 65532 in distroless.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/dataminer-keys-operator"]
