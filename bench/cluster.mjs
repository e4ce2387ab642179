// A small chatmesh cluster for the benchmark: N instances of `node server.js` on free
// 127.0.0.1 ports, statically peered with each other, started and stopped by this process.
// Every process started here is tracked so it can be stopped on errors, Ctrl-C and exit.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SERVER = join(ROOT, 'server.js');

/** Processes started and not yet seen to exit. */
const live = new Set();

let clkTck = 100;
try {
  clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {}

/** CPU time (user + system, ms) and resident memory (KiB) of a process, from /proc; null if gone. */
export function procSample(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // f[0] is field 3 (state)
    const ticks = Number(f[11]) + Number(f[12]); // fields 14 utime, 15 stime
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /VmRSS:\s+(\d+)/.exec(status);
    return { cpuMs: (ticks * 1000) / clkTck, rssKiB: m ? Number(m[1]) : 0 };
  } catch {
    return null;
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function portFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host: '127.0.0.1', exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/**
 * Distinct free ports below the ephemeral range (32768–60999 here), so neither the 10,000
 * client sockets' local ports nor other programs' port-0 listeners land on them.
 */
async function pickPorts(n) {
  const ports = [];
  for (let tries = 0; ports.length < n && tries < 500; tries++) {
    const p = 20000 + Math.floor(Math.random() * 12000);
    if (!ports.includes(p) && (await portFree(p))) ports.push(p);
  }
  if (ports.length < n) throw new Error('could not find free ports on 127.0.0.1');
  return ports;
}

function getJson(port, path, timeoutMs = 1000) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode, body: JSON.parse(body) });
        } catch (e) {
          reject(e);
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

class Instance {
  constructor(port, others, env) {
    this.port = port;
    this.logTail = [];
    this.warnings = 0; // log lines (at LOG_LEVEL=warn: warnings and errors)
    this.linesAtLinked = 0; // ... of which printed before the cluster was linked (the start-up notices)
    this.exitCode = undefined;
    // BENCH_NODE_ARGS: extra node flags for the servers, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
    const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
    this.child = spawn(process.execPath, [...nodeArgs, SERVER], {
      cwd: ROOT,
      env: {
        ...process.env,
        NODE_ENV: 'production',
        LOG_LEVEL: 'warn',
        ...env,
        PORT: String(port),
        HOST: '127.0.0.1',
        DISCOVERY: 'static',
        PEERS: others.map((p) => `ws://127.0.0.1:${p}`).join(','),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.pid = this.child.pid;
    live.add(this.child);
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code, signal) => {
        live.delete(this.child);
        this.exitCode = code ?? signal;
        resolve();
      });
      this.child.once('error', (err) => {
        live.delete(this.child);
        this.exitCode = 'spawn error';
        this.logTail.push(String(err && err.message));
        resolve();
      });
    });
    const onData = (buf) => {
      for (const line of String(buf).split('\n')) {
        if (!line.trim()) continue;
        this.warnings++;
        this.logTail.push(line.length > 400 ? `${line.slice(0, 400)}…` : line);
        if (this.logTail.length > 30) this.logTail.shift();
      }
    };
    this.child.stdout.on('data', onData);
    this.child.stderr.on('data', onData);
  }

  /** Log lines printed since the cluster was linked, and the last few of them. */
  get newLogLines() {
    const n = this.warnings - this.linesAtLinked;
    return { count: n, last: n > 0 ? this.logTail.slice(-Math.min(n, 3)) : [] };
  }

  get running() {
    return this.exitCode === undefined;
  }

  sample() {
    return procSample(this.pid);
  }

  async stop(graceMs = 5000) {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(t);
  }
}

export class Cluster {
  constructor(instances) {
    this.instances = instances;
  }

  get urls() {
    return this.instances.map((i) => `ws://127.0.0.1:${i.port}/`);
  }

  /** Throws if an instance has exited (with the end of its log). */
  assertRunning() {
    for (const i of this.instances) {
      if (!i.running) {
        const last = i.logTail.length ? `: ${i.logTail[i.logTail.length - 1]}` : '';
        throw new Error(`instance on port ${i.port} exited (${i.exitCode})${last}\nlog:\n  ${i.logTail.join('\n  ')}`);
      }
    }
  }

  sample() {
    return this.instances.map((i) => i.sample());
  }

  async stop() {
    await Promise.all(this.instances.map((i) => i.stop()));
  }
}

/**
 * Starts `count` instances, each with PEERS listing the others, and resolves once every
 * instance answers /health with 200 and sees all the others as `up`.
 */
export async function startCluster({ count = 2, env = {}, timeoutMs = 30000 } = {}) {
  if (!existsSync(join(ROOT, 'dist', 'lib', 'index.js'))) {
    throw new Error('dist/ is missing: run `npm install` (or `npm run build`) first');
  }
  for (let attempt = 1; ; attempt++) {
    const ports = await pickPorts(count);
    // env: the same for every instance, or a function of the instance's index (DATA_DIR differs).
    const instances = ports.map((p, k) => new Instance(p, ports.filter((q) => q !== p), typeof env === 'function' ? env(k) : env));
    const cluster = new Cluster(instances);
    try {
      await waitLinked(cluster, timeoutMs);
      return cluster;
    } catch (err) {
      await cluster.stop();
      const portClash = instances.some((i) => i.logTail.some((l) => /EADDRINUSE|port in use/.test(l)));
      if (!portClash || attempt >= 3) throw err;
    }
  }
}

async function waitLinked(cluster, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  const need = cluster.instances.length - 1;
  const pending = new Set(cluster.instances);
  let last = '';
  while (pending.size) {
    cluster.assertRunning();
    for (const inst of [...pending]) {
      try {
        const { status, body } = await getJson(inst.port, '/health');
        const up = Array.isArray(body.peers) ? body.peers.filter((p) => p.state === 'up').length : 0;
        if (status === 200 && up >= need) pending.delete(inst);
        else last = `port ${inst.port}: /health ${status}, ${up}/${need} peers up`;
      } catch (err) {
        last = `port ${inst.port}: ${err.message}`;
      }
    }
    if (!pending.size) {
      for (const inst of cluster.instances) inst.linesAtLinked = inst.warnings;
      break;
    }
    if (Date.now() > deadline) {
      const logs = cluster.instances.map((i) => `port ${i.port}:\n  ${i.logTail.join('\n  ')}`).join('\n');
      throw new Error(`cluster not linked after ${timeoutMs} ms (${last}); logs:\n${logs}`);
    }
    await sleep(100);
  }
}

/** Sends SIGTERM to every process still running, waits up to graceMs, then SIGKILL. */
export async function stopAll(graceMs = 3000) {
  const waits = [...live].map(
    (child) =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', resolve);
        child.kill('SIGTERM');
        setTimeout(() => {
          child.kill('SIGKILL');
          resolve();
        }, graceMs).unref();
      }),
  );
  await Promise.all(waits);
}

/** Last resort, synchronous (for process 'exit'): SIGKILL whatever is still running. */
export function killAllSync() {
  for (const child of live) {
    try {
      child.kill('SIGKILL');
    } catch {}
  }
}
