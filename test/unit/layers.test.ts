/**
 * The layout of lib/ as rules that can fail: no file over 300 lines, and no import from a
 * lower layer to a higher one. Layers, lowest first:
 *   base        errors, log, config, version, auth (tokens and identities: no networking of ours)
 *   core        store, clocks, presence table, room registry: no networking
 *   protocol    client frames: types and validation
 *   links       one authenticated, framed connection to a peer: handshake, auth, listener, dialler
 *   discovery   where peers are (addresses only)
 *   mesh        peer table and router over links: knows nothing of the store
 *   storage     the store's record on disk (DATA_DIR, lmdb), the directory's lock and node id
 *   replication replicator, cluster presence, the sync channel
 *   faces       gateway (client protocol), http (REST, /health, metrics, rejections) and webhooks
 *   node        chat-node wiring, cluster primary, the package's exports
 *   client      chatmesh/client (lib/client/): runs in browsers too, so imports nothing of the server
 * Type-only imports count: they couple the code as much as any other.
 */
import { expect } from 'chai';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const LIB = fileURLToPath(new URL('../../../lib/', import.meta.url));
const MAX_LINES = 300;

type Layer = 'base' | 'core' | 'protocol' | 'links' | 'discovery' | 'mesh' | 'storage' | 'replication' | 'faces' | 'node' | 'client';

/** What each layer may import (besides itself and node: modules and packages). */
const ALLOWED: Record<Layer, Layer[]> = {
  base: [],
  core: ['base'],
  protocol: ['base'],
  links: ['base'],
  discovery: ['base', 'links'],
  mesh: ['base', 'links'],
  storage: ['base', 'core'],
  replication: ['base', 'core', 'storage', 'mesh'],
  faces: ['base', 'core', 'protocol', 'mesh', 'replication'],
  node: ['base', 'core', 'protocol', 'links', 'discovery', 'mesh', 'storage', 'replication', 'faces'],
  client: [],
};

function layerOf(file: string): Layer {
  const [top] = file.split('/');
  switch (top) {
    case 'errors.ts':
    case 'log.ts':
    case 'config.ts':
    case 'config-env.ts':
    case 'version.ts':
    case 'tls-options.ts':
    case 'auth':
      return 'base';
    case 'core':
    case 'protocol':
    case 'links':
    case 'discovery':
    case 'mesh':
    case 'storage':
    case 'replication':
      return top;
    case 'gateway':
    case 'http':
    case 'webhooks':
      return 'faces';
    case 'chat-node.ts':
    case 'index.ts':
    case 'cluster':
      return 'node';
    case 'client':
      return 'client';
    default:
      throw new Error(`lib/${file} is in no layer: add it to test/unit/layers.test.ts`);
  }
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

/** Relative imports of a TypeScript source, resolved to paths under lib/ (.js → .ts). */
function importsOf(path: string): string[] {
  const text = readFileSync(path, 'utf8');
  const specs = [...text.matchAll(/(?:from|import)\s*\(?\s*'(\.[^']+)'/g)].map((m) => m[1]);
  return specs.map((spec) => relative(LIB, normalize(join(dirname(path), spec))).replace(/\.js$/, '.ts'));
}

describe('lib/ layout', () => {
  const files = filesUnder(LIB);
  const sources = files.filter((f) => f.endsWith('.ts')).map((f) => relative(LIB, f));

  it('has the sources (the test reads lib/ itself)', () => {
    expect(sources).to.include.members(['chat-node.ts', 'mesh/router.ts', 'links/link.ts', 'replication/sync-channel.ts']);
  });

  it(`has no file over ${MAX_LINES} lines`, () => {
    const long = files
      .map((f) => ({ file: relative(LIB, f), lines: readFileSync(f, 'utf8').split('\n').length - 1 }))
      .filter((f) => f.lines > MAX_LINES)
      .map((f) => `lib/${f.file}: ${f.lines} lines`);
    expect(long).to.deep.equal([]);
  });

  it('imports only from its own layer or the layers it sits on', () => {
    const wrong: string[] = [];
    for (const file of sources) {
      const layer = layerOf(file);
      for (const target of importsOf(join(LIB, file))) {
        if (target.startsWith('..')) {
          wrong.push(`lib/${file} imports ${target}, outside lib/`);
          continue;
        }
        const to = layerOf(target);
        if (to !== layer && !ALLOWED[layer].includes(to)) wrong.push(`lib/${file} (${layer}) imports lib/${target} (${to})`);
      }
    }
    expect(wrong).to.deep.equal([]);
  });

  it('keeps lib/client/ runnable in a browser: no package or node: import (node.ts alone loads ws, lazily)', () => {
    const wrong: string[] = [];
    for (const file of sources.filter((f) => f.startsWith('client/'))) {
      const text = readFileSync(join(LIB, file), 'utf8');
      for (const [, spec] of text.matchAll(/(?:from|import)\s*\(?\s*'([^.'][^']*)'/g)) {
        if (!(file === 'client/node.ts' && spec === 'ws' && text.includes("await import('ws')"))) wrong.push(`lib/${file} imports ${spec}`);
      }
    }
    expect(wrong).to.deep.equal([]);
  });
});
