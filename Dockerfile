# syntax=docker/dockerfile:1
# Multi-stage build: a static switchyard binary on a distroless base, run as
# a non-root user. The embedded log lives in /data (mount a volume there).
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/switchyard ./cmd/switchyard \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/switchyard /usr/local/bin/switchyard
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV SWITCHYARD_ADDR=:8080 \
    SWITCHYARD_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/switchyard"]
CMD ["serve"]
