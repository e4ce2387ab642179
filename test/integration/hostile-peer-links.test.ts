/**
 * Hostile peers on real processes: a peer (or anything that reaches /_mesh) is validated like
 * a client, cannot break the node's clock, cannot take over ids or addresses, cannot use a
 * browser page as a door, and cannot make catch-up of presence fail by its size.
 */
import { expect } from 'chai';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { WebSocketServer } from 'ws';
import { FakePeer } from '../helpers/fake-peer.js';
import { Instance, freePort, stopAll } from '../helpers/instance.js';
import { ClientPool, fullMesh } from '../helpers/mesh.js';
import { poll, withTimeout } from '../helpers/wait.js';

const clients = new ClientPool();
const servers: http.Server[] = [];

afterEach(async () => {
  FakePeer.closeAll();
  await clients.closeAll();
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    s.close();
  }
  await stopAll();
});

/** Sends a raw HTTP upgrade to /_mesh and returns the status line. */
async function meshUpgradeStatus(instance: Instance, extraHeaders: string[] = [], port = instance.port): Promise<string> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write(
    [
      'GET /_mesh HTTP/1.1',
      `Host: 127.0.0.1:${port}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
      'Sec-WebSocket-Version: 13',
      'Sec-WebSocket-Protocol: chatmesh.v1',
      ...extraHeaders,
      '',
      '',
    ].join('\r\n'),
  );
  let text = '';
  socket.on('data', (d) => (text += d.toString()));
  await poll(() => text.includes('\r\n'), { timeoutMs: 3000, what: 'an answer to the upgrade' });
  socket.destroy();
  return text.split('\r\n')[0];
}

/** Opens a WebSocket to /_mesh, sends a 64 KiB frame before any handshake, and returns the close code. */
async function closeOfBigPreAuthFrame(url: string): Promise<number> {
  const peer = new (await import('ws')).WebSocket(url, 'chatmesh.v1', { perMessageDeflate: false });
  peer.on('error', () => {});
  await once(peer, 'open');
  const closed = once(peer, 'close');
  peer.send('x'.repeat(64 * 1024));
  const [code] = (await withTimeout(closed, 3000, 'the close after a big pre-auth frame')) as [number];
  return code;
}

describe('hostile peers: /_mesh is not a door for web pages', function () {
  this.timeout(30_000);

  it('refuses a /_mesh upgrade that carries an Origin header (403), whatever the origin', async () => {
    const [a] = await fullMesh(1);
    expect(await meshUpgradeStatus(a, ['Origin: http://evil.example'])).to.match(/^HTTP\/1.1 403/);
    expect(await meshUpgradeStatus(a, [`Origin: http://127.0.0.1:${a.port}`])).to.match(/^HTTP\/1.1 403/);
    expect(await meshUpgradeStatus(a)).to.match(/^HTTP\/1.1 101/);
  });

  it('limits unauthenticated /_mesh connections (MAX_MESH_CONNECTIONS) and keeps their frames small before the handshake', async () => {
    const [a] = await fullMesh(1, { MAX_MESH_CONNECTIONS: '3', PEER_HANDSHAKE_TIMEOUT_MS: '5000' });
    const held: net.Socket[] = [];
    for (let i = 0; i < 3; i++) expect(await meshUpgradeStatus(a)).to.match(/^HTTP\/1.1 101/);
    // Those three were closed by meshUpgradeStatus: hold three open ones instead.
    for (let i = 0; i < 3; i++) {
      const s = net.connect(a.port, '127.0.0.1');
      s.on('error', () => {});
      held.push(s);
      await once(s, 'connect');
      s.write(`GET /_mesh HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chatmesh.v1\r\n\r\n`);
      await once(s, 'data');
    }
    try {
      await poll(async () => /^HTTP\/1.1 503/.test(await meshUpgradeStatus(a)), { timeoutMs: 3000, what: 'the fourth /_mesh connection refused with 503' });
    } finally {
      for (const s of held) s.destroy();
    }
    // A 64 KiB frame before the handshake closes the connection with 1009.
    expect(await closeOfBigPreAuthFrame(`${a.url}/_mesh`)).to.equal(1009);
    expect((await a.health()).status).to.equal(200);
  });
  it('the same on a separate MESH_PORT: an Origin gets 403, a big frame before the handshake 1009', async () => {
    const meshPort = await freePort();
    const a = await Instance.start({ env: { MESH_PORT: String(meshPort) } });
    expect(await meshUpgradeStatus(a, ['Origin: http://evil.example'], meshPort)).to.match(/^HTTP\/1.1 403/);
    expect(await meshUpgradeStatus(a, [], meshPort)).to.match(/^HTTP\/1.1 101/);
    expect(await closeOfBigPreAuthFrame(`ws://127.0.0.1:${meshPort}/_mesh`)).to.equal(1009);
    expect((await a.health()).status).to.equal(200);
  });

  it('a dialled link holds the acceptor to the small limit too, until the handshake completes', async () => {
    const port = await freePort();
    const server = http.createServer();
    servers.push(server);
    const wss = new WebSocketServer({ server, handleProtocols: () => 'chatmesh.v1' });
    const codes: number[] = [];
    // A fake acceptor that answers the hello with 64 KiB instead of a welcome.
    wss.on('connection', (ws) => {
      ws.on('error', () => {});
      ws.on('close', (code) => codes.push(code));
      ws.once('message', () => ws.send('x'.repeat(64 * 1024)));
    });
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    const a = await Instance.start({ env: { DISCOVERY: 'static', PEERS: `ws://127.0.0.1:${port}` } });
    await poll(() => codes.length > 0, { what: 'the dialer to close the link' });
    expect(codes[0]).to.equal(1009);
    expect((await a.health()).status).to.equal(200);
  });
});

