// chatmesh browser page: plain JavaScript, no framework, no build step.
// All text from the network or the user is written with textContent, never as HTML.
const $ = (id) => document.getElementById(id);
const ui = {
  status: $('status'), joinForm: $('join-form'), name: $('name'), room: $('room'), chat: $('chat'),
  roomTitle: $('room-title'), messages: $('messages'), sendForm: $('send-form'), text: $('text'),
  members: $('members'), errors: $('errors'), tokenField: $('token-field'), token: $('token'),
};

const state = {
  user: '',
  room: '',
  auth: 'none', // the server's AUTH, from /health: with 'jwt' the page sends a token
  token: '',
  ws: null,
  joined: false, // `joined` received on the current socket
  wanted: false, // the user is in the room: reconnect whenever the socket closes
  attempt: 0, // reconnect attempts since the last `joined`
  timer: 0,
  entries: [], // shown messages, { id, ts, li }, sorted by (ts, id)
  seen: new Set(), // every message id shown (or deleted): never shown twice
  members: new Set(),
};

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function setStatus(text) {
  ui.status.textContent = text;
}

function showError(text) {
  ui.errors.append(el('li', '', text));
  while (ui.errors.children.length > 5) ui.errors.firstElementChild.remove();
}

function send(frame) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(frame));
}

