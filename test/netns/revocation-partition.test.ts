/**
 * A revocation made while an instance is cut off (network namespaces, `ip link set eth0
 * down`): the cut-off side learns it when the partition heals — its socket of the revoked
 * token is closed with 4403 and the token is refused there from then on. FAILS without
 * namespaces unless CHATMESH_SKIP_NETNS=1 (as the other netns tests).
 */
import { expect } from 'chai';
import { AUDIENCE, ISSUER, TEST_SECRET, authApi, connectWithQuery, mint, upgradeStatus } from '../helpers/auth.js';
import { Instance } from '../helpers/instance.js';
import { distinctPorts, type NetHost } from '../helpers/netns.js';
import { netnsSuite } from '../helpers/netns-suite.js';
import { poll } from '../helpers/wait.js';

const ENV = {
  DISCOVERY: 'static',
  MESH_SECRET: 'revocation-partition-secret',
  PEER_HEARTBEAT_MS: '250',
  PEER_TIMEOUT_MS: '1500',
  PEER_REDIAL_MAX_MS: '1000',
  AUTH: 'jwt',
  JWT_SECRET: TEST_SECRET,
  JWT_ISSUER: ISSUER,
  JWT_AUDIENCE: AUDIENCE,
};

describe('revocation across a partition (network namespaces)', function () {
  this.timeout(40_000);
  const { started, clients, network } = netnsSuite();

  it('the cut-off side learns the revocation on heal: its socket closes (4403) and the token is refused there', async () => {
    const net = await network();
    const hosts = [await net.addHost(), await net.addHost(), await net.addHost()] as [NetHost, NetHost, NetHost];
    const ps = distinctPorts(3);
    const nodes = await Promise.all(
      hosts.map(async (h, k) => {
        const peers = [0, 1, 2].filter((j) => j !== k).map((j) => `ws://${hosts[j].address}:${ps[j]}`).join(',');
        const instance = await Instance.start({ netns: h.name, host: h.address, port: ps[k], env: { ...ENV, PEERS: peers } });
        started.push(instance);
        return instance;
      }),
    );
    await Promise.all(nodes.map((n) => n.waitForPeersUp(nodes.filter((o) => o !== n).map((o) => o.nodeId), 10_000)));

    const token = await mint({ sub: 'frank', role: 'customer', jti: 'frank-1' });
    const onCutOff = await connectWithQuery(nodes[2].url, token);
    clients.push(onCutOff);
    await onCutOff.join('frank-room', 'frank');

    await net.partition(hosts[2]);
    await poll(async () => (await nodes[0].health()).body.peers.some((p) => p.id === nodes[2].nodeId && p.state === 'down'), { timeoutMs: 8000, intervalMs: 100, what: 'the partition to show' });
    const service = await mint({ sub: 'backend', role: 'service' });
    expect((await authApi(nodes[0].httpUrl, service, 'POST', '/api/auth/revocations', { jti: 'frank-1' })).status).to.equal(201);
    expect((await upgradeStatus(`${nodes[1].url}/?token=${token}`)).status).to.equal(401);
    await new Promise((r) => setTimeout(r, 1000));
    expect(onCutOff.closeCode, 'the cut-off side cannot know yet').to.equal(null);

    await net.heal(hosts[2]);
    expect(await onCutOff.waitClose(15_000)).to.equal(4403);
    expect((await upgradeStatus(`${nodes[2].url}/?token=${token}`)).status).to.equal(401);
  });
});
