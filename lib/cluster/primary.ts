/**
 * Cluster mode (`npm start`): one worker per core, all sharing PORT for clients, each a
 * full mesh node with a mesh listener of its own, linked to its siblings and to instances on
 * other hosts. A worker that dies is replaced; SIGTERM/SIGINT stop every worker gracefully.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from '../log.js';
import { isClusterMessage, type ClusterMessage } from '../discovery/cluster-siblings.js';

export interface PrimaryOptions {
  workers: number;
  /** First mesh port; worker i listens on base + i. 0: every worker picks a free port. */
  meshPortBase: number;
  /** Longest a graceful stop waits for the workers. */
  shutdownTimeoutMs: number;
}

/** Restarts closer together than this count as a crash loop, and slow down. */
const CRASH_WINDOW_MS = 5000;
/** A worker that dies this many times in a row without ever becoming ready (say, PORT in use) stops the cluster. */
const MAX_FAILED_STARTS = 3;

export function runClusterPrimary(options: PrimaryOptions, log: Logger): Promise<number> {
  const meshPorts = new Map<number, number>(); // worker index → mesh port
  const byWorker = new Map<Worker, number>(); // worker → index
  const lastStart = new Map<number, number>();
  const failedStarts = new Map<number, number>();
  let stopping = false;
  let finish: (code: number) => void = () => {};

  const broadcastSiblings = () => {
    const message: ClusterMessage = { chatmesh: 'siblings', ports: [...meshPorts.values()] };
    // A worker may be dying while we write to it: the callback swallows that EPIPE.
    for (const worker of byWorker.keys()) if (worker.isConnected()) worker.send(message, () => {});
  };

  const fork = (index: number) => {
    const meshPort = options.meshPortBase === 0 ? 0 : options.meshPortBase + index;
    lastStart.set(index, Date.now());
    const worker = cluster.fork({ CHATMESH_WORKER_INDEX: String(index), MESH_PORT: String(meshPort) });
    byWorker.set(worker, index);
    worker.on('error', (err: Error) => log.debug('worker channel error', { worker: index, error: err.message }));
    worker.on('message', (message: unknown) => {
      if (!isClusterMessage(message) || message.chatmesh !== 'mesh-port') return;
      meshPorts.set(index, message.port);
      failedStarts.set(index, 0);
      log.info('worker ready', { worker: index, pid: worker.process.pid, workerNode: message.nodeId, meshPort: message.port });
      broadcastSiblings();
    });
  };

  cluster.on('exit', (worker, code, signal) => {
    const index = byWorker.get(worker);
    byWorker.delete(worker);
    if (index === undefined) return;
    const wasReady = meshPorts.delete(index);
    if (stopping) return;
    if (!wasReady) {
      const failures = (failedStarts.get(index) ?? 0) + 1;
      failedStarts.set(index, failures);
      if (failures >= MAX_FAILED_STARTS) {
        log.error('a worker cannot start: stopping the cluster (see the worker errors above)', { worker: index, attempts: failures });
        stopping = true;
        for (const other of byWorker.keys()) other.process.kill('SIGTERM');
        const done = () => byWorker.size === 0 && finish(1);
        cluster.on('exit', done);
        done();
        return;
      }
    }
    log.warn('worker died: replacing it', { worker: index, pid: worker.process.pid, code, signal });
    broadcastSiblings();
    const sinceStart = Date.now() - (lastStart.get(index) ?? 0);
    setTimeout(() => fork(index), sinceStart < CRASH_WINDOW_MS ? 1000 : 0);
  });

  log.info('cluster starting', { workers: options.workers });
  for (let i = 0; i < options.workers; i++) fork(i);

  return new Promise((resolve) => {
    finish = resolve;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        process.exit(1); // a second signal: out now
      }
      stopping = true;
      log.info('stopping workers', { signal });
      for (const worker of byWorker.keys()) worker.process.kill('SIGTERM');
      const deadline = setTimeout(() => {
        for (const worker of byWorker.keys()) worker.process.kill('SIGKILL');
      }, options.shutdownTimeoutMs + 2000);
      const check = () => {
        if (byWorker.size > 0) return;
        clearTimeout(deadline);
        log.info('cluster stopped');
        resolve(0);
      };
      cluster.on('exit', check);
      check();
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}
