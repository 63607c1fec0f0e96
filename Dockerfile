# syntax=docker/dockerfile:1
#
# One image holding Herald's binaries, /herald-controller, /herald-speaker and
# /herald-cloud-controller-manager (deploy/cloud-controller-manager), built
# static (CGO_ENABLED=0) onto distroless "static": no shell, no package
# manager, no libc, nothing to patch but the binaries. The manifests in
# deploy/ pick the binary with `command:`.
#
#   docker build -t registry.example/herald:v0.1.0 .
#   docker buildx build --platform linux/amd64,linux/arm64 -t registry.example/herald:v0.1.0 --push .
#
# then point the install at it: the `images:` entry of deploy/default, or one
# in a kustomization of your own (docs/install.md, "Choosing the image").
#
# The image runs as the distroless "nonroot" user (65532), which is what the
# controller uses. The speaker's DaemonSet sets runAsUser: 0 with every
# capability dropped except NET_RAW (see deploy/speaker/daemonset.yaml).

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
# Dependencies first, so that source changes reuse the module download layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS=linux
ARG TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags="-s -w -buildid=" -o /out/ ./cmd/herald-controller ./cmd/herald-speaker ./cmd/herald-cloud-controller-manager

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="herald" \
      org.opencontainers.image.description="LoadBalancer Services for bare-metal Kubernetes: controller, speaker and cloud-controller-manager" \
      org.opencontainers.image.source="https://github.com/herald-dev/herald" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/herald-controller /out/herald-speaker /out/herald-cloud-controller-manager /
USER 65532:65532
ENTRYPOINT ["/herald-controller"]
