# The image `mqbench kube` names: one static mqbench binary on a base with no
# shell, running as a non-root user (65532, the Job's runAsUser).
#   docker build -t mqbench:$(git describe --tags --always) .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# CGO off: a static binary that needs no libc in the image.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/mqbench ./cmd/mqbench

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/mqbench /mqbench
USER 65532:65532
ENTRYPOINT ["/mqbench"]
