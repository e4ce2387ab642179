/**
 * The mesh envelope: after the handshake (lib/links/handshake-frames.ts) every frame on a
 * peer link is a small JSON header, a newline, then the payload exactly as clients receive
 * it. Forwarding rewrites only the header, so a payload is never parsed or re-serialised on
 * its way through the mesh.
 */
import { ID_PATTERN } from '../links/handshake-frames.js';
import { readHeaderLine } from '../links/header-line.js';

/** What a node id (and an event id) looks like; the layers above check ids from peers with it. */
export { ID_PATTERN };

/**
 * Envelope headers after the handshake:
 * - `room`: a live room event (presence), flooded with dedupe and hops;
 * - `typing`: a typing indicator (transient, never stored), sent only to nodes with members
 *   in the room and only to peers that announced `desk` (a node of the previous version
 *   counts an unknown kind as invalid);
 * - `w`: a replicated store write (also delivered live), flooded like `room`, and
 *   acknowledged with `ack` by every peer that got it straight from its origin;
 * - `ack`: that acknowledgement;
 * - `sync`: catch-up between the two ends of one link, never forwarded;
 * - `links`: the ids of the peers the sender is linked to (payload: a JSON array), sent to
 *   every peer whenever that set changes, so peers can skip forwarding to nodes the origin
 *   of an event already sent it to.
 */
export interface FloodHeader {
  t: 'room' | 'w' | 'typing';
  /** Event id, for dedupe. */
  id: string;
  /** Origin node. */
  o: string;
  /** Hops left. */
  h: number;
  /** Room. */
  r: string;
  /** On a write: 1 when the origin waits for acknowledgements. */
  a?: 1;
  /** On a presence event: the origin's connection and its presence-table version. */
  p?: PresenceMeta;
  /** 1: a write only peers that announced `desk` take (never sent to others, nor forwarded to them). */
  d?: 1;
}

/** Both non-negative safe integers: a header with anything else in `p` is malformed. */
export interface PresenceMeta {
  c: number;
  v: number;
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
export interface AckHeader {
  t: 'ack';
  id: string;
}
export interface SyncHeader {
  t: 'sync';
}
export interface LinksHeader {
  t: 'links';
}
export type EnvelopeHeader = FloodHeader | AckHeader | SyncHeader | LinksHeader;

export interface Envelope {
  header: EnvelopeHeader;
  /** The payload, untouched: a view into the received buffer, not a copy. */
  payload: Buffer;
}

/** The header and its newline; the caller appends the payload bytes as they are. */
export function encodeEnvelopeHeader(header: EnvelopeHeader): Buffer {
  return Buffer.from(JSON.stringify(header) + '\n');
}

/** Decodes an envelope; returns null for anything malformed (the caller logs and drops it). */
export function decodeEnvelope(frame: Buffer): Envelope | null {
  const line = readHeaderLine(frame);
  if (line === null || typeof line.header !== 'object' || line.header === null) return null;
  const h = line.header as Record<string, unknown>;
  const payload = frame.subarray(line.bodyAt);
  switch (h.t) {
    case 'room':
    case 'w':
    case 'typing':
      if (typeof h.id !== 'string' || !ID_PATTERN.test(h.id)) return null;
      if (typeof h.o !== 'string' || !ID_PATTERN.test(h.o)) return null;
      if (typeof h.h !== 'number' || !Number.isInteger(h.h)) return null;
      if (typeof h.r !== 'string' || h.r.length === 0) return null;
      let presence = {};
      if (h.p !== undefined) {
        const p = h.p as Record<string, unknown> | null;
        if (typeof p !== 'object' || p === null || !isCount(p.c) || !isCount(p.v)) return null;
        presence = { p: { c: p.c, v: p.v } };
      }
      return { header: { t: h.t, id: h.id, o: h.o, h: h.h, r: h.r, ...(h.a === 1 ? { a: 1 as const } : {}), ...(h.d === 1 ? { d: 1 as const } : {}), ...presence }, payload };
    case 'ack':
      if (typeof h.id !== 'string' || !ID_PATTERN.test(h.id)) return null;
      return { header: { t: 'ack', id: h.id }, payload };
    case 'sync':
      return { header: { t: 'sync' }, payload };
    case 'links':
      return { header: { t: 'links' }, payload };
    default:
      return null;
  }
}
