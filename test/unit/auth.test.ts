import { expect } from 'chai';
import { isLoopback, newNonce, proofFor, proofMatches } from '../../lib/links/auth.js';

const SECRET = 'correct horse battery staple';

describe('mesh auth', () => {
  describe('proofFor', () => {
    const base = () => proofFor(SECRET, 'dialer', 'nonce-1', 'node-a', 'node-b');

    it('is deterministic for the same inputs', () => {
      expect(base()).to.equal(base());
      expect(base()).to.equal(proofFor(SECRET, 'dialer', 'nonce-1', 'node-a', 'node-b'));
    });

    it('is a base64url SHA-256 HMAC (43 characters)', () => {
      expect(base()).to.match(/^[A-Za-z0-9_-]{43}$/);
    });

    it('differs by role', () => {
      expect(proofFor(SECRET, 'acceptor', 'nonce-1', 'node-a', 'node-b')).to.not.equal(base());
    });

    it('differs by nonce', () => {
      expect(proofFor(SECRET, 'dialer', 'nonce-2', 'node-a', 'node-b')).to.not.equal(base());
      expect(proofFor(SECRET, 'dialer', '', 'node-a', 'node-b')).to.not.equal(base());
    });

    it('differs by own id, peer id, and when the ids are swapped', () => {
      expect(proofFor(SECRET, 'dialer', 'nonce-1', 'node-c', 'node-b')).to.not.equal(base());
      expect(proofFor(SECRET, 'dialer', 'nonce-1', 'node-a', 'node-c')).to.not.equal(base());
      expect(proofFor(SECRET, 'dialer', 'nonce-1', 'node-b', 'node-a')).to.not.equal(base());
    });

    it('differs by secret', () => {
      expect(proofFor(SECRET + '!', 'dialer', 'nonce-1', 'node-a', 'node-b')).to.not.equal(base());
      expect(proofFor('another secret', 'dialer', 'nonce-1', 'node-a', 'node-b')).to.not.equal(base());
    });

    it("is '' without a secret", () => {
      expect(proofFor(undefined, 'dialer', 'nonce-1', 'node-a', 'node-b')).to.equal('');
      expect(proofFor(undefined, 'acceptor', 'x', 'y', 'z')).to.equal('');
    });

    it("what the acceptor sends is what the dialer recomputes, and can't pass as the dialer's", () => {
      // acceptor answers the dialer's nonce; the dialer checks with the same arguments
      const sent = proofFor(SECRET, 'acceptor', 'dialer-nonce', 'acceptor-id', 'dialer-id');
      expect(proofMatches(proofFor(SECRET, 'acceptor', 'dialer-nonce', 'acceptor-id', 'dialer-id'), sent)).to.equal(true);
      // reflected back as the dialer's own auth, it does not match
      expect(proofMatches(proofFor(SECRET, 'dialer', 'dialer-nonce', 'acceptor-id', 'dialer-id'), sent)).to.equal(false);
    });
  });

  describe('proofMatches', () => {
    it('is true for equal strings', () => {
      const p = proofFor(SECRET, 'dialer', 'n', 'a', 'b');
      expect(proofMatches(p, p)).to.equal(true);
      expect(proofMatches(p, String(p))).to.equal(true);
      expect(proofMatches('', '')).to.equal(true);
    });

    it('is false for different strings of the same length', () => {
      const p = proofFor(SECRET, 'dialer', 'n', 'a', 'b');
      const flipped = (p[0] === 'A' ? 'B' : 'A') + p.slice(1);
      expect(proofMatches(p, flipped)).to.equal(false);
      expect(proofMatches('abc', 'abd')).to.equal(false);
    });

    it('is false (without throwing) for different lengths', () => {
      const p = proofFor(SECRET, 'dialer', 'n', 'a', 'b');
      expect(proofMatches(p, '')).to.equal(false);
      expect(proofMatches('', p)).to.equal(false);
      expect(proofMatches(p, p + 'x')).to.equal(false);
      expect(proofMatches(p, p.slice(0, -1))).to.equal(false);
    });

    it('is false (without throwing) for equal character counts but different byte lengths', () => {
      expect(proofMatches('e', 'é')).to.equal(false);
      expect(proofMatches('ab', 'é')).to.equal(false); // same byte length, different bytes
    });
  });

  describe('newNonce', () => {
    it('is fresh and base64url', () => {
      const seen = new Set(Array.from({ length: 100 }, () => newNonce()));
      expect(seen.size).to.equal(100);
      for (const n of seen) expect(n).to.match(/^[A-Za-z0-9_-]{24}$/);
    });
  });

  describe('isLoopback', () => {
    for (const address of ['127.0.0.1', '127.8.9.10', '127.255.255.254', '::1', '::ffff:127.0.0.1', '::ffff:127.1.2.3']) {
      it(`true for ${address}`, () => expect(isLoopback(address)).to.equal(true));
    }
    for (const address of [
      '10.0.0.1',
      '::ffff:10.0.0.1',
      '192.168.1.10',
      '0.0.0.0',
      '::',
      '128.0.0.1',
      '1.127.0.0.1',
      '127.0.0.1.evil.example',
      '::2',
      '',
      undefined,
    ]) {
      it(`false for ${JSON.stringify(address)}`, () => expect(isLoopback(address)).to.equal(false));
    }
    it("false for 'localhost': it checks IP addresses only, not names", () => {
      expect(isLoopback('localhost')).to.equal(false);
    });
  });
});
