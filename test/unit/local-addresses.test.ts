import { expect } from 'chai';
import { networkInterfaces } from 'node:os';
import { isLocalHost, localAddresses, preferLoopback } from '../../lib/discovery/local-addresses.js';

/** A made-up set of this host's addresses, so the tests do not depend on the machine. */
const LOCAL = new Set(['127.0.0.1', '::1', '192.168.7.20', 'fe80::abcd:1']);

describe('local addresses', () => {
  describe('localAddresses', () => {
    it('always holds the loopback addresses and every interface address', () => {
      const set = localAddresses();
      expect(set.has('127.0.0.1')).to.equal(true);
      expect(set.has('::1')).to.equal(true);
      for (const list of Object.values(networkInterfaces())) {
        for (const info of list ?? []) expect(set.has(info.address), info.address).to.equal(true);
      }
    });
  });

  describe('isLocalHost', () => {
    for (const host of ['127.0.0.1', '127.0.1.1', '::1', '[::1]', '::ffff:127.0.0.1', 'localhost']) {
      it(`true for loopback ${host}`, () => expect(isLocalHost(host, new Set())).to.equal(true));
    }

    it('true for an address in the injected set, bracketed or not', () => {
      expect(isLocalHost('192.168.7.20', LOCAL)).to.equal(true);
      expect(isLocalHost('fe80::abcd:1', LOCAL)).to.equal(true);
      expect(isLocalHost('[fe80::abcd:1]', LOCAL)).to.equal(true);
    });

    it('false for a foreign address', () => {
      expect(isLocalHost('10.1.2.3', LOCAL)).to.equal(false);
      expect(isLocalHost('192.168.7.21', LOCAL)).to.equal(false);
      expect(isLocalHost('[fe80::abcd:2]', LOCAL)).to.equal(false);
      expect(isLocalHost('example.com', LOCAL)).to.equal(false);
    });

    it('uses the injected set, not the real interfaces', () => {
      expect(isLocalHost('10.1.2.3', new Set(['10.1.2.3']))).to.equal(true);
      expect(isLocalHost('192.168.7.20', new Set())).to.equal(false);
    });
  });

  describe('preferLoopback', () => {
    it('rewrites one of our addresses to 127.0.0.1, keeping the port', () => {
      expect(preferLoopback('ws://192.168.7.20:4100', LOCAL)).to.equal('ws://127.0.0.1:4100');
      expect(preferLoopback('ws://[fe80::abcd:1]:4101', LOCAL)).to.equal('ws://127.0.0.1:4101');
      expect(preferLoopback('ws://localhost:4102', LOCAL)).to.equal('ws://127.0.0.1:4102');
      expect(preferLoopback('ws://127.0.0.1:4103', LOCAL)).to.equal('ws://127.0.0.1:4103');
    });

    it('keeps the scheme', () => {
      expect(preferLoopback('wss://192.168.7.20:4443', LOCAL)).to.equal('wss://127.0.0.1:4443');
    });

    it('leaves a foreign address alone', () => {
      expect(preferLoopback('ws://10.0.0.9:4100', LOCAL)).to.equal('ws://10.0.0.9:4100');
      expect(preferLoopback('ws://[2001:db8::1]:4100', LOCAL)).to.equal('ws://[2001:db8::1]:4100');
      expect(preferLoopback('ws://peer.example:4100', LOCAL)).to.equal('ws://peer.example:4100');
    });

    it("keeps the scheme's default port when it is written out (ws :80, wss :443)", () => {
      // The WHATWG URL parser reports a scheme's default port as url.port === ''.
      const same = (actual: string, expected: string) => expect(new URL(actual).href, actual).to.equal(new URL(expected).href);
      same(preferLoopback('ws://192.168.7.20:80', LOCAL), 'ws://127.0.0.1:80');
      same(preferLoopback('wss://192.168.7.20:443', LOCAL), 'wss://127.0.0.1:443');
    });
  });
});
