/**
 * setMaxPayload raises ws's frame limit on an open socket by a private field: if a ws
 * upgrade changes that field, this fails (rather than peer links silently staying at 4 KiB,
 * or never being limited).
 */
import { expect } from 'chai';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { PRE_AUTH_MAX_PAYLOAD, preAuthMaxPayload, setMaxPayload } from '../../lib/links/payload-limit.js';

describe('peer frame limits (setMaxPayload)', () => {
  let wss: WebSocketServer;
  const sockets: WebSocket[] = [];

  beforeEach(async () => {
    wss = new WebSocketServer({ port: 0, host: '127.0.0.1', maxPayload: PRE_AUTH_MAX_PAYLOAD, perMessageDeflate: false });
    await once(wss, 'listening');
  });

  afterEach(async () => {
    for (const ws of sockets.splice(0)) ws.terminate();
    for (const ws of wss.clients) ws.terminate();
    await new Promise((resolve) => wss.close(resolve));
  });

  /** A client and the server's end of it. */
  async function pair(clientMaxPayload = 0): Promise<[client: WebSocket, server: WebSocket]> {
    const accepted = once(wss, 'connection');
    const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, { perMessageDeflate: false, maxPayload: clientMaxPayload });
    client.on('error', () => {});
    sockets.push(client);
    await once(client, 'open');
    const [server] = (await accepted) as [WebSocket];
    server.on('error', () => {});
    return [client, server];
  }

  it('a frame over the pre-auth limit closes with 1009 (server side)', async () => {
    const [client] = await pair();
    const closed = once(client, 'close');
    client.send('x'.repeat(PRE_AUTH_MAX_PAYLOAD + 1));
    const [code] = (await closed) as [number];
    expect(code).to.equal(1009);
  });

  it('raises the server side limit on an open socket', async () => {
    const [client, server] = await pair();
    setMaxPayload(server, 64 * 1024);
    const got = once(server, 'message');
    client.send('x'.repeat(32 * 1024));
    const [data] = (await got) as [Buffer];
    expect(data.length).to.equal(32 * 1024);
    // The new limit holds too.
    const closed = once(client, 'close');
    client.send('x'.repeat(64 * 1024 + 1));
    expect(((await closed) as [number])[0]).to.equal(1009);
  });

  it('raises the client side limit on an open socket', async () => {
    const [client, server] = await pair(PRE_AUTH_MAX_PAYLOAD);
    setMaxPayload(client, 64 * 1024);
    const got = once(client, 'message');
    server.send('y'.repeat(32 * 1024));
    const [data] = (await got) as [Buffer];
    expect(data.length).to.equal(32 * 1024);
  });

  it('throws, rather than doing nothing, on a socket without the field it sets', () => {
    expect(() => setMaxPayload({} as WebSocket, 1)).to.throw(/ws internals changed/);
  });

  it('never opens with more than the link limit', () => {
    expect(preAuthMaxPayload(1024 * 1024)).to.equal(PRE_AUTH_MAX_PAYLOAD);
    expect(preAuthMaxPayload(100)).to.equal(100);
  });
});
