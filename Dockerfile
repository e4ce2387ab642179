# chatmesh container image. Build and run:
#   docker build -t chatmesh .
#   docker run --rm -p 3000:3000 -e DISCOVERY=static -e PEERS=... -e MESH_SECRET=... chatmesh
# mDNS (the default DISCOVERY) rarely works between containers: use a static peer list, or
# DNS discovery on Kubernetes (deploy/kubernetes.yaml). See deploy/README.md.

# --- build: all dependencies (TypeScript included), compile lib/ to dist/lib ---------------
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would build before the sources are copied; we build below.
RUN npm ci --ignore-scripts
COPY tsconfig.json ./
COPY lib ./lib
RUN npx tsc -p tsconfig.json

# --- run: production dependencies and the compiled code only --------------------------------
FROM node:20-slim
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# No dependency of chatmesh has an install script; --ignore-scripts skips our own `prepare`
# (a tsc build, and tsc is a dev dependency).
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist/lib ./dist/lib
# The browser page is read from its source folder (lib/http/chat-page.ts).
COPY lib/http/page ./lib/http/page
COPY server.js ./

# The image's `node` user (uid 1000): the process needs no privileges and writes no files.
USER node

# Clients (HTTP, WebSocket) and, unless MESH_PORT is set, peer links.
EXPOSE 3000

# node:20-slim has no curl: ask /health with node itself. 503 (shutting down) or no answer
# marks the container unhealthy. Assumes chatmesh listens on loopback too (HOST unset, the
# default: every interface).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/health', { signal: AbortSignal.timeout(2000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# One process: one chatmesh node. server.js handles SIGTERM itself (graceful stop: /health
# 503, clients closed with 1001, peers told), so no init wrapper is needed to stop it.
# For one worker per core in one container, run cluster mode, which is what `npm start`
# runs; call node directly so no npm process sits between Docker's signals and chatmesh:
#   CMD ["node", "server.js", "--cluster"]
# and set WORKERS to the container's CPU limit (the default counts the host's cores). On
# Kubernetes prefer one process per pod and more replicas.
CMD ["node", "server.js"]
