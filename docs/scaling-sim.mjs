#!/usr/bin/env node
// How the cost of one broadcast grows with the number of instances, full mesh versus partial
// mesh, using chatmesh's own forwarding rule (lib/mesh/router.ts): the origin sends on every
// link; a node that sees an id for the first time delivers it and, while hops remain, forwards
// it on every other link except back to the sender and to the origin; later copies are dropped.
//   node docs/scaling-sim.mjs            prints the table used in docs/scaling.md
// Deterministic: random graphs use a seeded generator.

function mulberry32(seed) {
  return () => {
    seed |= 0; seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function fullMesh(n) {
  return Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => j).filter((j) => j !== i));
}

/** A connected random graph where every node has about `degree` links (ring + random chords). */
function partialMesh(n, degree, seed = 1) {
  const rand = mulberry32(seed);
  const adj = Array.from({ length: n }, () => new Set());
  const link = (a, b) => { if (a !== b) { adj[a].add(b); adj[b].add(a); } };
  for (let i = 0; i < n; i++) link(i, (i + 1) % n); // a ring keeps it connected
  for (let i = 0; i < n; i++) {
    let tries = 0;
    while (adj[i].size < degree && tries++ < 100) {
      const j = Math.floor(rand() * n);
      if (adj[j].size < degree) link(i, j);
    }
  }
  return adj.map((s) => [...s]);
}

function diameter(adj) {
  let max = 0;
  for (let s = 0; s < adj.length; s++) {
    const dist = new Array(adj.length).fill(-1);
    dist[s] = 0;
    const queue = [s];
    for (let q = 0; q < queue.length; q++) for (const v of adj[queue[q]]) if (dist[v] < 0) { dist[v] = dist[queue[q]] + 1; queue.push(v); }
    max = Math.max(max, ...dist);
  }
  return max;
}

/**
 * Floods one event from `origin` with `hops`; returns frames sent, nodes reached, max hops used.
 * `smart`: a node does not forward to a peer that the origin is linked to itself, when the
 * origin is its own neighbour (so it knows the origin's links from its advertisement).
 */
function flood(adj, origin, hops, smart = false) {
  const originLinks = new Set(adj[origin]);
  const seen = new Set([origin]);
  let frames = 0;
  let maxDepth = 0;
  // Breadth-first is what happens on equal-latency links: first copies travel the shortest paths.
  let wave = adj[origin].map((to) => ({ to, from: origin, hopsLeft: hops - 1, depth: 1 }));
  frames += wave.length;
  while (wave.length) {
    const next = [];
    for (const { to, from, hopsLeft, depth } of wave) {
      if (seen.has(to)) continue; // duplicate: dropped by the seen-cache
      seen.add(to);
      maxDepth = Math.max(maxDepth, depth);
      if (hopsLeft <= 0) continue;
      const knowsOrigin = smart && originLinks.has(to);
      for (const v of adj[to]) if (v !== from && v !== origin && !(knowsOrigin && originLinks.has(v))) { next.push({ to: v, from: to, hopsLeft: hopsLeft - 1, depth: depth + 1 }); frames++; }
    }
    wave = next;
  }
  return { frames, reached: seen.size, maxDepth };
}

function measure(name, adj, hops, smart = false) {
  const n = adj.length;
  let frames = 0, reached = 0, depth = 0;
  for (let o = 0; o < n; o++) { const r = flood(adj, o, hops, smart); frames += r.frames; reached += r.reached; depth = Math.max(depth, r.maxDepth); }
  const links = adj.reduce((s, l) => s + l.length, 0) / 2;
  return { name: name + (smart ? ', smart' : ', flood'), n, hops, framesPerBroadcast: frames / n, duplicatesPerBroadcast: frames / n - (n - 1), coverage: reached / (n * n), maxHopsUsed: depth, linksPerNode: (2 * links) / n, totalLinks: links };
}

const rows = [];
for (const n of [2, 3, 5, 10, 20, 50, 100, 200]) {
  rows.push(measure('full mesh', fullMesh(n), 1));
  rows.push(measure('full mesh', fullMesh(n), 2));
  rows.push(measure('full mesh', fullMesh(n), 2, true));
  for (const degree of [4, 8]) {
    if (degree >= n - 1) continue;
    const adj = partialMesh(n, degree);
    rows.push(measure(`partial, degree ~${degree}`, adj, diameter(adj) + 1));
    rows.push(measure(`partial, degree ~${degree}`, adj, diameter(adj) + 1, true));
  }
}

const head = ['instances', 'topology', 'hops', 'frames/broadcast', 'wasted (dups)', 'reached', 'max hops', 'links/node', 'links total'];
console.log('| ' + head.join(' | ') + ' |');
console.log('|' + head.map(() => '---').join('|') + '|');
for (const r of rows) {
  console.log(`| ${r.n} | ${r.name} | ${r.hops} | ${r.framesPerBroadcast.toFixed(1)} | ${r.duplicatesPerBroadcast.toFixed(1)} | ${(100 * r.coverage).toFixed(0)}% | ${r.maxHopsUsed} | ${r.linksPerNode.toFixed(1)} | ${r.totalLinks} |`);
}
