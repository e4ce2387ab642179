/**
 * Frames on a peer link start with a JSON header line: the envelope's (lib/mesh/envelope.ts)
 * and a batch's (frame-batch.ts). One reader for both.
 */
const NEWLINE = 0x0a;

/** The JSON header of a frame and where the bytes after its newline start; null when there is no newline or the line is not JSON. */
export function readHeaderLine(frame: Buffer): { header: unknown; bodyAt: number } | null {
  const newline = frame.indexOf(NEWLINE);
  if (newline === -1) return null;
  try {
    return { header: JSON.parse(frame.toString('utf8', 0, newline)), bodyAt: newline + 1 };
  } catch {
    return null;
  }
}
