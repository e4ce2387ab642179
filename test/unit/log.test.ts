/**
 * The logger (pino underneath): JSON lines with a string level, an ISO time, the node id on
 * every line and the fields merged; levels filtered; Error values with their message;
 * readable lines on request; and lines written synchronously (a killed process keeps them).
 */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { createLogger, type LoggerOptions } from '../../lib/log.js';

/** A logger writing to memory; `lines` are the raw lines, parsed by `records()`. */
function capture(options: Partial<LoggerOptions> = {}) {
  const lines: string[] = [];
  let pending = '';
  const stream = new Writable({
    write(chunk: Buffer | string, _enc, done) {
      pending += chunk.toString();
      let nl: number;
      while ((nl = pending.indexOf('\n')) !== -1) {
        lines.push(pending.slice(0, nl));
        pending = pending.slice(nl + 1);
      }
      done();
    },
  });
  const log = createLogger({ nodeId: 'node-1', level: 'debug', stream, ...options });
  const records = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  return { log, lines, records };
}

describe('log', () => {
  it('writes one JSON object per line: string level, ISO time, node id, msg, fields merged', () => {
    const { log, records } = capture();
    log.info('peer up', { peer: 'abc', rttMs: 3, nested: { a: [1, 2] } });
    log.debug('plain');
    const [first, second] = records();
    expect(first).to.include({ level: 'info', node: 'node-1', msg: 'peer up', peer: 'abc', rttMs: 3 });
    expect(first.nested).to.deep.equal({ a: [1, 2] });
    expect(first.time).to.be.a('string');
    expect(new Date(first.time as string).toISOString()).to.equal(first.time);
    expect(Math.abs(Date.parse(first.time as string) - Date.now())).to.be.below(60_000);
    expect(second).to.include({ level: 'debug', node: 'node-1', msg: 'plain' });
    // Nothing but what was asked for: no pid, no hostname.
    expect(Object.keys(second).sort()).to.deep.equal(['level', 'msg', 'node', 'time']);
  });

  it('filters by level, and silent writes nothing', () => {
    const levels = ['debug', 'info', 'warn', 'error'] as const;
    for (const [i, min] of levels.entries()) {
      const { log, records } = capture({ level: min });
      for (const l of levels) log[l](`at ${l}`);
      expect(records().map((r) => r.level), `LOG_LEVEL=${min}`).to.deep.equal(levels.slice(i));
      expect(records().map((r) => r.msg)).to.deep.equal(levels.slice(i).map((l) => `at ${l}`));
    }
    const { log, lines } = capture({ level: 'silent' });
    for (const l of levels) log[l]('nothing', { a: 1 });
    expect(lines).to.deep.equal([]);
  });

  it('puts the node id on every line, whoever logs and at whatever level', () => {
    const { log, records } = capture({ nodeId: 'n-42' });
    log.debug('a');
    log.info('b', { peer: 'p' });
    log.warn('c', { x: 1 });
    log.error('d', {});
    const all = records();
    expect(all).to.have.length(4);
    for (const r of all) expect(r.node).to.equal('n-42');
  });

  it('serialises Error values with their type and message, under any key', () => {
    const { log, records } = capture();
    class LinkError extends Error {
      override name = 'LinkError';
    }
    log.error('dial failed', { error: new Error('connect ECONNREFUSED'), err: new LinkError('handshake timed out'), peer: 'p1' });
    const [r] = records();
    const error = r.error as Record<string, unknown>;
    const err = r.err as Record<string, unknown>;
    expect(error).to.include({ type: 'Error', message: 'connect ECONNREFUSED' });
    expect(error.stack).to.be.a('string').and.contain('connect ECONNREFUSED');
    expect(err).to.include({ type: 'LinkError', message: 'handshake timed out' });
    expect(r.peer).to.equal('p1');
  });

  it('writes readable lines (no JSON, no colour) when asked for pretty output on a stream that is no terminal', () => {
    const { log, lines } = capture({ pretty: true, level: 'info' });
    log.debug('hidden');
    log.info('chatmesh listening', { port: 3000 });
    log.warn('careful');
    expect(lines).to.have.length(2);
    expect(lines[0]).to.match(/INFO.*\[node-1\] chatmesh listening/);
    expect(lines[0]).to.contain('"port":3000');
    expect(lines[1]).to.match(/WARN.*\[node-1\] careful/);
    expect(lines.join('\n')).not.to.contain('\u001b[');
    expect(() => JSON.parse(lines[0])).to.throw();
  });

  it('goes to stdout synchronously: a process killed right after logging has written its lines', () => {
    const logModule = fileURLToPath(new URL('../../lib/log.js', import.meta.url));
    const script = `
      const { createLogger } = await import(${JSON.stringify(logModule)});
      const log = createLogger({ nodeId: 'doomed', level: 'info' });
      for (let i = 0; i < 200; i++) log.info('line ' + i, { pad: 'x'.repeat(200) });
      log.error('last words');
      process.kill(process.pid, 'SIGKILL');
    `;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(child.signal).to.equal('SIGKILL');
    const lines = child.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).to.have.length(201);
    expect(lines[200]).to.include({ level: 'error', msg: 'last words', node: 'doomed' });
  });
});
