// chatmesh browser page: plain JavaScript, no framework, no build step.
// All text from the network or the user is written with textContent, never as HTML.
// The connection (reconnect, resume, retries) is chatmesh/client, served at /client.js.
import { ChatClient } from './client.js';

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
  client: null, // the ChatClient (reconnect, resume, dedupe and retries are the library's)
  entries: [], // shown messages, { id, ts, li }, sorted by (ts, id)
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

function start() {
  // Browsers cannot set headers on a WebSocket: the library puts the token in the query.
  const client = new ChatClient({
    urls: [`${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/`],
    // With a token the name may be left out: the server uses the token's subject.
    ...(state.user && { user: state.user }),
    ...(state.auth === 'jwt' && { token: state.token }),
  });
  state.client = client;
  client.on('state', (s) => {
    if (state.client !== client) return;
    if (s.state === 'connecting') setStatus(s.attempt ? 'Reconnecting…' : 'Connecting…');
    if (s.state === 'reconnecting') {
      ui.chat.classList.add('offline');
      setStatus(`Disconnected: reconnecting${s.delayMs >= 1000 ? ` in ${Math.ceil(s.delayMs / 1000)} s` : ''}…`);
    }
    if (s.state === 'closed' && (s.code === 4401 || s.code === 4403)) {
      showError(s.code === 4401 ? 'Your token expired: paste a new one.' : 'Your token was revoked.');
      leave();
    }
  });
  client.on('joined', (info) => {
    state.user = info.user;
    ui.chat.classList.remove('offline');
    setStatus(`Connected as ${state.user}`);
    // A big room (over PRESENCE_MAX_MEMBERS) tells how many, not who.
    if (info.count !== undefined) setCount(info.count);
    else renderMembers();
  });
  client.on('gap', () => ui.messages.append(el('li', 'notice', 'Some messages were missed while disconnected.')));
  client.on('message', addMessage);
  client.on('deleted', (frame) => removeMessage(frame.id));
  client.on('members', (event) => (event.count !== undefined ? setCount(event.count) : setMembers(event.members)));
  client.on('error', (err) => showError(`${err.code}: ${err.message}`));
  client.join(state.room).catch((err) => {
    if (state.client !== client) return;
    showError(`${err.code}: ${err.message}`);
    leave();
  });
}

const before = (a, b) => a.ts < b.ts || (a.ts === b.ts && a.id < b.id);

// The library delivers each message once (deduped by id, also across resumes).
function addMessage(m) {
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
  const client = state.client;
  state.client = null;
  if (client) client.close();
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
  Object.assign(state, { user, room, token, entries: [], members: new Set() });
  ui.messages.replaceChildren();
  ui.members.replaceChildren();
  ui.errors.replaceChildren();
  ui.roomTitle.textContent = `Room: ${room}`;
  document.title = `${room} – chatmesh`;
  ui.joinForm.hidden = true;
  ui.chat.hidden = false;
  ui.text.focus();
  start();
});

$('leave').addEventListener('click', leave);

ui.sendForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = ui.text.value;
  if (!text.trim()) return;
  if (!state.client) return;
  // Kept and sent again after a reconnect until its echo arrives (then it is shown).
  state.client.send(state.room, text).catch((err) => err.code !== 'closed' && err.code !== 'left' && showError(`${err.code}: ${err.message}`));
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
