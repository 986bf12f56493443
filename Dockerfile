# Builds the masterclass binary and a small runtime image with the PostgreSQL client library.
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends libpq-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
COPY config ./config
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /app masterclass
WORKDIR /app
COPY --from=build /src/target/release/masterclass /usr/local/bin/masterclass
COPY config ./config
USER masterclass
ENV MASTERCLASS_ENV=production
EXPOSE 8080
ENTRYPOINT ["masterclass"]
CMD ["serve"]
