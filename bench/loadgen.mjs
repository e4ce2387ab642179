// In-process load generator for one benchmark scenario: many WebSocket clients speaking the
// chatmesh client protocol, spread over the cluster's instances; publishers send at max rate
// (a window of messages in flight, the next one on their own echo) or at a fixed offered rate.
// Counts every delivery against the room membership (lost / duplicates), measures
// send-to-receive latency (same-instance and cross-instance apart) and server CPU / RSS.
import { WebSocket } from 'ws';
import { performance } from 'node:perf_hooks';
import { SignJWT } from 'jose';

/**
 * AUTH=jwt in the environment (the instances inherit it): every client connects with a token
 * of its own (role agent, so it may join any room), signed with JWT_SECRET, sent as ?token=.
 */
const AUTH_JWT = (process.env.AUTH ?? '').toLowerCase() === 'jwt';
async function tokenFor(user) {
  const now = Math.floor(Date.now() / 1000);
  const claims = { sub: user, role: 'agent', iat: now, exp: now + 3600 };
  if (process.env.JWT_ISSUER) claims.iss = process.env.JWT_ISSUER;
  if (process.env.JWT_AUDIENCE) claims.aud = process.env.JWT_AUDIENCE;
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(process.env.JWT_SECRET ?? ''));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const CONNECT_CONCURRENCY = 200;
const JOIN_TIMEOUT_MS = 20000;
const DRAIN_MAX_MS = 5000; // after the window: wait for every counted message, at most this long
const DUP_GRACE_MS = 300; // ... then this long more, so late duplicates are seen

/** Growable Float64Array of samples. */
class Samples {
  constructor(cap = 1 << 16) {
    this.a = new Float64Array(cap);
    this.n = 0;
  }
  push(v) {
    if (this.n === this.a.length) {
      const b = new Float64Array(this.a.length * 2);
      b.set(this.a);
      this.a = b;
    }
    this.a[this.n++] = v;
  }
  static merge(...xs) {
    const out = new Samples(Math.max(1, xs.reduce((s, x) => s + x.n, 0)));
    for (const x of xs) {
      out.a.set(x.a.subarray(0, x.n), out.n);
      out.n += x.n;
    }
    return out;
  }
  /** Percentiles (ms, 3 decimals) of the samples; nulls when there are none. */
  summary(ps = { p50: 0.5, p90: 0.9, p99: 0.99, max: 1 }) {
    const out = { n: this.n };
    const s = this.a.slice(0, this.n).sort(); // typed-array sort is numeric
    for (const [k, p] of Object.entries(ps)) {
      out[k] = this.n ? +s[Math.min(this.n - 1, Math.floor(p * this.n))].toFixed(3) : null;
    }
    return out;
  }
}

/**
 * Runs one scenario against a started cluster and returns its figures.
 * spec: { clients, rooms, publishers, rate (msgs/s offered, 0 = max rate), window, size,
 *         warmupS, durationS, idle (no traffic; RSS per connection, then a one-message probe) }
 * progress(text): called with short progress notes.
 */