describe('hostile peers: the secret cannot be guessed offline, and must be long', function () {
  this.timeout(30_000);

  it('the acceptor proves nothing before the dialer has proved itself', async () => {
    const [a] = await fullMesh(1, { MESH_SECRET: 'a-long-enough-mesh-secret' });
    const ws = new (await import('ws')).WebSocket(`${a.url}/_mesh`, 'chatmesh.v1', { perMessageDeflate: false });
    ws.on('error', () => {});
    const texts: string[] = [];
    ws.on('message', (d) => texts.push(d.toString()));
    await once(ws, 'open');
    const { DIALER_FIRST, PEER_PROTOCOL_VERSION } = await import('../../lib/links/handshake-frames.js');
    // A hello as a current dialer sends it: `df`, the dialer proves first.
    ws.send(JSON.stringify({ t: 'hello', v: PEER_PROTOCOL_VERSION, id: 'guesser', inc: 'i', port: 1, nonce: 'chosen-nonce', df: DIALER_FIRST }));
    await poll(() => texts.length > 0, { what: 'the welcome' });
    const welcome = JSON.parse(texts[0]) as Record<string, unknown>;
    expect(welcome.t).to.equal('welcome');
    expect(welcome.proof ?? '', 'a proof over our chosen nonce, before we proved anything').to.equal('');
    ws.terminate();
    // A hello of the previous version (no `df`) asks the acceptor to prove first: refused, nothing sent.
    const old = new (await import('ws')).WebSocket(`${a.url}/_mesh`, 'chatmesh.v1', { perMessageDeflate: false });
    old.on('error', () => {});
    const oldTexts: string[] = [];
    old.on('message', (d) => oldTexts.push(d.toString()));
    await once(old, 'open');
    const closed = once(old, 'close');
    old.send(JSON.stringify({ t: 'hello', v: PEER_PROTOCOL_VERSION, id: 'guesser', inc: 'i', port: 1, nonce: 'chosen-nonce' }));
    const [code] = (await withTimeout(closed, 3000, 'the refusal of an old hello')) as [number];
    expect(code).to.equal(4005);
    expect(oldTexts, 'frames sent to an old hello').to.deep.equal([]);
  });

  it('refuses to start with a MESH_SECRET shorter than 16 characters, naming the variable', async () => {
    let message = '';
    try {
      await Instance.start({ env: { MESH_SECRET: 'short-secret' } });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).to.match(/MESH_SECRET/);
    expect(message).to.match(/16/);
  });
});

