# syntax=docker/dockerfile:1
# goose-registry: built from the workspace root (docker build -f deploy/docker/goose-registry.Dockerfile .).
# Multi-stage: the toolchain stays in the build stage; the image holds the binary and the C
# runtime only, and runs as the distroless nonroot user (uid 65532), as k8s/ expects.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    cargo build --release --locked --bin goose-registry

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/goose-registry /usr/local/bin/goose-registry
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/goose-registry"]
