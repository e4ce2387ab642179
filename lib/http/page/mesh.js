// chatmesh live view of the mesh: plain JavaScript, no framework, no build step.
// It polls GET /mesh/state every second and draws what the instance serving it knows.
// All text from the network is written with textContent, never as HTML.
const SVG = 'http://www.w3.org/2000/svg';
const POLL_MS = 1000;
const $ = (id) => document.getElementById(id);
const ui = { status: $('status'), tokenForm: $('token-form'), token: $('token'), links: $('links'), nodes: $('nodes'), rows: $('rows'), errors: $('errors') };

const state = { token: '', timer: 0, failures: 0 };

// A token may come in the fragment (#token=…): never sent to the server in the URL, and taken
// out of the address bar so it is not bookmarked or shared.
const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
if (fromHash) {
  state.token = fromHash.trim();
  ui.token.value = state.token;
  history.replaceState(null, '', location.pathname);
}

function el(tag, attrs = {}, text) {
  const node = tag.includes(':') || ['g', 'line', 'circle', 'text', 'title'].includes(tag) ? document.createElementNS(SVG, tag) : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function showError(text) {
  ui.errors.replaceChildren(el('li', {}, text));
}

const ms = (v) => (v === null || v === undefined ? '–' : `${Math.round(v)} ms`);
const count = (v) => (v === null || v === undefined ? '–' : String(v));
const plural = (n, word) => `${count(n)} ${word}${n === 1 ? '' : 's'}`;
const shortId = (key) => (key.length > 14 ? `${key.slice(0, 12)}…` : key);

/**
 * Positions on a circle, in the order of the node ids: the same on every instance, so the
 * graph stays still when another instance answers (in cluster mode each poll may reach
 * another worker of the same port).
 */
function layout(nodes) {
  const ordered = [...nodes].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const [cx, cy, r] = [320, 195, ordered.length > 1 ? 140 : 0];
  const at = new Map();
  ordered.forEach((node, i) => {
    const angle = -Math.PI / 2 + (2 * Math.PI * i) / ordered.length;
    at.set(node.key, { x: Math.round(cx + r * Math.cos(angle)), y: Math.round(cy + r * Math.sin(angle)) });
  });
  return at;
}

function draw(view) {
  const at = layout(view.nodes);
  const links = view.links.filter((l) => at.has(l.a) && at.has(l.b)).map((link) => {
    const [a, b] = [at.get(link.a), at.get(link.b)];
    // Seen from one end only (the other's advertisement has not said it, or it is down): dashed.
    const g = el('g', { class: `link${link.reportedBy.length < 2 ? ' one-sided' : ''}`, 'data-a': link.a, 'data-b': link.b });
    g.append(el('line', { x1: a.x, y1: a.y, x2: b.x, y2: b.y }), el('title', {}, `${link.a} – ${link.b}, reported by ${link.reportedBy.join(', ')}`));
    if (link.rttMs !== null) g.append(el('text', { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 - 6 }, ms(link.rttMs)));
    return g;
  });
  ui.links.replaceChildren(...links);
  const nodes = view.nodes.map((node) => {
    const { x, y } = at.get(node.key);
    const g = el('g', { class: `node ${node.state}${node.self ? ' self' : ''}`, 'data-node': node.key, 'data-state': node.state });
    const detail = node.state === 'up' || node.state === 'indirect' ? `${plural(node.connections, 'client')} · ${plural(node.rooms, 'room')}` : node.state;
    g.append(
      el('circle', { cx: x, cy: y, r: 26 }),
      el('text', { x, y: y + 44, class: 'label' }, shortId(node.key)),
      el('text', { x, y: y + 59, class: 'detail' }, detail),
      el('title', {}, `${node.key}${node.self ? ' (this instance)' : ''}: ${node.state}${node.reason ? ` (${node.reason})` : ''}`),
    );
    return g;
  });
  ui.nodes.replaceChildren(...nodes);
  ui.rows.replaceChildren(...view.nodes.map(row));
}

function row(node) {
  const tr = el('tr', { class: node.state, 'data-node': node.key });
  const lag = node.replicationLagMs === null ? '–' : `${ms(node.replicationLagMs)} (${new Date(node.lastWriteAt).toLocaleTimeString()})`;
  const cells = [
    [`${node.key}${node.self ? ' (this instance)' : ''}`],
    [node.state + (node.reason ? `: ${node.reason}` : '')],
    [node.address ?? '–'],
    [count(node.connections), 'num'],
    [count(node.rooms), 'num'],
    [ms(node.rttMs), 'num'],
    [node.self ? '–' : ms(node.clockSkewMs), 'num'],
    [lag, 'num'],
  ];
  tr.append(...cells.map(([text, cls]) => el('td', cls ? { class: cls } : {}, text)));
  return tr;
}

async function poll() {
  clearTimeout(state.timer);
  try {
    const headers = state.token ? { authorization: `Bearer ${state.token}` } : {};
    const res = await fetch('/mesh/state', { headers, cache: 'no-store', signal: AbortSignal.timeout(3000) });
    const body = await res.json().catch(() => null);
    if (res.status === 401) {
      // A token is needed: ask for one, and stop polling until it is given.
      ui.tokenForm.hidden = false;
      ui.status.textContent = 'A token is needed';
      showError(body?.error?.message ?? 'unauthorized');
      return;
    }
    if (!res.ok || !body || !Array.isArray(body.nodes)) {
      ui.status.textContent = `Refused (${res.status})`;
      showError(body?.error?.message ?? `GET /mesh/state answered ${res.status}`);
      if (res.status === 403) return; // asking again changes nothing
    } else {
      state.failures = 0;
      ui.tokenForm.hidden = true;
      ui.errors.replaceChildren();
      draw(body);
      const up = body.nodes.filter((n) => n.state === 'up' || n.state === 'indirect').length;
      ui.status.textContent = `Live: ${up} of ${body.nodes.length} nodes up, ${plural(body.links.length, 'link')}, seen from ${shortId(body.self)} at ${new Date(body.at).toLocaleTimeString()}`;
      document.title = `${up}/${body.nodes.length} up – chatmesh mesh`;
    }
  } catch {
    state.failures += 1;
    ui.status.textContent = `This instance does not answer (${state.failures} tries): the view is stale`;
  }
  state.timer = setTimeout(poll, POLL_MS);
}

ui.tokenForm.addEventListener('submit', (event) => {
  event.preventDefault();
  state.token = ui.token.value.trim();
  ui.errors.replaceChildren();
  poll();
});

poll();
