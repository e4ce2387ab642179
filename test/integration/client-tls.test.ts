/**
 * TLS options on real processes: clients over https:// and wss:// (TLS_CERT, TLS_KEY), and a
 * bad or incomplete TLS setting stops start-up naming the variable. The certificate is made
 * here with openssl (a throwaway self-signed one).
 */
import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { TestClient } from '../helpers/client.js';
import { Instance, ROOT, SERVER, stopAll } from '../helpers/instance.js';

describe('TLS settings', function () {
  this.timeout(30_000);
  const dir = mkdtempSync(join(tmpdir(), 'chatmesh-tls-'));
  before(() => {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { cwd: dir, stdio: 'pipe' });
    writeFileSync(join(dir, 'junk.pem'), 'not a certificate\n');
  });
  afterEach(() => stopAll());

  it('serves clients over https:// and wss:// with TLS_CERT and TLS_KEY', async () => {
    const node = await Instance.start({ env: { TLS_CERT: join(dir, 'cert.pem'), TLS_KEY: join(dir, 'key.pem') } });
    const ca = readFileSync(join(dir, 'cert.pem'));
    const status = await new Promise<number>((resolve, reject) => {
      https.get({ host: '127.0.0.1', port: node.port, path: '/health', ca }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on('error', reject);
    });
    expect(status).to.equal(200);
    const client = await TestClient.wrap(new WebSocket(`wss://127.0.0.1:${node.port}/`, { ca, perMessageDeflate: false }));
    await client.join('secure', 'ann');
    expect((await client.say('secure', 'hello over wss')).user).to.equal('ann');
    await client.close();
  });

  it('a bad or incomplete TLS setting stops start-up naming the variable', () => {
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    for (const [env, variable] of [
      [{ TLS_CERT: cert }, 'TLS_KEY'],
      [{ TLS_CERT: join(dir, 'junk.pem'), TLS_KEY: key }, 'TLS_CERT'],
      [{ MESH_TLS_CERT: cert, MESH_TLS_KEY: key, MESH_PORT: '4999' }, 'MESH_TLS_CA'],
      [{ MESH_TLS_CERT: cert, MESH_TLS_KEY: key, MESH_TLS_CA: cert }, 'MESH_PORT'],
      [{ MESH_TLS_CERT: cert, MESH_TLS_KEY: join(dir, 'missing.pem'), MESH_TLS_CA: cert, MESH_PORT: '4999' }, 'MESH_TLS_KEY'],
    ] as const) {
      const run = spawnSync(process.execPath, [SERVER], { cwd: ROOT, env: { PATH: process.env.PATH, DISCOVERY: 'off', PORT: '0', ...env }, encoding: 'utf8', timeout: 10_000 });
      expect(run.status, JSON.stringify(env)).to.equal(1);
      expect(run.stderr, JSON.stringify(env)).to.include(variable);
    }
  });
});