export async function runScenario(spec, cluster, progress = () => {}) {
  const I = cluster.instances.length;
  const urls = cluster.urls;
  const N = spec.clients;
  const R = spec.rooms;
  const P = spec.publishers;
  const SIZE = spec.size ?? 100;
  const W = spec.window ?? 8;
  const RATE = spec.rate ?? 0;

  // ---- membership: client i is on instance i % I, in room floor(i / I) % R, so the members
  // of every room are spread evenly over the instances.
  const roomSize = new Int32Array(R);
  const clients = new Array(N);
  for (let i = 0; i < N; i++) {
    const inst = i % I;
    const roomIdx = Math.floor(i / I) % R;
    roomSize[roomIdx]++;
    const room = `room-${roomIdx}`;
    const user = `u${i}`;
    clients[i] = {
      idx: i, inst, roomIdx, room, user, ws: null, joined: false, onJoined: null,
      token: null, // AUTH=jwt: its token
      pub: null, // this client's publisher state, if it publishes
      next: null, // Int32Array: next expected seq from each publisher of its room (order check)
    };
  }
  // ---- publishers: the j-th publisher of room r is on instance (r + j) % I, so the publishers
  // too are spread over the instances (S1: one per instance; S2, S3: alternate rooms).
  const pubs = [];
  const roomPubs = Array.from({ length: R }, () => []);
  for (let k = 0; k < P; k++) {
    const r = k % R;
    const j = Math.floor(k / R);
    const i = I * (r + Math.floor(j / I) * R) + ((r + j) % I);
    if (i >= N) throw new Error(`publisher ${k} does not fit: room ${r} has too few members`);
    const c = clients[i];
    const p = {
      slot: k, client: c, inst: c.inst, roomIdx: r, posInRoom: roomPubs[r].length,
      seq: 0, inflight: 0, cStart: -1, cEnd: -1, counts: new Uint32Array(1024),
      prefix: `{"type":"message","room":${JSON.stringify(c.room)},"user":${JSON.stringify(c.user)},"text":"`,
    };
    c.pub = p;
    roomPubs[r].push(p);
    pubs.push(p);
  }
  for (const c of clients) c.next = new Int32Array(roomPubs[c.roomIdx].length);
  const pads = Array.from({ length: SIZE + 1 }, (_, n) => 'x'.repeat(n));

  // ---- counters
  let phase = 'connect'; // connect -> warmup -> measure -> drain -> done
  let frames = 0, presence = 0, errorFrames = 0, lastErrorFrame = null, badFrames = 0;
  let foreign = 0, misrouted = 0, outOfOrder = 0, unexpectedCloses = 0, socketErrors = 0;
  let published = 0, expectedTotal = 0, outstanding = 0;
  const latSame = new Samples(1 << 20);
  const latCross = new Samples(1 << 18);
  let stopping = false;

  function publish(p) {
    const seq = p.seq++;
    const head = `${p.slot}|${seq}|${performance.now().toFixed(3)}|`;
    const text = head + pads[Math.max(0, SIZE - head.length)];
    if (phase === 'measure') {
      if (p.cStart < 0) p.cStart = seq;
      p.cEnd = seq + 1;
      const k = seq - p.cStart;
      if (k >= p.counts.length) {
        const b = new Uint32Array(p.counts.length * 2);
        b.set(p.counts);
        p.counts = b;
      }
      published++;
      expectedTotal += roomSize[p.roomIdx];
      outstanding += roomSize[p.roomIdx];
    }
    p.inflight++;
    p.client.ws.send(p.prefix + text + '"}');
  }

  function onDelivery(c, text) {
    const now = performance.now();
    const a = text.indexOf('|');
    const b = a < 0 ? -1 : text.indexOf('|', a + 1);
    const d = b < 0 ? -1 : text.indexOf('|', b + 1);
    const p = d < 0 ? undefined : pubs[+text.slice(0, a)];
    if (p === undefined) {
      foreign++;
      return;
    }
    const seq = +text.slice(a + 1, b);
    if (p.roomIdx !== c.roomIdx) misrouted++;
    else {
      const want = c.next[p.posInRoom];
      if (seq !== want) outOfOrder++;
      if (seq >= want) c.next[p.posInRoom] = seq + 1;
    }
    if (seq >= p.cStart && seq < p.cEnd && p.cStart >= 0) {
      const k = seq - p.cStart;
      if (p.counts[k]++ < roomSize[p.roomIdx]) outstanding--;
      if (phase !== 'done') (c.inst === p.inst ? latSame : latCross).push(now - +text.slice(b + 1, d));
    }
    if (c === p.client) {
      p.inflight--;
      if (RATE === 0 && !spec.idle && (phase === 'warmup' || phase === 'measure')) publish(p);
    }
  }

  function onFrame(c, data) {
    frames++;
    let m;
    try {
      m = JSON.parse(data);
    } catch {
      badFrames++;
      return;
    }
    switch (m.type) {
      case 'message':
        if (typeof m.text === 'string') onDelivery(c, m.text);
        break;
      case 'presence':
        presence++;
        break;
      case 'joined':
        if (m.room === c.room && !c.joined) {
          c.joined = true;
          if (c.onJoined) c.onJoined();
        }
        break;
      case 'error':
        errorFrames++;
        lastErrorFrame = `${m.code}: ${m.message}`;
        break;
    }
  }

  function connectOne(c) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(c.token ? `${urls[c.inst].replace(/\/?$/, '/')}?token=${c.token}` : urls[c.inst], { perMessageDeflate: false });
      c.ws = ws;
      const timer = setTimeout(() => {
        reject(new Error(`client ${c.idx}: no 'joined' from ${urls[c.inst]} within ${JOIN_TIMEOUT_MS} ms`));
      }, JOIN_TIMEOUT_MS);
      c.onJoined = () => {
        clearTimeout(timer);
        c.onJoined = null;
        resolve();
      };
      ws.on('open', () => ws.send(JSON.stringify({ type: 'join', room: c.room, user: c.user })));
      ws.on('message', (data) => onFrame(c, data));
      ws.on('error', (err) => {
        socketErrors++;
        if (!c.joined) {
          clearTimeout(timer);
          reject(new Error(`client ${c.idx} → ${urls[c.inst]}: ${err.message}`));
        }
      });
      ws.on('close', () => {
        if (!stopping) unexpectedCloses++;
        if (!c.joined) {
          clearTimeout(timer);
          reject(new Error(`client ${c.idx}: connection closed before 'joined'`));
        }
      });
    });
  }

  async function connectAll() {
    if (AUTH_JWT) for (const c of clients) c.token = await tokenFor(c.user);
    let next = 0;
    let failure = null;
    const worker = async () => {
      while (next < N && !failure) {
        const c = clients[next++];
        try {
          await connectOne(c);
        } catch (err) {
          failure = failure || err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONNECT_CONCURRENCY, N) }, worker));
    if (failure) throw failure;
  }

  /** Waits until no frame has arrived for quietMs (the presence storm of the joins is over). */
  async function quiet(quietMs = 300, maxMs = 5000) {
    const end = performance.now() + maxMs;
    let seen = -1;
    while (frames !== seen && performance.now() < end) {
      seen = frames;
      await sleep(quietMs);
    }
  }

  const closeAll = () => {
    stopping = true;
    for (const c of clients) if (c.ws) c.ws.terminate();
  };

  try {
    const rss0 = cluster.sample(); // before any client connects
    const t0 = performance.now();
    const g0 = process.cpuUsage();
    await connectAll();
    const joinMs = performance.now() - t0;
    await quiet();
    const gj = process.cpuUsage(g0);
    const joinCpu = {
      serversMs: Math.round(cluster.sample().reduce((sum, x, i) => sum + (x && rss0[i] ? x.cpuMs - rss0[i].cpuMs : 0), 0)),
      loadgenMs: Math.round((gj.user + gj.system) / 1000),
    };
    cluster.assertRunning();
    progress(`${N} clients joined in ${(joinMs / 1000).toFixed(1)} s`);

    let rss1 = null;
    let settleMs = 0;
    if (spec.idle) {
      // RSS after every client joined: poll until it stops growing (max ~5 s).
      const ts = performance.now();
      let prev = cluster.sample();
      let stable = 0;
      while (performance.now() - ts < 5000 && stable < 2) {
        await sleep(250);
        const cur = cluster.sample();
        const grew = cur.some((s, i) => s && prev[i] && s.rssKiB - prev[i].rssKiB > 256);
        stable = grew ? 0 : stable + 1;
        prev = cur;
      }
      rss1 = prev;
      settleMs = performance.now() - ts;
      progress(`RSS settled after ${(settleMs / 1000).toFixed(1)} s`);
    }

    // ---- traffic
    let timer = null;
    let cpu0, cpu1, gen0, gen1, mStart, mEnd;
    if (spec.idle) {
      // Probe: one message per room (publishers on alternating instances); every member must get it once.
      phase = 'measure';
      cpu0 = cluster.sample();
      gen0 = process.cpuUsage();
      mStart = performance.now();
      for (const p of pubs) publish(p);
    } else {
      phase = 'warmup';
      if (RATE > 0) {
        let base = performance.now(), sent = 0, rr = 0;
        timer = setInterval(() => {
          if (phase !== 'warmup' && phase !== 'measure') return;
          let due = Math.floor(((performance.now() - base) * RATE) / 1000) - sent;
          const cap = Math.ceil(RATE / 20); // never catch up more than 50 ms worth at once
          if (due > cap) {
            sent += due - cap;
            due = cap;
          }
          for (; due > 0; due--, sent++) publish(pubs[rr++ % pubs.length]);
        }, 5);
      } else {
        for (const p of pubs) for (let k = 0; k < W; k++) publish(p);
      }
      await sleep((spec.warmupS ?? 2) * 1000);
      cluster.assertRunning();
      cpu0 = cluster.sample();
      gen0 = process.cpuUsage();
      phase = 'measure';
      mStart = performance.now();
      progress(`measuring ${spec.durationS} s`);
      await sleep(spec.durationS * 1000);
    }
    mEnd = performance.now();
    cpu1 = cluster.sample();
    gen1 = process.cpuUsage(gen0);
    phase = 'drain';
    if (timer) clearInterval(timer);
    const dStart = performance.now();
    while (outstanding > 0 && performance.now() - dStart < DRAIN_MAX_MS) await sleep(20);
    const drainMs = performance.now() - dStart;
    await sleep(DUP_GRACE_MS);
    phase = 'done';
    cluster.assertRunning();

    // ---- tally against room membership
    let expected = 0, got = 0, lost = 0, dup = 0;
    for (const p of pubs) {
      if (p.cStart < 0) continue;
      const e = roomSize[p.roomIdx];
      for (let k = 0; k < p.cEnd - p.cStart; k++) {
        const r = p.counts[k];
        expected += e;
        got += Math.min(e, r);
        if (r < e) lost += e - r;
        else dup += r - e;
      }
    }
    if (expected !== expectedTotal) throw new Error('internal: expected deliveries do not add up');
    const secs = (mEnd - mStart) / 1000;
    const servers = cluster.instances.map((inst, i) => {
      const a = cpu0[i], b = cpu1[i], before = rss0[i], after = (rss1 || cpu1)[i];
      const conns = clients.filter((c) => c.inst === i).length;
      return {
        port: inst.port, pid: inst.pid, connections: conns,
        cpuMs: a && b ? Math.round(b.cpuMs - a.cpuMs) : null,
        cpuPct: a && b ? +((100 * (b.cpuMs - a.cpuMs)) / (secs * 1000)).toFixed(1) : null,
        rssBeforeKiB: before ? before.rssKiB : null,
        rssKiB: after ? after.rssKiB : null,
        rssPerConnKiB: before && after ? +((after.rssKiB - before.rssKiB) / Math.max(1, conns)).toFixed(2) : null,
        logLines: inst.newLogLines.count,
        ...(inst.newLogLines.count ? { lastLogLines: inst.newLogLines.last } : {}),
      };
    });
    const totalCpu = servers.reduce((s, x) => s + (x.cpuMs || 0), 0);
    const all = Samples.merge(latSame, latCross);
    return {
      clients: N, rooms: R, publishers: P, rate: RATE, window: RATE || spec.idle ? null : W, size: SIZE,
      durationS: +secs.toFixed(2), joinMs: Math.round(joinMs), joinCpu, drainMs: Math.round(drainMs),
      ...(spec.idle ? { settleMs: Math.round(settleMs) } : {}),
      published, publishedPerS: spec.idle ? null : Math.round(published / secs),
      expectedDeliveries: expected, deliveries: got, lost, duplicates: dup,
      deliveriesPerS: spec.idle ? null : Math.round(got / secs),
      latencyMs: all.summary(),
      sameLatencyMs: latSame.summary({ p50: 0.5, p99: 0.99 }),
      crossLatencyMs: latCross.summary({ p50: 0.5, p99: 0.99 }),
      cpuMsPer1kDeliveries: got && !spec.idle ? +((1000 * totalCpu) / got).toFixed(2) : null,
      loadgenCpuPct: spec.idle ? null : +((100 * (gen1.user + gen1.system)) / 1000 / (secs * 1000)).toFixed(1),
      servers,
      outOfOrder, misrouted, foreignMessages: foreign, presenceFrames: presence,
      errorFrames, lastErrorFrame, badFrames, socketErrors, unexpectedCloses,
    };
  } finally {
    // Clients first (a graceful stop of a server with 5,000 clients connected takes seconds),
    // then the servers.
    phase = 'done';
    closeAll();
    const ts = performance.now();
    await cluster.stop();
    const how = cluster.instances.map((i) => (i.exitCode === 'SIGKILL' ? 'SIGKILL after 5 s' : `exit ${i.exitCode}`)).join(', ');
    progress(`cluster stopped in ${((performance.now() - ts) / 1000).toFixed(1)} s (${how})`);
  }
}
