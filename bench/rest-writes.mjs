// Acknowledged REST writes per second: `concurrency` writers, each posting to its own
// conversation (on the instances in turn) as fast as the answers come, for `seconds`.
// Counts 201s and their latency (p50, p99). Any other answer is counted as an error.

export async function restWrites(cluster, { seconds = 10, warmupS = 2, concurrency = 32, size = 100 } = {}) {
  const urls = cluster.instances.map((i) => `http://127.0.0.1:${i.port}`);
  const content = 'x'.repeat(size);
  const rooms = [];
  for (let k = 0; k < concurrency; k++) {
    const res = await fetch(`${urls[k % urls.length]}/api/conversations`, { method: 'POST' });
    rooms.push((await res.json()).id);
  }
  const lat = [];
  let acked = 0;
  let errors = 0;
  let measuring = false;
  let running = true;
  const writer = async (k) => {
    const url = `${urls[k % urls.length]}/api/conversations/${rooms[k]}/messages`;
    const body = JSON.stringify({ sender: 'agent', content });
    while (running) {
      const t = performance.now();
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      await res.arrayBuffer();
      if (!measuring) continue;
      if (res.status === 201) {
        acked++;
        lat.push(performance.now() - t);
      } else errors++;
    }
  };
  const all = Array.from({ length: concurrency }, (_, k) => writer(k));
  await new Promise((r) => setTimeout(r, warmupS * 1000));
  measuring = true;
  await new Promise((r) => setTimeout(r, seconds * 1000));
  measuring = false;
  running = false;
  await Promise.all(all);
  lat.sort((a, b) => a - b);
  const q = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : null);
  return { perSec: acked / seconds, acked, errors, p50: q(0.5), p99: q(0.99) };
}
