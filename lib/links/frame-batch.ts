/**
 * Several peer frames in one WebSocket frame. Under load a node sends a peer many small
 * frames per event-loop turn (a write per message); sent one by one, each costs a frame, a
 * syscall on this side and a frame parse on the other. A link whose peer announced
 * BATCH_FEATURE gets the frames of one task (peer-link.ts) as one frame instead:
 *   {"t":"batch","l":[len1,len2,...]}\n<frame 1><frame 2>...
 * the byte length of each frame, then the frames as they are. Lengths, not separators: a
 * frame's bytes (a payload forwarded from another peer) may hold anything.
 * A node that did not announce it is never sent one (it would count it an unknown kind).
 */
import { readHeaderLine } from './header-line.js';

/** The most bytes one batch carries: well under any peer's frame limit (MAX_PEER_PAYLOAD_BYTES, 1 MiB by default). */
export const MAX_BATCH_BYTES = 64 * 1024;
/** The most frames one batch may carry (a peer's batch with more is malformed). */
export const MAX_BATCH_FRAMES = 4096;

const PREFIX = Buffer.from('{"t":"batch","l":[');

/** One frame holding `frames` (two or more). */
export function encodeBatch(frames: Buffer[]): Buffer {
  let lengths = '';
  for (const frame of frames) lengths += (lengths === '' ? '' : ',') + frame.length;
  return Buffer.concat([PREFIX, Buffer.from(lengths + ']}\n'), ...frames]);
}

/**
 * The frames to send for `frames` (in order): consecutive frames grouped into batches of at
 * most MAX_BATCH_BYTES and MAX_BATCH_FRAMES; a frame alone (a big one) goes as it is.
 */
export function batchFrames(frames: Buffer[]): Buffer[] {
  if (frames.length === 1) return frames;
  const out: Buffer[] = [];
  let group: Buffer[] = [];
  let bytes = 0;
  const close = () => {
    if (group.length > 0) out.push(group.length === 1 ? group[0] : encodeBatch(group));
    group = [];
    bytes = 0;
  };
  for (const frame of frames) {
    if (group.length > 0 && (bytes + frame.length > MAX_BATCH_BYTES || group.length >= MAX_BATCH_FRAMES)) close();
    group.push(frame);
    bytes += frame.length;
  }
  close();
  return out;
}

/** Whether a received frame is a batch (it may still be malformed). */
export function isBatch(data: Buffer): boolean {
  return data.length > PREFIX.length && data.compare(PREFIX, 0, PREFIX.length, 0, PREFIX.length) === 0;
}

/**
 * The frames of a batch, as views into `data` (no copy); null when it is malformed (lengths
 * that are not positive integers, too many, or that do not add up to the bytes that follow).
 */
export function decodeBatch(data: Buffer): Buffer[] | null {
  const line = readHeaderLine(data);
  if (line === null || typeof line.header !== 'object' || line.header === null) return null;
  const lengths = (line.header as { l?: unknown }).l;
  if (!Array.isArray(lengths) || lengths.length === 0 || lengths.length > MAX_BATCH_FRAMES) return null;
  const frames: Buffer[] = [];
  let at = line.bodyAt;
  for (const length of lengths) {
    if (!Number.isSafeInteger(length) || length < 1 || at + length > data.length) return null;
    frames.push(data.subarray(at, at + length));
    at += length;
  }
  return at === data.length ? frames : null;
}
