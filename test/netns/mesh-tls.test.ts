/**
 * Peer links over mutual TLS (MESH_TLS_CERT, MESH_TLS_KEY, MESH_TLS_CA), three hosts in network
 * namespaces: two instances with certificates from one CA link over wss:// (the HMAC handshake
 * still runs inside) and chat; a third, whose certificate is from another CA, is refused by
 * both and shown rejected with the reason, and shows them rejected too. The CAs and
 * certificates are made here with openssl, in a temporary directory (throwaway keys only).
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestClient } from '../helpers/client.js';
import { Instance } from '../helpers/instance.js';
import { distinctPorts, type NetHost } from '../helpers/netns.js';
import { netnsSuite } from '../helpers/netns-suite.js';
import { poll } from '../helpers/wait.js';

/** A CA in `dir`, and a certificate for each name signed by it. */
function makeCa(dir: string, ca: string, names: string[]): void {
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  ssl('req', '-x509', ...ec, '-keyout', `${ca}.key`, '-out', `${ca}.pem`, '-days', '1', '-subj', `/CN=${ca}`);
  for (const name of names) {
    ssl('req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    ssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '1');
  }
}

describe('peer links over mutual TLS (network namespaces)', function () {
  this.timeout(60_000);
  const { started, clients, network } = netnsSuite();

  it('two instances with certificates from one CA link over wss:// and chat; one from another CA is refused and shown rejected', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'chatmesh-mtls-'));
    makeCa(dir, 'ca1', ['node1', 'node2']);
    makeCa(dir, 'ca2', ['node3']);
    const net = await network();
    const hosts = [await net.addHost(), await net.addHost(), await net.addHost()] as [NetHost, NetHost, NetHost];
    const ps = distinctPorts(6);
    const meshPort = (k: number) => ps[3 + k];
    const tlsOf = (k: number) => {
      const ca = k === 2 ? 'ca2' : 'ca1';
      return { MESH_TLS_CERT: join(dir, `node${k + 1}.pem`), MESH_TLS_KEY: join(dir, `node${k + 1}.key`), MESH_TLS_CA: join(dir, `${ca}.pem`) };
    };
    const nodes = await Promise.all(
      hosts.map(async (h, k) => {
        const peers = [0, 1, 2].filter((j) => j !== k).map((j) => `ws://${hosts[j].address}:${meshPort(j)}`).join(',');
        const env = { DISCOVERY: 'static', PEERS: peers, MESH_PORT: String(meshPort(k)), MESH_SECRET: 'mesh-tls-test-secret', PEER_REJECTED_RETRY_MS: '1000', ...tlsOf(k) };
        const instance = await Instance.start({ netns: h.name, host: h.address, port: ps[k], env });
        started.push(instance);
        return instance;
      }),
    );
    const [n1, n2, n3] = nodes;
    await n1.waitForPeersUp([n2.nodeId], 10_000);
    await n2.waitForPeersUp([n1.nodeId], 10_000);

    // The third is refused both ways, and each side says why.
    const n3Address = `ws://${hosts[2].address}:${meshPort(2)}`;
    const row = await n1.waitForPeer((p) => p.address === n3Address && p.state === 'rejected', 10_000, 'the foreign-CA peer rejected');
    expect(row.reason).to.match(/^TLS: /);
    const back = await n3.waitForPeer((p) => p.address === `ws://${hosts[0].address}:${meshPort(0)}` && p.state === 'rejected', 10_000, 'the CA1 peer rejected by the third');
    expect(back.reason).to.match(/^TLS: /);
    expect((await n3.health()).body.peers.every((p) => p.state !== 'up')).to.equal(true);
    expect((await n1.health()).body.peers.filter((p) => p.state === 'up').map((p) => p.id)).to.deep.equal([n2.nodeId]);

    // The mesh port speaks TLS only: a plain request gets no HTTP answer.
    const plain = await fetch(`http://${hosts[0].address}:${meshPort(0)}/_mesh`, { signal: AbortSignal.timeout(3000) }).then((r) => r.status, () => 'refused');
    expect(plain).to.equal('refused');

    // The linked pair chats.
    const a = await TestClient.connect(n1.url);
    const b = await TestClient.connect(n2.url);
    clients.push(a, b);
    await a.join('tls-room', 'ann');
    await b.join('tls-room', 'bob');
    const members = async () => (await b.request({ type: 'members', room: 'tls-room' }, (f) => f.type === 'members')).members as string[];
    await poll(async () => (await members()).includes('ann'), { timeoutMs: 5000, what: 'ann seen on the other instance' });
    await a.say('tls-room', 'over mutual TLS');
    await b.waitFor((f) => f.type === 'message' && f.text === 'over mutual TLS');
  });
});
