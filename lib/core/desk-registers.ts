/**
 * Applying the desk's writes (desk-writes.ts) to a conversation: each register keeps only its
 * winning write, and only the winner's id is in the conversation's digest (the old winner is
 * toggled out, the new one in), so two nodes with the same winners have the same digest
 * whatever writes they saw on the way. A write that loses to the one held is `duplicate`:
 * what it would say is already superseded here.
 */
import type { EditedWrite, FieldWrite, ReadWrite } from './desk-writes.js';
import { compare, registerBytes, showEdit, toggle, type ApplyResult, type Conversation } from './conversation.js';

/** Replaces a register's winner: digest and bytes follow. */
function replace<W extends FieldWrite | ReadWrite | EditedWrite>(conv: Conversation, prefix: string, held: W | undefined, next: W): void {
  if (held !== undefined) {
    toggle(conv, prefix + held.id, true);
    conv.bytes -= registerBytes(held);
  }
  toggle(conv, prefix + next.id, true);
  conv.bytes += registerBytes(next);
}

/** status, assignee, metadata: the larger id wins. */
export function applyField(conv: Conversation, write: FieldWrite): ApplyResult {
  const held = conv.fields.get(write.f);
  if (held !== undefined && held.id >= write.id) return 'duplicate';
  replace(conv, 'f:', held, write);
  conv.fields.set(write.f, write);
  return 'applied';
}

/** The cursor only moves forward: the larger (at, upTo) wins, then the larger id. */
export function applyRead(conv: Conversation, write: ReadWrite): ApplyResult {
  const held = conv.reads.get(write.user);
  if (held !== undefined && readOrder(held, write) >= 0) return 'duplicate';
  replace(conv, 'r:', held, write);
  conv.reads.set(write.user, write);
  return 'applied';
}

function readOrder(a: ReadWrite, b: ReadWrite): number {
  const place = compare({ timestamp: a.at, id: a.upTo }, { timestamp: b.at, id: b.upTo });
  if (place !== 0) return place;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * A message's text: the larger id wins; a deleted message stays deleted. An edit of a
 * message older than everything a full conversation keeps is moot (as a delete would be).
 */
export function applyEdit(conv: Conversation, write: EditedWrite, max: number): ApplyResult {
  const held = conv.edits.get(write.msg);
  if (held !== undefined && held.id >= write.id) return 'duplicate';
  if (conv.messages.length >= max && !conv.byId.has(write.msg) && compare({ timestamp: write.ts, id: write.msg }, conv.messages[0]) < 0) return 'ignored';
  replace(conv, 'e:', held, write);
  conv.edits.set(write.msg, write);
  const entry = conv.byId.get(write.msg);
  if (entry !== undefined && !entry.deleted) {
    conv.bytes += 2 * (write.text.length - entry.content.length);
    showEdit(entry, write);
  }
  return 'applied';
}

/** The ids of every register's winner, prefixed by kind (as in the digest). */
export function registerIds(conv: Conversation): string[] {
  const out: string[] = [];
  for (const w of conv.fields.values()) out.push('f:' + w.id);
  for (const w of conv.reads.values()) out.push('r:' + w.id);
  for (const w of conv.edits.values()) out.push('e:' + w.id);
  return out;
}

/** The winners a peer holding `theirIds` lacks. */
export function registersMissingFrom(conv: Conversation, theirIds: ReadonlySet<string>): Array<FieldWrite | ReadWrite | EditedWrite> {
  const out: Array<FieldWrite | ReadWrite | EditedWrite> = [];
  for (const w of conv.fields.values()) if (!theirIds.has('f:' + w.id)) out.push(w);
  for (const w of conv.reads.values()) if (!theirIds.has('r:' + w.id)) out.push(w);
  for (const w of conv.edits.values()) if (!theirIds.has('e:' + w.id)) out.push(w);
  return out;
}
