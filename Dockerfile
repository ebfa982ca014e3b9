# Builds the huddle binary and runs it in a small image.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin huddle

FROM debian:bookworm-slim
COPY --from=build /src/target/release/huddle /usr/local/bin/huddle
# HTTP (WHIP, WHEP, the page, WebSocket signaling) and the one UDP media port.
EXPOSE 8080/tcp 50000/udp 50000/tcp
ENTRYPOINT ["/usr/local/bin/huddle"]
CMD ["--http", "0.0.0.0:8080", "--udp", "0.0.0.0:50000"]
