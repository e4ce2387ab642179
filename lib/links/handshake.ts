/**
 * The peer handshake, both roles. See handshake-frames.ts for the frames.
 *
 * Completion is reported through a callback, synchronously from the frame that completes
 * it, so the caller attaches its own listeners before ws can emit the next frame (ws may
 * emit several frames from one chunk in the same tick).
 */
import type { WebSocket, RawData } from 'ws';
import { CloseCode } from '../errors.js';
import { newNonce, proofFor, proofMatches } from './auth.js';
import {
  DESK_FEATURE,
  BATCH_FEATURE,
  DIALER_FIRST,
  PEER_PROTOCOL_VERSION,
  decodeHandshake,
  type AuthFrame,
  type HelloFrame,
  type ReadyFrame,
  type WelcomeFrame,
} from './handshake-frames.js';

export interface HandshakeContext {
  nodeId: string;
  incarnation: string;
  /** The port this node takes peer links on, told to the acceptor so it can name us. */
  meshPort: number;
  secret: string | undefined;
  timeoutMs: number;
  /**
   * The nonces of this node's dials under way, true once this node's own acceptor got that
   * hello: then the 4004 the dial gets is this node's own finding (it dialled itself), not
   * a peer's word. Only such a finding drops a dial target for good.
   */
  ownDials: Map<string, boolean>;
}

export interface PeerIdentity {
  id: string;
  incarnation: string;
  /** The peer's own mesh port (acceptor side: from its hello). */
  port: number;
  /** The peer announced DESK_FEATURE. */
  desk: boolean;
  /** The peer announced BATCH_FEATURE. */
  batch: boolean;
}

export class HandshakeError extends Error {
  constructor(
    /** CloseCode (or a ws close code the peer sent). */
    readonly closeCode: number,
    message: string,
    /**
     * True when the peer refused us; false when we refused the peer or the transport failed.
     * For CloseCode.Self: false only when this node found that it dialled itself.
     */
    readonly byPeer: boolean,
    /** What the peer said of itself before the failure, if anything. */
    readonly claimed?: { id?: string; port?: number },
  ) {
    super(message);
    this.name = 'HandshakeError';
  }
}

export type HandshakeDone = (err: HandshakeError | null, peer?: PeerIdentity) => void;

