# Build a static binary, then ship it alone in an empty image, as a
# non-root user. The image works with a read-only root filesystem; give it
# a writable volume only for state stores.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/exactly ./cmd/exactly

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/
COPY --from=build /out/exactly /exactly
USER 65532:65532
EXPOSE 9090
ENTRYPOINT ["/exactly"]
CMD ["run", "-c", "/etc/exactly/pipeline.yaml"]
