// chatmesh agent inbox: plain JavaScript, no framework, no build step.
// REST (/api/conversations…) for the inbox, history pages, status, assignment and read cursors;
// chatmesh/client (/client.js) for the live part: messages, typing, read receipts, status frames.
// All text from the network or the user is written with textContent, never as HTML.
import { ChatClient } from './client.js';

const $ = (id) => document.getElementById(id);
const ui = {
  status: $('status'), signIn: $('sign-in'), name: $('name'), nameField: $('name-field'), token: $('token'),
  tokenField: $('token-field'), desk: $('desk'), filters: $('filters'), list: $('conversations'), empty: $('inbox-empty'),
  view: $('conversation'), placeholder: $('placeholder'), title: $('conversation-title'), badge: $('conversation-status'),
  assignee: $('conversation-assignee'), actions: $('actions'), older: $('load-older'), messages: $('messages'),
  typing: $('typing'), receipts: $('receipts'), replyForm: $('reply-form'), reply: $('reply'), errors: $('errors'),
};
const params = new URLSearchParams(location.search);
const PAGE_SIZE = Math.min(200, Math.max(1, Number(params.get('pageSize')) || 50)); // messages per history page
const POLL_MS = 3000; // the inbox is polled: new conversations reach no room this page has joined
const TYPING_SHOWN_MS = 5000; // a typing frame means "for the next 5 s"
const TYPING_EVERY_MS = 2500; // while the agent types, tell the room this often
const SNOOZE_MS = 3600_000;

const state = {
  auth: 'none', token: '', me: '', filter: 'open', items: [], inboxAsked: 0, client: null, pollTimer: 0, refreshTimer: 0,
  open: null, // { id, entries: [{ id, ts, user, li }], prev, readers: Map(user → upTo), typers: Map(user → until), lastRead }
  typingSentAt: 0,
};

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}
const showError = (text) => {
  ui.errors.append(el('li', '', text));
  while (ui.errors.children.length > 5) ui.errors.firstElementChild.remove();
};
const timeOf = (ms) => new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });

async function api(method, path, body) {
  const headers = {};
  if (state.token) headers.authorization = `Bearer ${state.token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const answer = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(`${answer.error?.code ?? res.status}: ${answer.error?.message ?? res.statusText}`);
  return answer;
}
const conversationPath = (id) => `/api/conversations/${encodeURIComponent(id)}`;

// ---- the inbox -------------------------------------------------------------------------
async function loadInbox() {
  const query = new URLSearchParams({ limit: '100' });
  if (state.filter !== 'all') query.set('status', state.filter);
  const asked = ++state.inboxAsked;
  try {
    const { items } = await api('GET', `/api/conversations?${query}`);
    if (asked !== state.inboxAsked) return; // a later answer is coming (or came): this one is stale
    state.items = items;
    renderInbox();
  } catch (err) {
    showError(`inbox: ${err.message}`);
  }
}

function refreshInboxSoon() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(loadInbox, 300);
}

function renderInbox() {
  const items = [...state.items].sort((a, b) => b.updatedAt - a.updatedAt || (a.id < b.id ? -1 : 1));
  ui.list.replaceChildren(...items.map((item) => {
    const li = el('li');
    li.dataset.id = item.id;
    li.dataset.status = item.status;
    if (state.open?.id === item.id) li.setAttribute('aria-current', 'true');
    const button = el('button');
    button.type = 'button';
    const top = el('div', 'row');
    top.append(el('span', 'cid', item.id), el('span', `badge ${item.status}`, item.status));
    if (item.unread) top.append(el('span', 'unread', String(item.unread)));
    top.append(el('span', 'when', timeOf(item.updatedAt)));
    const last = item.lastMessage;
    const preview = el('div', 'preview', last ? `${last.sender}: ${last.content}` : 'no messages yet');
    const who = el('div', 'assignee', item.assignee ? `assigned to ${item.assignee}` : 'unassigned');
    button.append(top, preview, who);
    button.addEventListener('click', () => openConversation(item.id));
    li.append(button);
    return li;
  }));
  ui.empty.hidden = items.length > 0;
}

ui.filters.addEventListener('click', (event) => {
  const filter = event.target.closest('button')?.dataset.filter;
  if (!filter) return;
  state.filter = filter;
  for (const b of ui.filters.querySelectorAll('button')) b.setAttribute('aria-pressed', String(b.dataset.filter === filter));
  loadInbox();
});

// ---- one conversation ------------------------------------------------------------------
const fromRest = (m) => ({ id: m.id, user: m.sender, text: m.content, ts: m.timestamp, by: m.author, editedAt: m.editedAt });
const isMine = (m) => m.by === state.me || m.user === state.me;

async function openConversation(id) {
  const previous = state.open;
  if (previous?.id === id) return;
  if (previous) state.client.leave(previous.id).catch(() => {});
  const open = { id, entries: [], prev: null, readers: new Map(), typers: new Map(), lastRead: '' };
  state.open = open;
  ui.messages.replaceChildren();
  ui.typing.textContent = '';
  ui.receipts.textContent = '';
  ui.title.textContent = id;
  ui.view.hidden = false;
  ui.placeholder.hidden = true;
  const item = state.items.find((i) => i.id === id);
  if (item) showFields(item);
  renderInbox();
  try {
    const page = await api('GET', `${conversationPath(id)}?limit=${PAGE_SIZE}`);
    if (state.open !== open) return;
    for (const m of page.messages) addMessage(fromRest(m));
    setPrev(page.prev);
    ui.messages.scrollTop = ui.messages.scrollHeight;
    // Live from the newest message shown on: the join's history holds only what came after it.
    const last = open.entries.at(-1);
    await state.client.join(id, last ? { since: last.id } : {});
    markRead();
  } catch (err) {
    showError(`${id}: ${err.message ?? err.code}`);
  }
}

function setPrev(prev) {
  state.open.prev = prev ?? null;
  ui.older.hidden = state.open.prev === null;
}

ui.older.addEventListener('click', async () => {
  const open = state.open;
  if (!open?.prev) return;
  ui.older.disabled = true;
  try {
    const page = await api('GET', `${conversationPath(open.id)}?limit=${PAGE_SIZE}&before=${encodeURIComponent(open.prev)}`);
    if (state.open !== open) return;
    const height = ui.messages.scrollHeight;
    for (const m of page.messages) addMessage(fromRest(m));
    ui.messages.scrollTop += ui.messages.scrollHeight - height; // keep what was in view where it was
    setPrev(page.prev);
  } catch (err) {
    showError(`older messages: ${err.message}`);
  } finally {
    ui.older.disabled = false;
  }
});

const before = (a, b) => a.ts < b.ts || (a.ts === b.ts && a.id < b.id);

// Messages come from history pages and live frames: each shown once, in (ts, id) order.
function addMessage(m) {
  const open = state.open;
  if (open.entries.some((e) => e.id === m.id)) return;
  const li = el('li', isMine(m) ? 'message mine' : 'message');
  li.dataset.id = m.id;
  const time = el('time', '', timeOf(m.ts));
  time.dateTime = new Date(m.ts).toISOString();
  li.append(el('span', 'user', String(m.user)), ' ', time, ' ', el('span', 'text', String(m.text)));
  if (m.editedAt) li.append(el('span', 'edited', '(edited)'));
  const entry = { id: m.id, ts: Number(m.ts) || 0, user: m.user, li };
  let i = open.entries.length;
  while (i > 0 && before(entry, open.entries[i - 1])) i -= 1;
  const next = open.entries[i];
  open.entries.splice(i, 0, entry);
  ui.messages.insertBefore(li, next ? next.li : null);
  open.typers.delete(m.user); // a message ends its sender's typing
  renderTyping();
  renderReceipts();
}

function showFields(c) {
  ui.badge.textContent = c.status === 'snoozed' && c.snoozedUntil ? `snoozed until ${timeOf(c.snoozedUntil)}` : c.status;
  ui.badge.className = `badge ${c.status}`;
  ui.badge.dataset.status = c.status;
  ui.assignee.textContent = c.assignee ? `assigned to ${c.assignee}` : 'unassigned';
  for (const b of ui.actions.querySelectorAll('[data-status]')) b.disabled = b.dataset.status === c.status;
  $('assign-me').disabled = c.assignee === state.me;
  $('unassign').disabled = c.assignee === null;
}

// A status or assignment (from our PATCH or another agent's, as a conversation frame).
function applyFields(c) {
  const item = state.items.find((i) => i.id === c.id);
  if (item) Object.assign(item, { status: c.status, snoozedUntil: c.snoozedUntil, assignee: c.assignee, updatedAt: c.updatedAt });
  if (state.open?.id === c.id) showFields(c);
  renderInbox();
  refreshInboxSoon(); // it may have left (or entered) the filtered list
}

async function patch(change) {
  const id = state.open?.id;
  if (!id) return;
  try {
    applyFields(await api('PATCH', conversationPath(id), change));
  } catch (err) {
    showError(`${id}: ${err.message}`);
  }
}
ui.actions.addEventListener('click', (event) => {
  const status = event.target.closest('button')?.dataset.status;
  if (status === 'snoozed') patch({ status, snoozedUntil: Date.now() + SNOOZE_MS });
  else if (status) patch({ status });
});
$('assign-me').addEventListener('click', () => patch({ assignee: state.me }));
$('unassign').addEventListener('click', () => patch({ assignee: null }));

// The read cursor follows what is shown: the newest message, once the page is visible.
async function markRead() {
  const open = state.open;
  const last = open?.entries.at(-1);
  if (!last || last.id === open.lastRead || document.visibilityState !== 'visible') return;
  open.lastRead = last.id;
  try {
    await api('POST', `${conversationPath(open.id)}/read`, state.auth === 'jwt' ? { upTo: last.id } : { upTo: last.id, user: state.me });
    const item = state.items.find((i) => i.id === open.id);
    if (item && item.unread) {
      item.unread = 0;
      renderInbox();
    }
  } catch (err) {
    showError(`read: ${err.message}`);
  }
}
document.addEventListener('visibilitychange', markRead);

function renderReceipts() {
  const open = state.open;
  for (const seen of ui.messages.querySelectorAll('.seen')) seen.remove();
  const lines = [];
  for (const [user, upTo] of open.readers) {
    const entry = open.entries.find((e) => e.id === upTo);
    if (entry) entry.li.append(el('span', 'seen', `✓ read by ${user}`));
    lines.push(entry ? `Read by ${user} up to ${timeOf(entry.ts)}` : `Read by ${user}`);
  }
  ui.receipts.textContent = lines.join(' · ');
}

function renderTyping() {
  const now = Date.now();
  const users = [...state.open.typers].filter(([, until]) => until > now).map(([user]) => user);
  ui.typing.textContent = users.length ? `${users.join(', ')} ${users.length > 1 ? 'are' : 'is'} typing…` : '';
}

ui.reply.addEventListener('input', () => {
  if (!state.open || !ui.reply.value.trim() || Date.now() - state.typingSentAt < TYPING_EVERY_MS) return;
  if (state.client.typing(state.open.id)) state.typingSentAt = Date.now();
});

ui.replyForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = ui.reply.value;
  if (!text.trim() || !state.open) return;
  // Kept and sent again after a reconnect until its echo arrives (then it is shown).
  state.client.send(state.open.id, text).catch((err) => err.code !== 'left' && err.code !== 'closed' && showError(`${err.code}: ${err.message}`));
  ui.reply.value = '';
  state.typingSentAt = 0;
});

// ---- the connection ----------------------------------------------------------------------
function connect() {
  const client = new ChatClient({
    urls: [`${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/`],
    ...(state.auth === 'jwt' ? { token: state.token } : { user: state.me }),
  });
  state.client = client;
  const here = (frame) => state.open !== null && frame.room === state.open.id;
  client.on('state', (s) => {
    if (s.state === 'open') ui.status.textContent = `Signed in as ${state.me}`;
    if (s.state === 'reconnecting') ui.status.textContent = 'Disconnected: reconnecting…';
    if (s.state === 'closed' && (s.code === 4401 || s.code === 4403)) showError(s.code === 4401 ? 'Your token expired: reload with a new one.' : 'Your token was revoked.');
  });
  client.on('message', (m) => {
    // A resume also replays messages from just before `since` (the client dedupes by id): one
    // older than the oldest shown waits for "Load older", which pages by position.
    const older = state.open?.prev && state.open.entries.length > 0 && before(m, state.open.entries[0]);
    if (here(m) && !older) {
      const atBottom = ui.messages.scrollHeight - ui.messages.scrollTop - ui.messages.clientHeight < 60;
      addMessage(m);
      if (atBottom || isMine(m)) ui.messages.scrollTop = ui.messages.scrollHeight;
      markRead();
    }
    const item = state.items.find((i) => i.id === m.room);
    if (item && m.ts >= (item.lastMessage?.timestamp ?? 0)) {
      Object.assign(item, { lastMessage: { id: m.id, sender: m.user, content: m.text.slice(0, 200), timestamp: m.ts }, updatedAt: Math.max(item.updatedAt, m.ts) });
      renderInbox();
    }
    refreshInboxSoon();
  });
  client.on('conversation', applyFields);
  client.on('typing', (frame) => {
    if (!here(frame) || frame.user === state.me) return;
    state.open.typers.set(frame.user, Date.now() + TYPING_SHOWN_MS);
    renderTyping();
    setTimeout(() => state.open && renderTyping(), TYPING_SHOWN_MS + 50);
  });
  client.on('read', (frame) => {
    if (!here(frame) || frame.user === state.me) return;
    state.open.readers.set(frame.user, frame.upTo);
    renderReceipts();
  });
  client.on('edited', (frame) => {
    const entry = here(frame) && state.open.entries.find((e) => e.id === frame.id);
    if (!entry) return;
    entry.li.querySelector('.text').textContent = frame.text;
    if (!entry.li.querySelector('.edited')) entry.li.append(el('span', 'edited', '(edited)'));
  });
  client.on('deleted', (frame) => {
    const i = here(frame) ? state.open.entries.findIndex((e) => e.id === frame.id) : -1;
    if (i !== -1) state.open.entries.splice(i, 1)[0].li.remove();
  });
  client.on('error', (err) => showError(`${err.code}: ${err.message}`));
  client.connect();
}

// The token's subject is this agent's id (for "assign to me"); the server checks the token.
function subjectOf(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return String(JSON.parse(atob(part.padEnd(Math.ceil(part.length / 4) * 4, '='))).sub ?? '');
  } catch {
    return '';
  }
}

function signIn() {
  state.token = state.auth === 'jwt' ? ui.token.value.trim() : '';
  state.me = state.auth === 'jwt' ? subjectOf(state.token) : ui.name.value.trim();
  if (!state.me) return showError(state.auth === 'jwt' ? 'Paste an agent token.' : 'Type your agent name.');
  ui.signIn.hidden = true;
  ui.desk.hidden = false;
  ui.status.textContent = `Signed in as ${state.me}`;
  connect();
  loadInbox();
  state.pollTimer = setInterval(loadInbox, POLL_MS);
}

ui.signIn.addEventListener('submit', (event) => {
  event.preventDefault();
  signIn();
});

// A token may come in the fragment (#token=…): never sent to the server in a URL, and taken
// out of the address bar so it is not bookmarked or shared.
const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
if (fromHash) {
  ui.token.value = fromHash.trim();
  history.replaceState(null, '', location.pathname + location.search);
}
fetch('/health')
  .then((res) => res.json())
  .then((health) => {
    if (health.auth !== 'jwt') return;
    state.auth = 'jwt';
    ui.tokenField.hidden = false;
    ui.nameField.hidden = true;
    if (fromHash) signIn();
  })
  .catch(() => showError('/health did not answer: is the server up?'));