/** Runs the dialer's side on a socket that is connecting or open. */
export function dialerHandshake(ws: WebSocket, ctx: HandshakeContext, done: HandshakeDone): void {
  const nonce = newNonce();
  let welcome: WelcomeFrame | null = null;
  ctx.ownDials.set(nonce, false);
  const session = guard(ws, ctx, (err, peer) => {
    const reachedItself = ctx.ownDials.get(nonce) === true;
    ctx.ownDials.delete(nonce);
    // A 4004 is this node's finding (byPeer false) only when its own acceptor got this very
    // hello; a close with 4004, or a welcome with our id, from anything else is the peer's word.
    if (err?.closeCode === CloseCode.Self && err.byPeer === reachedItself) {
      return done(new HandshakeError(CloseCode.Self, err.message, !reachedItself, err.claimed));
    }
    done(err, peer);
  });

  const sendHello = () => {
    const hello: HelloFrame = { t: 'hello', v: PEER_PROTOCOL_VERSION, id: ctx.nodeId, inc: ctx.incarnation, port: ctx.meshPort, nonce, df: DIALER_FIRST, desk: DESK_FEATURE, batch: BATCH_FEATURE };
    ws.send(JSON.stringify(hello));
  };
  if (ws.readyState === ws.OPEN) sendHello();
  else ws.once('open', sendHello);

  /** Does `proof` answer our nonce as the acceptor `acceptorId` would, knowing the secret? */
  const acceptorProved = (proof: string | undefined, acceptorId: string) =>
    ctx.secret === undefined || proofMatches(proofFor(ctx.secret, 'acceptor', nonce, acceptorId, ctx.nodeId), proof ?? '');

  session.onFrame = (text) => {
    if (welcome === null) {
      const w = decodeHandshake<WelcomeFrame>(text, 'welcome');
      if (!w) return session.fail(CloseCode.HandshakeFailed, 'expected a welcome frame');
      if (w.v !== PEER_PROTOCOL_VERSION) return session.fail(CloseCode.VersionMismatch, `peer speaks protocol ${w.v}, not ${PEER_PROTOCOL_VERSION}`);
      if (w.id === ctx.nodeId) return session.fail(CloseCode.Self, 'the peer claims this node\'s own id');
      session.claim({ id: w.id });
      // An acceptor of the previous version proves itself first: check it before proving ourselves.
      if (w.df !== DIALER_FIRST && !acceptorProved(w.proof, w.id)) {
        return session.fail(CloseCode.Rejected, 'peer failed authentication (MESH_SECRET differs)');
      }
      welcome = w;
      const auth: AuthFrame = { t: 'auth', proof: proofFor(ctx.secret, 'dialer', w.nonce, ctx.nodeId, w.id) };
      ws.send(JSON.stringify(auth));
      return;
    }
    const ready = decodeHandshake<ReadyFrame>(text, 'ready');
    if (!ready) return session.fail(CloseCode.HandshakeFailed, 'expected a ready frame');
    if (welcome.df === DIALER_FIRST && !acceptorProved(ready.proof, welcome.id)) {
      return session.fail(CloseCode.Rejected, 'peer failed authentication (MESH_SECRET differs)');
    }
    session.succeed({ id: welcome.id, incarnation: welcome.inc, port: 0, desk: welcome.desk === DESK_FEATURE, batch: welcome.batch === BATCH_FEATURE });
  };
}

/** Why a dialer of the previous version is refused when MESH_SECRET is set (at most 123 bytes). */
export const OLD_DIALER_REFUSED = 'old handshake (acceptor proves first) refused as MESH_SECRET is set: upgrade the dialer (our own dials still link)';

/**
 * Runs the acceptor's side. `allowed` is false when the connection may not become a link
 * (no secret and not from loopback): the hello is still read, so the refusal can name the peer.
 */
export function acceptorHandshake(ws: WebSocket, ctx: HandshakeContext, allowed: boolean, done: HandshakeDone): void {
  const nonce = newNonce();
  let hello: HelloFrame | null = null;
  const session = guard(ws, ctx, done);

  session.onFrame = (text) => {
    if (hello === null) {
      const h = decodeHandshake<HelloFrame>(text, 'hello');
      if (!h) return session.fail(CloseCode.HandshakeFailed, 'expected a hello frame');
      const claimed = { id: h.id, port: h.port };
      // Remembered from here on, so a refusal by either side can name the peer.
      session.claim(claimed);
      if (h.v !== PEER_PROTOCOL_VERSION) return session.fail(CloseCode.VersionMismatch, `peer speaks protocol ${h.v}, not ${PEER_PROTOCOL_VERSION}`, claimed);
      if (h.id === ctx.nodeId) {
        // Our own dial (this node reached itself), or someone claiming our id: either way, 4004.
        if (ctx.ownDials.has(h.nonce)) ctx.ownDials.set(h.nonce, true);
        return session.fail(CloseCode.Self, 'this address is this node itself', claimed);
      }
      if (!allowed) return session.fail(CloseCode.Rejected, 'MESH_SECRET is not set: only peers on loopback are accepted', claimed);
      const dialerFirst = h.df === DIALER_FIRST;
      // Proving first to whoever connects would hand out an HMAC over a nonce they chose, to
      // guess the secret from offline. Without a secret there are no proofs: the old order is safe.
      if (!dialerFirst && ctx.secret !== undefined) return session.fail(CloseCode.VersionMismatch, OLD_DIALER_REFUSED, claimed);
      hello = h;
      const base = { t: 'welcome', v: PEER_PROTOCOL_VERSION, id: ctx.nodeId, inc: ctx.incarnation, nonce, desk: DESK_FEATURE, batch: BATCH_FEATURE } as const;
      const welcome: WelcomeFrame = dialerFirst ? { ...base, df: DIALER_FIRST } : { ...base, proof: '' };
      ws.send(JSON.stringify(welcome));
      return;
    }
    const auth = decodeHandshake<AuthFrame>(text, 'auth');
    const claimed = { id: hello.id, port: hello.port };
    if (!auth) return session.fail(CloseCode.HandshakeFailed, 'expected an auth frame', claimed);
    if (ctx.secret !== undefined && !proofMatches(proofFor(ctx.secret, 'dialer', nonce, hello.id, ctx.nodeId), auth.proof)) {
      return session.fail(CloseCode.Rejected, 'peer failed authentication (MESH_SECRET differs)', claimed);
    }
    // The dialer proved itself: now prove ourselves, over its nonce (the previous order: nothing more).
    const ready: ReadyFrame = hello.df === DIALER_FIRST ? { t: 'ready', proof: proofFor(ctx.secret, 'acceptor', hello.nonce, ctx.nodeId, hello.id) } : { t: 'ready' };
    ws.send(JSON.stringify(ready));
    session.succeed({ id: hello.id, incarnation: hello.inc, port: hello.port, desk: hello.desk === DESK_FEATURE, batch: hello.batch === BATCH_FEATURE });
  };
}

