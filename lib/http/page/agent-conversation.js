// chatmesh agent inbox: one conversation (history pages, live messages, status and
// assignment, read receipts, typing, the reply). All text is written with textContent.
import { $, SNOOZE_MS, PAGE_SIZE, TYPING_EVERY_MS, api, before, conversationPath, el, inbox, isMine, showError, state, timeOf, ui } from './agent-shared.js';

// ---- one conversation ------------------------------------------------------------------
const fromRest = (m) => ({ id: m.id, user: m.sender, text: m.content, ts: m.timestamp, by: m.author, editedAt: m.editedAt });

export async function openConversation(id) {
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
  inbox.render();
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


// Messages come from history pages and live frames: each shown once, in (ts, id) order.
export function addMessage(m) {
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
export function applyFields(c) {
  const item = state.items.find((i) => i.id === c.id);
  if (item) Object.assign(item, { status: c.status, snoozedUntil: c.snoozedUntil, assignee: c.assignee, updatedAt: c.updatedAt });
  if (state.open?.id === c.id) showFields(c);
  inbox.render();
  inbox.refreshSoon(); // it may have left (or entered) the filtered list
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
export async function markRead() {
  const open = state.open;
  const last = open?.entries.at(-1);
  if (!last || last.id === open.lastRead || document.visibilityState !== 'visible') return;
  open.lastRead = last.id;
  try {
    await api('POST', `${conversationPath(open.id)}/read`, state.auth === 'jwt' ? { upTo: last.id } : { upTo: last.id, user: state.me });
    const item = state.items.find((i) => i.id === open.id);
    if (item && item.unread) {
      item.unread = 0;
      inbox.render();
    }
  } catch (err) {
    showError(`read: ${err.message}`);
  }
}
document.addEventListener('visibilitychange', markRead);

export function renderReceipts() {
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

export function renderTyping() {
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
