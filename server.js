#!/usr/bin/env node
// chatmesh entry point: reads the environment, starts one node, stops it cleanly on SIGINT/SIGTERM.
//   node server.js             one process (the quick start)
//   node server.js --cluster   one worker per core (npm start); WORKERS overrides the count
// Configuration: see the README's table of environment variables.
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8';

// V8's young generation may grow to 4 MiB per semi-space, not to its default 16. V8 doubles it
// whenever the objects that outlive its scavenges add up to its size, and a join storm's new
// connections do: 2,500 connections grew it by 24 MiB of RSS that an idle server never gives
// back (about 10 KiB per connection). Held at 1 MiB it cost CPU at a steady load (short-lived
// objects promoted early); 4 MiB, what loading chatmesh grows it to anyway, cost neither
// (docs/benchmarks.md). Watched from the start; a semi-space flag of your own wins.
const YOUNG_GENERATION_MIB = 4;
if (!/semi[-_]space/.test(`${process.execArgv.join(' ')} ${process.env.NODE_OPTIONS ?? ''}`)) {
  const semiSpace = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space');
  const full = () => {
    const now = getHeapSpaceStatistics().find((s) => s.space_name === 'new_space') ?? semiSpace;
    return now.space_used_size + now.space_available_size >= YOUNG_GENERATION_MIB * 1024 * 1024 * 0.9; // page headers aside
  };
  // V8 grows it in a scavenge; the next scavenge's report comes before it could double again.
  const watch = new PerformanceObserver(() => {
    if (!full()) return;
    setFlagsFromString('--semi-space-growth-factor=1');
    watch.disconnect();
  });
  watch.observe({ entryTypes: ['gc'] });
}

let lib;
try {
  lib = await import('./dist/lib/index.js');
} catch (err) {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND') {
    console.error('chatmesh: dist/ is missing. Run `npm install` (it builds the TypeScript) and try again.');
    process.exit(1);
  }
  throw err;
}
const { ChatNode, optionsFromEnv, authOptionsFromEnv, metricsTokenFromEnv, webhookOptionsFromEnv, tlsOptionsFromEnv, ConfigError, runClusterPrimary, ClusterSiblings, createLogger } = lib;

function fail(message) {
  console.error(`chatmesh: ${message}`);
  process.exit(1);
}

let options, auth, metricsToken, webhook, tls;
try {
  options = optionsFromEnv(process.env);
  // AUTH, JWT_*, JWKS_*: checked here, so a bad value stops start-up naming the variable.
  auth = authOptionsFromEnv(process.env);
  metricsToken = metricsTokenFromEnv(process.env);
  webhook = webhookOptionsFromEnv(process.env);
  tls = tlsOptionsFromEnv(process.env);
} catch (err) {
  if (err instanceof ConfigError) fail(`bad configuration: ${err.message}`);
  throw err;
}

const clusterMode = process.argv.includes('--cluster');

if (clusterMode && cluster.isPrimary) {
  const raw = process.env.WORKERS;
  if (raw !== undefined && raw !== '' && !/^[1-9]\d*$/.test(raw.trim())) fail(`bad configuration: WORKERS: must be a whole number of at least 1, not ${JSON.stringify(raw)}`);
  const workers = raw ? Number(raw) : availableParallelism();
  const log = createLogger({ nodeId: 'primary', level: options.logLevel });
  // Workers share PORT for clients; each needs a mesh port of its own (MESH_PORT + index, or any free one).
  const meshPortBase = process.env.MESH_PORT ? options.meshPort : 0;
  const code = await runClusterPrimary({ workers, meshPortBase, shutdownTimeoutMs: options.shutdownTimeoutMs }, log);
  process.exit(code);
}

const isWorker = clusterMode && cluster.isWorker;
// Each cluster worker keeps its own store: DATA_DIR/worker-N.
if (isWorker && options.dataDir) options = { ...options, dataDir: join(options.dataDir, `worker-${process.env.CHATMESH_WORKER_INDEX ?? cluster.worker.id}`) };
let node;
try {
  node = new ChatNode(options, {
    auth,
    metricsToken,
    webhook,
    tls,
    extraPeerSources: isWorker ? ({ id, meshPort }) => [new ClusterSiblings(meshPort, id)] : undefined,
  });
} catch (err) {
  fail(`cannot start: ${err && err.message}`);
}
try {
  await node.start();
} catch (err) {
  const hint = err && err.code === 'EADDRINUSE' ? ' (port in use: set PORT to another one)' : '';
  await node.close().catch(() => {});
  fail(`cannot start: ${err && err.message}${hint}`);
}

let stopping = false;
function stop(signal) {
  if (stopping) process.exit(1); // a second signal: the user wants out now
  stopping = true;
  node.log.info('signal received', { signal });
  node.close().then(
    () => process.exit(0),
    (err) => fail(`error while stopping: ${err && err.message}`),
  );
}
process.on('SIGTERM', () => stop('SIGTERM'));
// A worker leaves Ctrl-C to the primary, which stops every worker with SIGTERM.
process.on('SIGINT', () => (isWorker ? undefined : stop('SIGINT')));