interface Session {
  onFrame: (text: string) => void;
  /** What the peer said of itself, reported with any later failure. */
  claim(claimed: { id?: string; port?: number }): void;
  fail(code: number, message: string, claimed?: { id?: string; port?: number }): void;
  succeed(peer: PeerIdentity): void;
}

/** The parts both roles share: the deadline, close and error handling, and exactly one outcome. */
function guard(ws: WebSocket, ctx: HandshakeContext, done: HandshakeDone): Session {
  let finished = false;
  let lastClaimed: { id?: string; port?: number } | undefined;
  const finish = (err: HandshakeError | null, peer?: PeerIdentity) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    ws.off('message', onMessage);
    ws.off('close', onClose);
    // The error listener stays for the socket's whole life: terminate() on a socket that is
    // still connecting emits 'error' on the next tick, and an 'error' nobody hears is a crash.
    done(err, peer);
  };
  const session: Session = {
    onFrame: () => {},
    claim(claimed) {
      lastClaimed = claimed;
    },
    fail(code, message, claimed) {
      lastClaimed = claimed ?? lastClaimed;
      // The reason travels to the peer so its log says why; ws caps it at 123 bytes.
      if (ws.readyState === ws.OPEN) ws.close(code, Buffer.from(message).subarray(0, 123).toString());
      else ws.terminate();
      finish(new HandshakeError(code, message, false, lastClaimed));
    },
    succeed(peer) {
      finish(null, peer);
    },
  };
  const onMessage = (data: RawData, isBinary: boolean) => {
    if (isBinary) return session.fail(CloseCode.HandshakeFailed, 'binary frame during handshake');
    session.onFrame(data.toString());
  };
  const onClose = (code: number, reason: Buffer) => {
    finish(new HandshakeError(code, reason.toString() || `closed during handshake (${code})`, true, lastClaimed));
  };
  const onError = (err: Error) => {
    if (finished) return;
    // ws may have begun a close of its own (1009 for a frame over the limit): let that frame
    // go out, and cut the socket a moment later if the peer does not answer it.
    if (ws.readyState === ws.CLOSING) setTimeout(() => ws.terminate(), 1000).unref();
    else ws.terminate();
    finish(new HandshakeError(CloseCode.HandshakeFailed, err.message, false, lastClaimed));
  };
  const timer = setTimeout(() => session.fail(CloseCode.HandshakeFailed, 'handshake timed out'), ctx.timeoutMs);
  ws.on('message', onMessage);
  ws.on('close', onClose);
  ws.on('error', onError);
  return session;
}