describe('hostile peers: node ids and addresses cannot be taken over', function () {
  this.timeout(30_000);

  it('a live link is not replaced by another incarnation claiming its id', async () => {
    const [a, b] = await fullMesh(2);
    const impostor = await FakePeer.link(a, { id: b.nodeId, incarnation: 'impostor', port: b.port }).catch(() => null);
    if (impostor) await impostor.waitClose(3000).catch(() => {});
    const row = (await a.health()).body.peers.find((p) => p.id === b.nodeId);
    expect(row?.state).to.equal('up');
    const ca = await clients.connect(a);
    const cb = await clients.connect(b);
    await ca.join('r', 'a');
    await cb.join('r', 'b');
    await cb.say('r', 'still the real b');
    await ca.waitFor((f) => f.text === 'still the real b');
    expect(a.logs.some((l) => l.msg === 'peer restarted with the same id: replacing its old link')).to.equal(false);
  });

  it('an inbound peer claiming the port of a linked node does not evict it from its address', async () => {
    const [a, b] = await fullMesh(2);
    const fake = await FakePeer.link(a, { port: b.port });
    await poll(async () => (await a.health()).body.peers.some((p) => p.id === fake.id), { what: 'the fake listed' });
    const rows = (await a.health()).body.peers.filter((p) => p.address === `ws://127.0.0.1:${b.port}`);
    expect(rows.map((r) => [r.id, r.state])).to.deep.equal([[b.nodeId, 'up']]);
  });

  it('a close with 4004 (self) from the other end does not remove a dial target for good', async () => {
    const port = await freePort();
    // A fake acceptor at the address: completes the upgrade and closes with 4004 at once.
    const server = http.createServer();
    servers.push(server);
    const wss = new WebSocketServer({ server, handleProtocols: () => 'chatmesh.v1' });
    wss.on('connection', (ws) => ws.close(4004, 'this address is this node itself'));
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    const a = await Instance.start({ env: { DISCOVERY: 'static', PEERS: `ws://127.0.0.1:${port}`, PEER_REDIAL_BASE_MS: '50', PEER_REDIAL_MAX_MS: '200' } });
    await poll(() => wss.clients.size > 0 || a.logs.some((l) => String(l.msg).includes('itself')), { what: 'a dial to the fake' });
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
    // The real node comes up at that address: A links to it.
    // B does not dial A: only A's own redial can make this link.
    const b = await Instance.start({ port });
    await a.waitForPeersUp([b.nodeId], 10_000);
    const row = (await a.health()).body.peers.find((p) => p.address === `ws://127.0.0.1:${port}`);
    expect(row?.state).to.equal('up');
  });

  it('an address this node finds to be itself (its own acceptor got its own hello) is still dropped', async () => {
    const port = await freePort();
    // A TCP proxy: its address reaches this node, which cannot know that from the address.
    const proxy = net.createServer((inbound) => {
      const outbound = net.connect(port, '127.0.0.1');
      inbound.on('error', () => outbound.destroy());
      outbound.on('error', () => inbound.destroy());
      inbound.pipe(outbound).pipe(inbound);
    });
    proxy.listen(0, '127.0.0.1');
    await once(proxy, 'listening');
    try {
      const proxyPort = (proxy.address() as net.AddressInfo).port;
      const a = await Instance.start({ port, env: { DISCOVERY: 'static', PEERS: `ws://127.0.0.1:${proxyPort}` } });
      await a.waitForLog((l) => l.msg === 'ignoring a peer address that is this node itself', 5000, 'the self address dropped');
      expect((await a.health()).body.peers).to.deep.equal([]);
    } finally {
      proxy.close();
    }
  });

  it('a welcome claiming this node\'s own id does not remove a dial target for good either', async () => {
    const port = await freePort();
    const server = http.createServer();
    servers.push(server);
    const wss = new WebSocketServer({ server, handleProtocols: () => 'chatmesh.v1' });
    let nodeId = '';
    // A fake acceptor that answers with the dialer's own id.
    wss.on('connection', (ws) => {
      ws.on('error', () => {});
      ws.once('message', (d) => {
        nodeId = String((JSON.parse(d.toString()) as { id: string }).id);
        ws.send(JSON.stringify({ t: 'welcome', v: 1, id: nodeId, inc: 'copy', nonce: 'n', df: 1 }));
      });
    });
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    const a = await Instance.start({ env: { DISCOVERY: 'static', PEERS: `ws://127.0.0.1:${port}`, PEER_REDIAL_BASE_MS: '50', PEER_REDIAL_MAX_MS: '200' } });
    const row = await a.waitForPeer((p) => p.address === `ws://127.0.0.1:${port}` && p.state === 'rejected', 5000, 'the fake shown rejected');
    expect(row.reason).to.match(/own id/);
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
    const b = await Instance.start({ port });
    await a.waitForPeersUp([b.nodeId], 10_000);
  });
});
