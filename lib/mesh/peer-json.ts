/** A peer frame's JSON payload, or null when it is not JSON (the caller counts it invalid). */
export function parsePeerJson(payload: Buffer): unknown {
  try {
    return JSON.parse(payload.toString());
  } catch {
    return null;
  }
}
