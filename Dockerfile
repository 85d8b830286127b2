# syntax=docker/dockerfile:1
# wardend, warden and warden-credentials as static binaries in a distroless
# image (non-root).
#   docker build -t warden .
#   docker run -v ./wardend.yaml:/etc/warden/wardend.yaml:ro -p 8080:8080 warden
#   docker run warden check-config -config /etc/warden/wardend.yaml

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/wardenidp/warden/internal/version.Version=${VERSION}" \
      -o /out/ ./cmd/wardend ./cmd/warden ./cmd/warden-credentials \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/wardend /out/warden /out/warden-credentials /usr/local/bin/
# data_dir (generated signing keys); owned by nonroot so a fresh volume is writable
COPY --from=build --chown=65532:65532 /out/data /var/lib/warden
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/wardend"]
CMD ["-config", "/etc/warden/wardend.yaml"]
