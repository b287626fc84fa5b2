# Stele's container image: `docker build -t stele .` then, for one embedded node,
#   docker run -p 7433:7433 -v stele-data:/data stele
# or, for nodes sharing a log in PostgreSQL (deploy/kubernetes/stele-postgres.yaml),
#   docker run -e STELE_POSTGRES_URL=postgres://… -v /etc/stele:/config:ro stele serve --dir /config …
# The build compiles the native modules (better-sqlite3, zstd-napi) from source when no prebuilt
# binary can be fetched, so the build stage has a compiler; the runtime stage does not.

FROM node:20-bookworm AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json ./
COPY src ./src
COPY bench ./bench
COPY test ./test
COPY console ./console
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /opt/stele
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
# The console's static files, served at / (built by npm run build).
COPY --from=build /src/dist/console ./dist/console
# Read at run time beside the code: the leaf compression dictionary and the git hook scripts.
COPY src/event/dictionaries ./src/event/dictionaries
COPY clients/git ./clients/git
# The data directory (embedded storage), owned by the unprivileged user the server runs as.
RUN mkdir -m 0700 /data && chown node:node /data
USER node
ENV STELE_DIR=/data
EXPOSE 7433
HEALTHCHECK --interval=30s --timeout=5s CMD ["node", "-e", "fetch('http://127.0.0.1:7433/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "/opt/stele/dist/src/cli/main.js"]
CMD ["serve", "--listen", "0.0.0.0:7433"]
