# ropewire CPU image. Build: docker build -t ropewire .
# Run:   docker run -p 50051:50051 -p 9090:9090 ropewire   (the demo model; metrics on 9090)
#        docker run -p 50051:50051 -v /models/x:/model ropewire --model /model --port 50051
#
# Stage 1 builds with the project's own setup script; stage 2 carries only the runtime
# libraries, runs as an unprivileged user, and checks its health through its own client.
FROM debian:bookworm AS build
WORKDIR /src
COPY scripts/setup.sh scripts/setup.sh
RUN ./scripts/setup.sh --build-only && rm -rf /var/lib/apt/lists/*
COPY . .
RUN rm -rf build && \
    cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DROPEWIRE_ENABLE_CUDA=OFF \
          -DROPEWIRE_BUILD_TESTS=OFF -DROPEWIRE_BUILD_BENCH=OFF && \
    cmake --build build -j "$(nproc)" --target ropewire-server ropewire-cli ropewire-generate ropewire-tokenize

FROM debian:bookworm-slim
RUN apt-get update && \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libgrpc++1.51 libgrpc29 libprotobuf32 libabsl20220623 libspdlog1.10 libfmt9 \
      libdnnl2 libgomp1 libpcre2-8-0 libicu72 libre2-9 libc-ares2 libssl3 \
      libprometheus-cpp-core1.0 libcivetweb1 && \
    rm -rf /var/lib/apt/lists/* && \
    useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin ropewire
COPY --from=build /src/build/server/ropewire-server /src/build/client/ropewire-cli \
     /src/build/model/ropewire-generate /src/build/tokenizer/ropewire-tokenize /usr/local/bin/
COPY models/demo /models/demo
USER 10001:10001
# gRPC, and the HTTP side port: /metrics (Prometheus), /healthz, /readyz.
EXPOSE 50051 9090
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["ropewire-cli", "health", "--target", "127.0.0.1:50051"]
# SIGTERM drains: health NOT_SERVING, GOAWAY after --drain-delay-seconds, then in-flight
# requests get --drain-grace-seconds to finish.
STOPSIGNAL SIGTERM
ENTRYPOINT ["ropewire-server"]
CMD ["--model", "/models/demo", "--host", "0.0.0.0", "--port", "50051", "--metrics-port", "9090", "--drain-grace-seconds", "25"]
