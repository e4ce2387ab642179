import { expect } from 'chai';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConfigError,
  DEFAULTS,
  normalizePeerUrl,
  resolveOptions,
  type ChatmeshOptions,
} from '../../lib/config.js';
import { optionsFromEnv, readPeersFile } from '../../lib/config-env.js';

/** Runs fn, expects a ConfigError naming `variable`, and returns it. */
function expectConfigError(fn: () => unknown, variable: string): ConfigError {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown, `expected a ConfigError naming ${variable}`).to.be.instanceOf(ConfigError);
  const err = thrown as ConfigError;
  expect(err.variable).to.equal(variable);
  expect(err.code).to.equal('invalid_config');
  expect(err.name).to.equal('ConfigError');
  expect(err.message.startsWith(`${variable}: `), err.message).to.equal(true);
  expect(err.message.length).to.be.greaterThan(variable.length + 2);
  return err;
}

describe('config', () => {
  describe('resolveOptions', () => {
    it('fills in the documented defaults', () => {
      const o = resolveOptions();
      expect(o.port).to.equal(3000);
      expect(o.meshPort).to.equal(3000);
      expect(o.host).to.equal(undefined);
      expect(o.meshHost).to.equal(undefined);
      expect(o.nodeId).to.equal(undefined);
      expect(o.discovery).to.equal('mdns');
      expect(o.peers).to.deep.equal([]);
      expect(o.meshSecret).to.equal(undefined);
      expect(o.hopLimit).to.equal(2);
      expect(o.maxPayloadBytes).to.equal(65536);
      expect(o.maxPeerPayloadBytes).to.equal(1024 * 1024);
      expect(o.maxTextLength).to.equal(8000);
      expect(o.maxNameLength).to.equal(128);
      expect(o.maxRoomsPerConnection).to.equal(100);
      expect(o.pingIntervalMs).to.equal(25_000);
      expect(o.peerHeartbeatMs).to.equal(1000);
      expect(o.peerTimeoutMs).to.equal(4000);
      expect(o.peerHandshakeTimeoutMs).to.equal(2000);
      expect(o.redialBaseMs).to.equal(250);
      expect(o.redialMaxMs).to.equal(5000);
      expect(o.rejectedRetryMs).to.equal(30_000);
      expect(o.maxPeerBufferBytes).to.equal(16 * 1024 * 1024);
      expect(o.seenTtlMs).to.equal(120_000);
      expect(o.seenMax).to.equal(200_000);
      expect(o.mdnsType).to.equal('chatmesh');
      expect(o.mdnsQueryIntervalMs).to.equal(10_000);
      expect(o.shutdownTimeoutMs).to.equal(3000);
      expect(o.logLevel).to.equal('info');
      expect(resolveOptions({})).to.deep.equal(o);
    });

    it('meshPort defaults to port, and an explicit meshPort wins', () => {
      expect(resolveOptions({ port: 4321 }).meshPort).to.equal(4321);
      expect(resolveOptions({ port: 4321, meshPort: 4400 }).meshPort).to.equal(4400);
      expect(resolveOptions({ port: 0 }).meshPort).to.equal(0);
    });

    it('ignores options given as undefined', () => {
      const o = resolveOptions({ port: undefined, discovery: undefined, peers: undefined, hopLimit: undefined });
      expect(o.port).to.equal(3000);
      expect(o.discovery).to.equal('mdns');
      expect(o.peers).to.deep.equal([]);
      expect(o.hopLimit).to.equal(2);
    });

    it('accepts the edge values', () => {
      expect(resolveOptions({ port: 0, meshPort: 65535 }).meshPort).to.equal(65535);
      expect(resolveOptions({ hopLimit: 1 }).hopLimit).to.equal(1);
      expect(resolveOptions({ hopLimit: 16 }).hopLimit).to.equal(16);
      expect(resolveOptions({ peerHeartbeatMs: 1000, peerTimeoutMs: 1001 }).peerTimeoutMs).to.equal(1001);
      expect(resolveOptions({ redialBaseMs: 500, redialMaxMs: 500 }).redialMaxMs).to.equal(500);
      expect(resolveOptions({ meshSecret: '1234567890123456' }).meshSecret).to.equal('1234567890123456');
      for (const discovery of ['mdns', 'static', 'off'] as const) expect(resolveOptions({ discovery }).discovery).to.equal(discovery);
      for (const logLevel of ['debug', 'info', 'warn', 'error', 'silent'] as const) {
        expect(resolveOptions({ logLevel }).logLevel).to.equal(logLevel);
      }
    });

    it('normalises peers', () => {
      const o = resolveOptions({ peers: ['localhost:4000', ' ws://10.0.0.2:4001 ', 'wss://chat.example:5000/path', '[::1]:4002'] });
      expect(o.peers).to.deep.equal(['ws://127.0.0.1:4000', 'ws://10.0.0.2:4001', 'wss://chat.example:5000', 'ws://[::1]:4002']);
    });

    it('does not change DEFAULTS or its input', () => {
      const input: Partial<ChatmeshOptions> = { peers: ['localhost:4000'] };
      resolveOptions(input);
      expect(input.peers).to.deep.equal(['localhost:4000']);
      expect(DEFAULTS.peers).to.deep.equal([]);
      expect(DEFAULTS.meshPort).to.equal(undefined);
      expect(Object.isFrozen(DEFAULTS)).to.equal(true);
    });

    const bad: Array<[string, Partial<ChatmeshOptions>, string]> = [
      ['port -1', { port: -1 }, 'port'],
      ['port 65536', { port: 65536 }, 'port'],
      ['port 1.5', { port: 1.5 }, 'port'],
      ['port NaN', { port: NaN }, 'port'],
      ['port as a string', { port: '3000' as unknown as number }, 'port'],
      ['meshPort 70000', { meshPort: 70000 }, 'meshPort'],
      ['meshPort -5', { meshPort: -5 }, 'meshPort'],
      ['discovery bonjour', { discovery: 'bonjour' as never }, 'discovery'],
      ['discovery MDNS', { discovery: 'MDNS' as never }, 'discovery'],
      ['logLevel verbose', { logLevel: 'verbose' as never }, 'logLevel'],
      ['hopLimit 0', { hopLimit: 0 }, 'hopLimit'],
      ['hopLimit 17', { hopLimit: 17 }, 'hopLimit'],
      ['hopLimit 1.5', { hopLimit: 1.5 }, 'hopLimit'],
      ['hopLimit NaN', { hopLimit: NaN }, 'hopLimit'],
      ['peerTimeoutMs equal to heartbeat', { peerHeartbeatMs: 1000, peerTimeoutMs: 1000 }, 'peerTimeoutMs'],
      ['peerTimeoutMs below heartbeat', { peerHeartbeatMs: 5000 }, 'peerTimeoutMs'],
      ['redialMaxMs below redialBaseMs', { redialBaseMs: 300, redialMaxMs: 299 }, 'redialMaxMs'],
      ['meshSecret of 7 characters', { meshSecret: '1234567' }, 'meshSecret'],
      ['meshSecret of 15 characters', { meshSecret: '123456789012345' }, 'meshSecret'],
      ['meshSecret empty', { meshSecret: '' }, 'meshSecret'],
      ['peers with http://', { peers: ['http://10.0.0.1:4000'] }, 'peers'],
      ['peers without a port', { peers: ['ws://10.0.0.1'] }, 'peers'],
      ['peers not a URL', { peers: ['ws://bad host:4000'] }, 'peers'],
      ['peers port out of range', { peers: ['ws://10.0.0.1:70000'] }, 'peers'],
    ];
    for (const [label, input, option] of bad) {
      it(`rejects ${label} with a ConfigError naming ${option}`, () => {
        expectConfigError(() => resolveOptions(input), option);
      });
    }
  });

  describe('normalizePeerUrl', () => {
    const good: Array<[string, string]> = [
      ['ws://10.0.0.1:4000', 'ws://10.0.0.1:4000'],
      ['wss://chat.example:8443', 'wss://chat.example:8443'],
      ['WS://10.0.0.1:4000', 'ws://10.0.0.1:4000'],
      ['10.0.0.1:4000', 'ws://10.0.0.1:4000'],
      ['  10.0.0.1:4000\t', 'ws://10.0.0.1:4000'],
      ['localhost:4000', 'ws://127.0.0.1:4000'],
      ['ws://LOCALHOST:4000', 'ws://127.0.0.1:4000'],
      ['[::1]:4000', 'ws://[::1]:4000'],
      ['ws://[fe80::1]:4000/', 'ws://[fe80::1]:4000'],
      ['ws://10.0.0.1:4000/some/path?q=1', 'ws://10.0.0.1:4000'],
    ];
    for (const [input, output] of good) {
      it(`${JSON.stringify(input)} → ${output}`, () => expect(normalizePeerUrl(input, 'PEERS')).to.equal(output));
    }

    it("accepts the scheme's default port written out (ws://host:80, wss://host:443)", () => {
      // A peer listening on port 80 has a port; the WHATWG URL parser just reports it as ''.
      expect(normalizePeerUrl('ws://10.0.0.1:80', 'PEERS')).to.equal('ws://10.0.0.1:80');
      expect(normalizePeerUrl('10.0.0.1:80', 'PEERS')).to.equal('ws://10.0.0.1:80');
      expect(normalizePeerUrl('wss://chat.example:443', 'PEERS')).to.equal('wss://chat.example:443');
    });

    for (const input of ['10.0.0.1', 'ws://10.0.0.1', 'http://10.0.0.1:4000', 'https://10.0.0.1:4000', 'ftp://x:21', '', ':4000', 'ws://:4000']) {
      it(`rejects ${JSON.stringify(input)} naming the variable it came from`, () => {
        expectConfigError(() => normalizePeerUrl(input, 'SOME_VAR'), 'SOME_VAR');
      });
    }
  });

  describe('optionsFromEnv', () => {
    let dir: string;
    before(() => {
      dir = mkdtempSync(join(tmpdir(), 'chatmesh-config-test-'));
    });
    after(() => {
      rmSync(dir, { recursive: true, force: true });
    });
    let fileCount = 0;
    const peersFile = (content: string): string => {
      const path = join(dir, `peers-${fileCount++}.json`);
      writeFileSync(path, content);
      return path;
    };

    it('gives the defaults for an empty environment (and does not read process.env)', () => {
      expect(optionsFromEnv({})).to.deep.equal(resolveOptions());
    });

    it('parses int variables', () => {
      const o = optionsFromEnv({
        PORT: '4000',
        MESH_HOPS: '3',
        MAX_TEXT_LENGTH: '100',
        MAX_NAME_LENGTH: '20',
        SEEN_TTL_MS: '1000',
        SEEN_MAX: '10',
        PEER_HEARTBEAT_MS: '200',
        PEER_TIMEOUT_MS: '900',
      });
      expect(o.port).to.equal(4000);
      expect(o.meshPort).to.equal(4000);
      expect(o.hopLimit).to.equal(3);
      expect(o.maxTextLength).to.equal(100);
      expect(o.maxNameLength).to.equal(20);
      expect(o.seenTtlMs).to.equal(1000);
      expect(o.seenMax).to.equal(10);
      expect(o.peerHeartbeatMs).to.equal(200);
      expect(o.peerTimeoutMs).to.equal(900);
    });

    it('MESH_PORT sets meshPort apart from PORT', () => {
      const o = optionsFromEnv({ PORT: '4000', MESH_PORT: '4001' });
      expect([o.port, o.meshPort]).to.deep.equal([4000, 4001]);
    });

    it('trims values and skips empty ones', () => {
      const o = optionsFromEnv({ PORT: ' 4000 ', HOST: ' 127.0.0.1 ', NODE_ID: '', MESH_HOPS: '' });
      expect(o.port).to.equal(4000);
      expect(o.host).to.equal('127.0.0.1');
      expect(o.nodeId).to.equal(undefined);
      expect(o.hopLimit).to.equal(2);
    });

    it('reads string variables', () => {
      const o = optionsFromEnv({
        HOST: '0.0.0.0',
        MESH_HOST: '10.0.0.1',
        NODE_ID: 'node-7',
        DISCOVERY: 'static',
        MESH_SECRET: 'sekrit-sekrit-sekrit',
        MDNS_TYPE: 'mychat',
        LOG_LEVEL: 'warn',
      });
      expect(o.host).to.equal('0.0.0.0');
      expect(o.meshHost).to.equal('10.0.0.1');
      expect(o.nodeId).to.equal('node-7');
      expect(o.discovery).to.equal('static');
      expect(o.meshSecret).to.equal('sekrit-sekrit-sekrit');
      expect(o.mdnsType).to.equal('mychat');
      expect(o.logLevel).to.equal('warn');
    });

    for (const variable of ['PORT', 'MESH_PORT', 'MESH_HOPS', 'MAX_TEXT_LENGTH', 'SEEN_MAX', 'PEER_TIMEOUT_MS', 'HTTP_MAX_HEADER_BYTES']) {
      for (const value of ['abc', '-1', '1.5', '1e3', '0x10', '12abc', ' ']) {
        it(`rejects ${variable}=${JSON.stringify(value)} naming ${variable}`, () => {
          expectConfigError(() => optionsFromEnv({ [variable]: value }), variable);
        });
      }
    }

    const outOfRange: Array<[NodeJS.ProcessEnv, string]> = [
      [{ PORT: '70000' }, 'PORT'],
      [{ MESH_PORT: '65536' }, 'MESH_PORT'],
      [{ MESH_HOPS: '0' }, 'MESH_HOPS'],
      [{ MESH_HOPS: '17' }, 'MESH_HOPS'],
      [{ PEER_HEARTBEAT_MS: '1000', PEER_TIMEOUT_MS: '1000' }, 'PEER_TIMEOUT_MS'],
      [{ PEER_REDIAL_BASE_MS: '1000', PEER_REDIAL_MAX_MS: '999' }, 'PEER_REDIAL_MAX_MS'],
      [{ DISCOVERY: 'bogus' }, 'DISCOVERY'],
      [{ DISCOVERY: 'Static' }, 'DISCOVERY'],
      [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL'],
      [{ MESH_SECRET: 'short' }, 'MESH_SECRET'],
      [{ MESH_SECRET: '1234567' }, 'MESH_SECRET'],
      [{ MESH_SECRET: '   1234567   ' }, 'MESH_SECRET'],
      [{ MESH_SECRET: '12345678' }, 'MESH_SECRET'],
      [{ MESH_SECRET: '123456789012345' }, 'MESH_SECRET'],
      [{ MESH_SECRET: '   123456789012345   ' }, 'MESH_SECRET'],
      [{ MAX_MESH_CONNECTIONS: '0' }, 'MAX_MESH_CONNECTIONS'],
    ];
    for (const [env, variable] of outOfRange) {
      it(`rejects ${JSON.stringify(env)} naming ${variable}, not the option`, () => {
        expectConfigError(() => optionsFromEnv(env), variable);
      });
    }

    it('accepts a MESH_SECRET of exactly 16 characters', () => {
      expect(optionsFromEnv({ MESH_SECRET: '1234567890123456' }).meshSecret).to.equal('1234567890123456');
    });

    it('names MESH_SECRET and 16 when the secret is too short', () => {
      expect(() => optionsFromEnv({ MESH_SECRET: 'short-secret' })).to.throw(/MESH_SECRET.*16/);
    });

    it('reads MAX_MESH_CONNECTIONS, 256 by default', () => {
      expect(optionsFromEnv({}).maxMeshConnections).to.equal(256);
      expect(optionsFromEnv({ MAX_MESH_CONNECTIONS: '3' }).maxMeshConnections).to.equal(3);
    });

    it('reads PRESENCE_MAX_MEMBERS, 1000 by default; 0 or a non-number names PRESENCE_MAX_MEMBERS', () => {
      expect(optionsFromEnv({}).presenceMaxMembers).to.equal(1000);
      expect(optionsFromEnv({ PRESENCE_MAX_MEMBERS: '50' }).presenceMaxMembers).to.equal(50);
      expect(() => optionsFromEnv({ PRESENCE_MAX_MEMBERS: '0' })).to.throw(ConfigError, /^PRESENCE_MAX_MEMBERS: /);
      expect(() => optionsFromEnv({ PRESENCE_MAX_MEMBERS: 'many' })).to.throw(ConfigError, /^PRESENCE_MAX_MEMBERS: /);
    });

    it('parses PEERS: comma list, whitespace, host:port without scheme, localhost, empty items', () => {
      const o = optionsFromEnv({ PEERS: ' ws://10.0.0.1:4000 ,10.0.0.2:4001,, localhost:4002 ,wss://chat.example:8443, ' });
      expect(o.peers).to.deep.equal(['ws://10.0.0.1:4000', 'ws://10.0.0.2:4001', 'ws://127.0.0.1:4002', 'wss://chat.example:8443']);
    });

    it('parses a single PEERS entry with an IPv6 address', () => {
      expect(optionsFromEnv({ PEERS: '[::1]:4000' }).peers).to.deep.equal(['ws://[::1]:4000']);
    });

    it('accepts a peer on ws port 80 in PEERS', () => {
      expect(optionsFromEnv({ PEERS: 'ws://10.0.0.1:80' }).peers).to.deep.equal(['ws://10.0.0.1:80']);
    });

    for (const peers of ['ws://10.0.0.1', '10.0.0.1', 'ws://10.0.0.1:4000,10.0.0.2', 'http://10.0.0.1:4000', 'https://10.0.0.1:4000', 'ws://bad host:1']) {
      it(`rejects PEERS=${JSON.stringify(peers)} naming PEERS`, () => {
        expectConfigError(() => optionsFromEnv({ PEERS: peers }), 'PEERS');
      });
    }

    it('reads PEERS_FILE and appends it after PEERS', () => {
      const path = peersFile(JSON.stringify({ peers: ['ws://10.0.0.5:4000', 'localhost:4001', ' 10.0.0.6:4002 '] }));
      expect(optionsFromEnv({ PEERS_FILE: path }).peers).to.deep.equal(['ws://10.0.0.5:4000', 'ws://127.0.0.1:4001', 'ws://10.0.0.6:4002']);
      expect(optionsFromEnv({ PEERS: '10.0.0.9:1', PEERS_FILE: path }).peers).to.deep.equal([
        'ws://10.0.0.9:1',
        'ws://10.0.0.5:4000',
        'ws://127.0.0.1:4001',
        'ws://10.0.0.6:4002',
      ]);
    });

    it('accepts a PEERS_FILE with an empty list', () => {
      expect(optionsFromEnv({ PEERS_FILE: peersFile('{"peers": []}') }).peers).to.deep.equal([]);
    });

    const malformed: Array<[string, string]> = [
      ['not JSON', 'ws://10.0.0.1:4000'],
      ['truncated JSON', '{"peers": ["ws://10.0.0.1:4000"'],
      ['empty file', ''],
      ['null', 'null'],
      ['a bare array', '["ws://10.0.0.1:4000"]'],
      ['no peers key', '{"hosts": ["ws://10.0.0.1:4000"]}'],
      ['peers a string', '{"peers": "ws://10.0.0.1:4000"}'],
      ['peers holding a number', '{"peers": ["ws://10.0.0.1:4000", 4001]}'],
      ['peers holding null', '{"peers": [null]}'],
      ['a peer without a port', '{"peers": ["ws://10.0.0.1"]}'],
      ['an http peer', '{"peers": ["http://10.0.0.1:4000"]}'],
    ];
    for (const [label, content] of malformed) {
      it(`rejects a PEERS_FILE with ${label}, naming PEERS_FILE`, () => {
        const path = peersFile(content);
        expectConfigError(() => optionsFromEnv({ PEERS_FILE: path }), 'PEERS_FILE');
        expectConfigError(() => readPeersFile(path), 'PEERS_FILE');
      });
    }

    it('rejects a PEERS_FILE that does not exist, naming PEERS_FILE', () => {
      const err = expectConfigError(() => optionsFromEnv({ PEERS_FILE: join(dir, 'missing.json') }), 'PEERS_FILE');
      expect(err.message).to.include('missing.json');
    });
  });
});
