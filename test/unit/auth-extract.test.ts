import { expect } from 'chai';
import type { IncomingHttpHeaders } from 'node:http';
import { AuthError } from '../../lib/auth/errors.js';
import { tokenFromRequest, tokenFromUpgrade } from '../../lib/auth/extract.js';

describe('token auth: token extraction', () => {
  const req = (headers: IncomingHttpHeaders, url = '/ws') => ({ headers, url });
  const codeOf = (fn: () => unknown): string => {
    try {
      return `ok:${String(fn())}`;
    } catch (err) {
      expect(err).to.be.instanceOf(AuthError);
      return (err as AuthError).code;
    }
  };

  it('reads the Bearer header, tolerant of case and spaces', () => {
    for (const value of ['Bearer abc.def.ghi', 'bearer abc.def.ghi', 'BEARER   abc.def.ghi  ', '  Bearer abc.def.ghi', 'Bearer\tabc.def.ghi']) {
      expect(tokenFromRequest(req({ authorization: value }))).to.equal('abc.def.ghi');
      expect(tokenFromUpgrade(req({ authorization: value }))).to.equal('abc.def.ghi');
    }
  });

  it('is strict about the scheme and the token shape', () => {
    expect(codeOf(() => tokenFromRequest(req({ authorization: 'Basic dXNlcjpwYXNz' })))).to.equal('token_invalid');
    expect(codeOf(() => tokenFromRequest(req({ authorization: 'Bearerabc.def.ghi' })))).to.equal('token_invalid');
    expect(codeOf(() => tokenFromRequest(req({ authorization: 'Token abc' })))).to.equal('token_invalid');
    expect(codeOf(() => tokenFromRequest(req({ authorization: 'Bearer a b' })))).to.equal('token_invalid');
    expect(codeOf(() => tokenFromRequest(req({ authorization: 'Bearer a"b' })))).to.equal('token_invalid');
    expect(codeOf(() => tokenFromRequest(req({ authorization: 'Bearer' })))).to.equal('token_missing');
    expect(codeOf(() => tokenFromRequest(req({ authorization: '   ' })))).to.equal('token_missing');
  });

  it('REST reads the header only', () => {
    expect(codeOf(() => tokenFromRequest(req({}, '/api/rooms?token=abc')))).to.equal('token_missing');
  });

  it('upgrade falls back to ?token=, the header wins', () => {
    expect(tokenFromUpgrade(req({}, '/ws?token=abc.def.ghi'))).to.equal('abc.def.ghi');
    expect(tokenFromUpgrade(req({}, '/ws?room=x&token=%20abc.def.ghi%20'))).to.equal('abc.def.ghi');
    expect(tokenFromUpgrade(req({ authorization: 'Bearer from.header.x' }, '/ws?token=from.query.y'))).to.equal('from.header.x');
    // A proxy's Basic credentials do not hide the client's query token...
    expect(tokenFromUpgrade(req({ authorization: 'Basic dXNlcjpwYXNz' }, '/ws?token=abc'))).to.equal('abc');
    // ...but without one the client hears about its wrong scheme.
    expect(codeOf(() => tokenFromUpgrade(req({ authorization: 'Basic dXNlcjpwYXNz' })))).to.equal('token_invalid');
  });

  it('upgrade: missing, empty, repeated or malformed query tokens', () => {
    expect(codeOf(() => tokenFromUpgrade(req({})))).to.equal('token_missing');
    expect(codeOf(() => tokenFromUpgrade(req({}, '/ws?token=')))).to.equal('token_missing');
    expect(codeOf(() => tokenFromUpgrade({ headers: {} }))).to.equal('token_missing');
    expect(codeOf(() => tokenFromUpgrade(req({}, '/ws?token=a&token=b')))).to.equal('token_invalid');
    expect(codeOf(() => tokenFromUpgrade(req({}, '/ws?token=a%20b')))).to.equal('token_invalid');
  });
});
