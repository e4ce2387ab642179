/**
 * Runs chatmesh as a real process (`node server.js`), optionally inside a network namespace,
 * and gives tests what they need to observe it: its port, node id, log lines, /health.
 * Every instance started is tracked so `stopAll()` in an afterEach can stop what a test
 * started, even when the test failed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { poll, withTimeout } from './wait.js';

/** The repository root (dist/test/helpers → ../../..). */
export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const SERVER = join(ROOT, 'server.js');

export interface InstanceOptions {
  /** Port to listen on; a free one is picked when omitted. */
  port?: number;
  /** Environment on top of a quiet default (DISCOVERY=off unless given). */
  env?: Record<string, string | undefined>;
  /** Run inside this network namespace (`ip netns exec`). */
  netns?: string;
  /** Address the test uses to reach the instance. @default 127.0.0.1 */
  host?: string;
}

export interface LogLine {
  level: string;
  msg: string;
  node: string;
  [key: string]: unknown;
}

export interface PeerRow {
  id: string | null;
  address: string;
  state: string;
  since: string;
  lastSeen: string | null;
  rttMs: number | null;
  direction: 'in' | 'out' | null;
  reason?: string;
}

export interface Health {
  status: string;
  node: { id: string; port: number; version: string };
  uptime: number;
  connections: number;
  rooms: number;
  store: { conversations: number; messages: number; tombstones: number };
  mesh: { received: number; duplicates: number; forwarded: number; skippedForwards: number; invalid: number };
  memory: { rssBytes: number; heapUsedBytes: number };
  peers: PeerRow[];
}

const running = new Set<Instance>();

export class Instance {
  readonly logs: LogLine[] = [];
  readonly output: string[] = [];
  nodeId = '';
  exitCode: number | null = null;
  exitSignal: NodeJS.Signals | null = null;
  private readonly exited: Promise<void>;

  private constructor(
    readonly proc: ChildProcess,
    readonly port: number,
    readonly host: string,
    readonly options: InstanceOptions,
  ) {
    this.exited = once(proc, 'exit').then(([code, signal]) => {
      this.exitCode = code as number | null;
      this.exitSignal = signal as NodeJS.Signals | null;
      running.delete(this);
    });
    let buffer = '';
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString();
      let nl: number;
      while ((nl = buffer.indexOf('\n')) !== -1) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        this.output.push(line);
        try {
          const parsed = JSON.parse(line) as LogLine;
          this.logs.push(parsed);
          if (parsed.msg === 'chatmesh listening') this.nodeId = parsed.node;
        } catch {
          // not a log line (stderr text): kept in output
        }
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
  }

  /** Starts `node server.js` and waits until it listens. */
  static async start(options: InstanceOptions = {}): Promise<Instance> {
    const port = options.port ?? (await freePort());
    const env: Record<string, string> = { PATH: process.env.PATH ?? '', DISCOVERY: 'off', LOG_LEVEL: 'debug', PORT: String(port) };
    for (const [k, v] of Object.entries(options.env ?? {})) {
      if (v === undefined) delete env[k];
      else env[k] = v;
    }
    const command = options.netns ? ['ip', ['netns', 'exec', options.netns, process.execPath, SERVER]] : [process.execPath, [SERVER]];
    const proc = spawn(command[0] as string, command[1] as string[], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const instance = new Instance(proc, port, options.host ?? '127.0.0.1', options);
    running.add(instance);
    try {
      await poll(() => instance.nodeId || instance.exitCode !== null || instance.exitSignal !== null, { timeoutMs: 10_000, what: `instance on port ${port} to listen` });
    } catch (err) {
      await instance.kill();
      throw new Error(`${(err as Error).message}\n${instance.output.join('\n')}`);
    }
    if (!instance.nodeId) throw new Error(`instance on port ${port} exited at start:\n${instance.output.join('\n')}`);
    return instance;
  }

  get url(): string {
    return `ws://${this.host}:${this.port}`;
  }

  get httpUrl(): string {
    return `http://${this.host}:${this.port}`;
  }

  /** The address other instances use to reach this one as a peer. */
  get peerAddress(): string {
    return `ws://${this.host}:${this.port}`;
  }

  get alive(): boolean {
    return this.exitCode === null && this.exitSignal === null;
  }

  async health(): Promise<{ status: number; body: Health }> {
    const res = await fetch(`${this.httpUrl}/health`, { signal: AbortSignal.timeout(3000) });
    return { status: res.status, body: (await res.json()) as Health };
  }

  /** Waits until /health lists a peer matching the predicate. */
  async waitForPeer(match: (p: PeerRow) => boolean, timeoutMs = 5000, what = 'a matching peer'): Promise<PeerRow> {
    return poll(async () => (await this.health()).body.peers.find(match), { timeoutMs, what: `${what} in /health of :${this.port}` });
  }

  /** Waits until the given node ids all show as up in /health. */
  async waitForPeersUp(ids: string[], timeoutMs = 5000): Promise<void> {
    await poll(
      async () => {
        const peers = (await this.health()).body.peers;
        return ids.every((id) => peers.some((p) => p.id === id && p.state === 'up'));
      },
      { timeoutMs, what: `peers ${ids.join(', ')} up at :${this.port}` },
    );
  }

  /** Waits for a log line matching the predicate (already logged or still to come). */
  waitForLog(match: (l: LogLine) => boolean, timeoutMs = 5000, what = 'a matching log line'): Promise<LogLine> {
    return poll(() => this.logs.find(match), { timeoutMs, what: `${what} from :${this.port}` });
  }

  /** Sends a signal and waits for the process to exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.alive) return;
    this.proc.kill(signal);
    await withTimeout(this.exited, 10_000, `instance on :${this.port} to exit after ${signal}`);
  }

  signal(signal: NodeJS.Signals): void {
    this.proc.kill(signal);
  }

  /** Graceful stop (SIGTERM); resolves with the exit code. */
  async stop(): Promise<number | null> {
    await this.kill('SIGTERM');
    return this.exitCode;
  }

  waitExit(timeoutMs = 10_000): Promise<void> {
    return withTimeout(this.exited, timeoutMs, `instance on :${this.port} to exit`);
  }
}

/** Stops every instance still running (SIGCONT first, in case a test stopped one). */
export async function stopAll(): Promise<void> {
  await Promise.all(
    [...running].map(async (i) => {
      i.signal('SIGCONT');
      await i.kill('SIGKILL').catch(() => {});
    }),
  );
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  server.close();
  await once(server, 'close');
  return port;
}
