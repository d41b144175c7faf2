# syntax=docker/dockerfile:1
#
# scimbridge's container image: a static binary (CGO off; modernc.org/sqlite needs no cgo) on
# distroless/static as the nonroot user (65532). The root file system can be read-only: the state
# store, the embedded Identity Center's data and temporary files all live under the one volume
# /var/lib/scimbridge (the working directory, so the default data_dir "data" lands there).
#
#   docker build --build-arg VERSION=$(git describe --tags --always) -t scimbridge .
#   docker run --read-only -v scimbridge:/var/lib/scimbridge -p 8080:8080 scimbridge
#
# Without a config of its own the image runs the quickstart (deploy/examples) against the embedded
# Identity Center; mount a config over /etc/scimbridge/scimbridge.yaml for real use. The build
# flags are the Makefile's `build` target; deploy/deploy_test.go builds the binary with the flags
# of the RUN line below and runs it.

FROM golang:1.26.8-bookworm AS build
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG VERSION=dev
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY cmd/ cmd/
COPY connectors/ connectors/
COPY scim/ scim/
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/scimbridge ./cmd/scimbridge
# The volume's mount point, owned by the runtime user (an empty named volume copies this).
RUN mkdir -p /out/var/lib/scimbridge && chown 65532:65532 /out/var/lib/scimbridge && chmod 0700 /out/var/lib/scimbridge

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="scimbridge" \
      org.opencontainers.image.description="Sync a workforce directory (LDAP/AD, Google Workspace, YAML) into AWS IAM Identity Center over SCIM" \
      org.opencontainers.image.source="https://github.com/scimbridge/scimbridge" \
      org.opencontainers.image.documentation="https://github.com/scimbridge/scimbridge/tree/main/deploy" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}"
COPY --from=build /out/scimbridge /scimbridge
COPY --from=build --chown=65532:65532 /out/var/lib/scimbridge /var/lib/scimbridge
COPY deploy/examples/scimbridge.yaml deploy/examples/directory.yaml /etc/scimbridge/
# SCIMBRIDGE_CONFIG is the default of --config; SCIMBRIDGE_SERVICE_LISTEN overrides service.listen
# (the service's own default, 127.0.0.1, is unreachable from outside a container) and is what
# `scimbridge healthcheck` probes.
ENV SCIMBRIDGE_CONFIG=/etc/scimbridge/scimbridge.yaml \
    SCIMBRIDGE_SERVICE_LISTEN=0.0.0.0:8080 \
    TMPDIR=/var/lib/scimbridge
WORKDIR /var/lib/scimbridge
VOLUME ["/var/lib/scimbridge"]
USER 65532:65532
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 CMD ["/scimbridge", "healthcheck"]
ENTRYPOINT ["/scimbridge"]
CMD ["serve"]
