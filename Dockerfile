# The lb-controller image: a static-enough Rust binary on a distroless base.
# Build: docker build -t lb-controller .
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
RUN apt-get update && apt-get install -y --no-install-recommends cmake pkg-config && rm -rf /var/lib/apt/lists/*
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY crates ./crates
RUN cargo build --release --locked --bin lb-controller

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/lb-controller /usr/local/bin/lb-controller
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/lb-controller"]
