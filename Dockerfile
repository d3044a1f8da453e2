# The lb-controller image: the product binary (no lab, no sandbox) on a distroless base.
# Build: docker build -t lb-controller .
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends cmake pkg-config && rm -rf /var/lib/apt/lists/*
# Every workspace member's sources must be present for cargo to read the workspace; only the
# product's crates are compiled.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY crates ./crates
RUN cargo build --release --locked --no-default-features --bin lb-controller \
 && strip target/release/lb-controller

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/lb-controller /usr/local/bin/lb-controller
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/lb-controller"]
CMD ["run"]
