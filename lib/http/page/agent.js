// chatmesh agent inbox: plain JavaScript, no framework, no build step.
// REST (/api/conversations…) for the inbox, history pages, status, assignment and read cursors;
// chatmesh/client (/client.js) for the live part: the inbox feed, messages, typing, read
// receipts, status frames.
// All text from the network or the user is written with textContent, never as HTML.
import { ChatClient } from './client.js';
import { FEED_POLL_MS, POLL_MS, TYPING_SHOWN_MS, api, before, el, inbox, isMine, showError, state, timeOf, ui } from './agent-shared.js';
import { addMessage, applyFields, markRead, openConversation, renderReceipts, renderTyping } from './agent-conversation.js';

// ---- the inbox -------------------------------------------------------------------------
async function loadInbox() {
  const query = new URLSearchParams({ limit: '100' });
  if (state.filter !== 'all') query.set('status', state.filter);
  const asked = ++state.inboxAsked;
  const pushed = (state.pushedMeanwhile = []);
  try {
    const { items } = await api('GET', `/api/conversations?${query}`);
    if (asked !== state.inboxAsked) return; // a later answer is coming (or came): this one is stale
    state.items = items;
    state.pushedMeanwhile = null;
    for (const frame of pushed) applyInboxFrame(frame); // as new as the answer, or newer
    renderInbox();
  } catch (err) {
    if (asked === state.inboxAsked) state.pushedMeanwhile = null;
    if (err.status === 401) return signOut(`The server refused this token (${err.message}): paste another.`);
    showError(`inbox: ${err.message}`);
  }
}

function refreshInboxSoon() {
  if (state.feed === 'live') return; // the feed brings the change
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(loadInbox, 300);
}

// How often the inbox is fetched again: rarely while the feed is live, else every POLL_MS.
function pollEvery(ms) {
  clearInterval(state.pollTimer);
  state.pollTimer = setInterval(loadInbox, ms);
}

function setFeed(feed) {
  state.feed = feed;
  ui.list.dataset.feed = feed;
  pollEvery(feed === 'live' ? FEED_POLL_MS : POLL_MS);
}

// An inbox frame: the feed's answer, or one conversation's item (or its removal).
function onInboxFrame(frame) {
  if (frame.subscribed !== undefined) {
    setFeed(frame.subscribed ? 'live' : 'off');
    if (frame.subscribed) loadInbox(); // what changed while the feed was down
    return;
  }
  state.pushedMeanwhile?.push(frame);
  applyInboxFrame(frame);
  // A flush of the feed brings many items at once: the list is drawn once for them all.
  if (state.renderQueued) return;
  state.renderQueued = true;
  requestAnimationFrame(() => {
    state.renderQueued = false;
    renderInbox();
  });
}

function applyInboxFrame(frame) {
  const id = frame.item?.id ?? frame.removed;
  if (typeof id !== 'string') return;
  state.items = state.items.filter((i) => i.id !== id);
  // An item outside the filter shown leaves the list (or stays out of it).
  if (frame.item && (state.filter === 'all' || frame.item.status === state.filter)) state.items.push(frame.item);
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

inbox.render = renderInbox;
inbox.refreshSoon = refreshInboxSoon;

// ---- the connection ----------------------------------------------------------------------
function connect() {
  const client = new ChatClient({
    urls: [`${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/`],
    ...(state.auth === 'jwt' ? { token: state.token } : { user: state.me }),
  });
  state.client = client;
  client.inbox(); // asked again at every reconnect
  const here = (frame) => state.open !== null && frame.room === state.open.id;
  client.on('state', (s) => {
    if (state.client !== client) return;
    if (s.state === 'open') ui.status.textContent = `Signed in as ${state.me}`;
    if (s.state === 'open' && state.feed !== 'unsupported') setFeed('asked');
    if (s.state === 'reconnecting') ui.status.textContent = 'Disconnected: reconnecting…';
    if (s.state === 'reconnecting' && state.feed !== 'unsupported') setFeed('off');
    if (s.state === 'closed' && (s.code === 4401 || s.code === 4403)) signOut(s.code === 4401 ? 'Your token expired: paste a new one.' : 'Your token was revoked.');
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
  client.on('inbox', onInboxFrame);
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
  client.on('error', (err) => {
    // The feed refused (a server without it, or full): the inbox is polled as before.
    if (state.feed === 'asked' && ['unknown_type', 'too_many_subscribers', 'forbidden'].includes(err.code)) return setFeed(err.code === 'unknown_type' ? 'unsupported' : 'off');
    showError(`${err.code}: ${err.message}`);
  });
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
  ui.errors.replaceChildren();
  connect();
  loadInbox();
  setFeed('asked'); // polled every POLL_MS until the feed answers
}

// Back to the form (a refused, expired or revoked token): nothing keeps polling or reconnecting.
function signOut(reason) {
  clearInterval(state.pollTimer);
  const client = state.client;
  Object.assign(state, { client: null, open: null, items: [], feed: 'off' });
  client?.close();
  ui.desk.hidden = true;
  ui.view.hidden = true;
  ui.placeholder.hidden = false;
  ui.signIn.hidden = false;
  ui.status.textContent = 'Not signed in';
  showError(reason);
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
