// chatmesh agent inbox: what agent.js and agent-conversation.js share (the page's elements,
// its state, REST calls). Plain JavaScript modules, no build step.

export const $ = (id) => document.getElementById(id);
export const ui = {
  status: $('status'), signIn: $('sign-in'), name: $('name'), nameField: $('name-field'), token: $('token'),
  tokenField: $('token-field'), desk: $('desk'), filters: $('filters'), list: $('conversations'), empty: $('inbox-empty'),
  view: $('conversation'), placeholder: $('placeholder'), title: $('conversation-title'), badge: $('conversation-status'),
  assignee: $('conversation-assignee'), actions: $('actions'), older: $('load-older'), messages: $('messages'),
  typing: $('typing'), receipts: $('receipts'), replyForm: $('reply-form'), reply: $('reply'), errors: $('errors'),
};
export const params = new URLSearchParams(location.search);
export const PAGE_SIZE = Math.min(200, Math.max(1, Number(params.get('pageSize')) || 50)); // messages per history page
// The inbox feed (a WebSocket frame per changed conversation) keeps the list current; the inbox
// is also fetched again, rarely while the feed is live, and often without it (a server without
// the feed, or while the connection is down): new conversations reach no room this page joined.
export const FEED_POLL_MS = 30_000;
export const POLL_MS = 3000;
export const TYPING_SHOWN_MS = 5000; // a typing frame means "for the next 5 s"
export const TYPING_EVERY_MS = 2500; // while the agent types, tell the room this often
export const SNOOZE_MS = 3600_000;

export const state = {
  auth: 'none', token: '', me: '', filter: 'open', items: [], inboxAsked: 0, client: null, pollTimer: 0, refreshTimer: 0,
  feed: 'off', // the inbox feed: 'asked', 'live', 'off' or 'unsupported' (by the server); but live, polled every POLL_MS
  pushedMeanwhile: null, // inbox frames that came while an inbox fetch was under way (applied again on its answer)
  renderQueued: false, // the inbox is drawn at the next animation frame
  open: null, // { id, entries: [{ id, ts, user, li }], prev, readers: Map(user → upTo), typers: Map(user → until), lastRead }
  typingSentAt: 0,
};

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}
export const showError = (text) => {
  ui.errors.append(el('li', '', text));
  while (ui.errors.children.length > 5) ui.errors.firstElementChild.remove();
};
export const timeOf = (ms) => new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });

export async function api(method, path, body) {
  const headers = {};
  if (state.token) headers.authorization = `Bearer ${state.token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const answer = await res.json().catch(() => ({}));
  if (!res.ok) throw Object.assign(new Error(`${answer.error?.code ?? res.status}: ${answer.error?.message ?? res.statusText}`), { status: res.status });
  return answer;
}
export const conversationPath = (id) => `/api/conversations/${encodeURIComponent(id)}`;

/** Set by agent.js: redraw the inbox now, or fetch it again shortly. */
export const inbox = { render: () => {}, refreshSoon: () => {} };

export const before = (a, b) => a.ts < b.ts || (a.ts === b.ts && a.id < b.id);
export const isMine = (m) => m.by === state.me || m.user === state.me;