function connect() {
  clearTimeout(state.timer);
  setStatus(state.attempt ? 'Reconnecting…' : 'Connecting…');
  // Browsers cannot set headers on a WebSocket: the token goes in the query.
  const query = state.auth === 'jwt' && state.token ? `?token=${encodeURIComponent(state.token)}` : '';
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/${query}`);
  state.ws = ws;
  state.joined = false;
  ws.onopen = () => {
    // Resume: ask for every message after the last one shown.
    const last = state.entries.at(-1);
    // With a token the name may be left out: the server uses the token's subject.
    const join = { type: 'join', room: state.room, ...(state.user && { user: state.user }) };
    send(last ? { ...join, since: last.id } : join);
  };
  ws.onmessage = (event) => {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    if (frame && typeof frame === 'object') onFrame(frame);
  };
  ws.onclose = (event) => {
    if (state.ws !== ws) return;
    if (event.code === 4401 || event.code === 4403) {
      showError(event.code === 4401 ? 'Your token expired: paste a new one.' : 'Your token was revoked.');
      state.ws = null;
      leave();
      return;
    }
    state.ws = null;
    state.joined = false;
    ui.chat.classList.add('offline');
    if (!state.wanted) return;
    // Exponential backoff (0.5 s doubling, at most 8 s) with jitter, so a restarted server is not stampeded.
    const delay = Math.min(8000, 500 * 2 ** state.attempt) * (0.5 + Math.random() / 2);
    state.attempt += 1;
    setStatus(`Disconnected: reconnecting in ${Math.ceil(delay / 1000)} s…`);
    state.timer = setTimeout(connect, delay);
  };
}

function onFrame(frame) {
  if (frame.type === 'error') {
    showError(`${frame.code}: ${frame.message}`);
    // The join is the first frame on a socket: an error before `joined` is the join's.
    if (!state.joined) leave();
    return;
  }
  if (frame.room !== state.room) return;
  switch (frame.type) {
    case 'joined':
      state.joined = true;
      state.attempt = 0;
      ui.chat.classList.remove('offline');
      if (typeof frame.user === 'string') state.user = frame.user;
      setStatus(`Connected as ${state.user}`);
      if (frame.gap) ui.messages.append(el('li', 'notice', 'Some messages were missed while disconnected.'));
      for (const message of frame.history ?? []) addMessage(message);
      if (frame.truncated) setCount(frame.count);
      else setMembers(frame.members ?? []);
      // A long resume comes in pages: ask for the next one.
      if (frame.more && typeof frame.next === 'string') send({ type: 'join', room: state.room, user: state.user, since: frame.since, after: frame.next });
      break;
    case 'message':
      addMessage(frame);
      break;
    case 'deleted':
      removeMessage(frame.id);
      break;
    case 'presence':
      if (Array.isArray(frame.joined)) {
        // Several joins and leaves in one frame (a busy moment).
        for (const name of frame.joined) state.members.add(name);
        renderMembers();
        if (frame.left.length > 0) send({ type: 'members', room: state.room });
      } else if (frame.event === 'join') {
        state.members.add(frame.user);
        renderMembers();
      } else {
        // The name may still be in the room on another connection: ask for the list.
        send({ type: 'members', room: state.room });
      }
      break;
    case 'members':
      if (frame.truncated) setCount(frame.count);
      else setMembers(frame.members ?? []);
      break;
    case 'occupancy':
      // A big room tells counts only (PRESENCE_MAX_MEMBERS).
      setCount(frame.count);
      break;
  }
}

const before = (a, b) => a.ts < b.ts || (a.ts === b.ts && a.id < b.id);

function addMessage(m) {
  if (typeof m.id !== 'string' || state.seen.has(m.id)) return;
  state.seen.add(m.id);
  const ts = Number(m.ts) || 0;
  const li = el('li', 'message');
  li.dataset.id = m.id;
  const time = el('time', '', new Date(ts).toLocaleTimeString());
  time.dateTime = new Date(ts).toISOString();
  li.append(el('span', 'user', String(m.user)), ' ', time, ' ', el('span', 'text', String(m.text)));
  const entry = { id: m.id, ts, li };
  let i = state.entries.length;
  while (i > 0 && before(entry, state.entries[i - 1])) i -= 1;
  const next = state.entries[i];
  state.entries.splice(i, 0, entry);
  const atBottom = ui.messages.scrollHeight - ui.messages.scrollTop - ui.messages.clientHeight < 40;
  ui.messages.insertBefore(li, next ? next.li : null);
  if (atBottom) ui.messages.scrollTop = ui.messages.scrollHeight;
}

function removeMessage(id) {
  state.seen.add(id);
  const i = state.entries.findIndex((e) => e.id === id);
  if (i === -1) return;
  state.entries[i].li.remove();
  state.entries.splice(i, 1);
}

function setMembers(list) {
  state.members = new Set(list);
  renderMembers();
}

function setCount(count) {
  state.members = new Set();
  ui.members.replaceChildren(el('li', 'notice', `${count} members`));
}

function renderMembers() {
  const items = [...state.members].sort().map((name) => {
    const li = el('li', '', String(name));
    li.dataset.user = name;
    if (name === state.user) li.append(el('span', 'you', ' (you)'));
    return li;
  });
  ui.members.replaceChildren(...items);
}

function leave() {
  state.wanted = false;
  clearTimeout(state.timer);
  const ws = state.ws;
  state.ws = null;
  if (ws) ws.close();
  ui.chat.hidden = true;
  ui.joinForm.hidden = false;
  setStatus('Not connected');
}

ui.joinForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const user = ui.name.value.trim();
  const room = ui.room.value.trim();
  const token = ui.token.value.trim();
  if ((!user && state.auth !== 'jwt') || !room) return;
  if (state.auth === 'jwt' && !token) return showError('This server needs a token.');
  Object.assign(state, { user, room, token, wanted: true, attempt: 0, entries: [], seen: new Set(), members: new Set() });
  ui.messages.replaceChildren();
  ui.members.replaceChildren();
  ui.errors.replaceChildren();
  ui.roomTitle.textContent = `Room: ${room}`;
  document.title = `${room} – chatmesh`;
  ui.joinForm.hidden = true;
  ui.chat.hidden = false;
  ui.text.focus();
  connect();
});

$('leave').addEventListener('click', leave);

ui.sendForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = ui.text.value;
  if (!text.trim()) return;
  if (!state.joined) return showError('Not connected: the message was not sent.');
  send({ type: 'message', room: state.room, text });
  ui.text.value = '';
});

// Does the server want a token? /health says (and never shows one). A ?token= in this page's
// URL fills the field, and is taken out of the address bar so it is not bookmarked or shared.
const fromUrl = new URLSearchParams(location.search).get('token');
if (fromUrl) {
  ui.token.value = fromUrl;
  history.replaceState(null, '', location.pathname);
}
fetch('/health')
  .then((res) => res.json())
  .then((health) => {
    if (health.auth !== 'jwt') return;
    state.auth = 'jwt';
    ui.tokenField.hidden = false;
    ui.name.required = false;
    ui.name.placeholder = 'from your token';
  })
  .catch(() => {});
