/**
 * `npm run chaos -- --seconds N --seed S [--seeds a,b,c] [--data-dir [DIR]] [--history FILE]`
 *
 * Runs one fault campaign per seed (campaign.ts), one after the other, prints the schedule,
 * progress and a human summary of each, then ONE final JSON line with every run's figures.
 * Exits 0 when every run is clean, 1 when a check failed, 2 on bad arguments or when a run
 * could not be carried out, 130/143 when interrupted (after tearing down its processes and
 * namespaces; a second signal exits at once, TestNetwork's hooks still removing namespaces).
 *
 * --history FILE writes the recorded history of each run (one JSON event a line, then the
 * final state) to study a failing seed.
 *
 * Needs root, iproute2 and nftables (like the namespace tests).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCampaign, type CampaignResult } from './campaign.js';

interface Args {
  seconds: number;
  seeds: number[];
  dataDir: string | null;
  tmpDataDir: boolean;
  history: string | null;
}

function usage(message: string): never {
  console.error(`chaos: ${message}\nusage: npm run chaos -- --seconds N --seed S [--seeds a,b,c] [--data-dir [DIR]] [--history FILE]`);
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const args: Args = { seconds: 30, seeds: [], dataDir: null, tmpDataDir: false, history: null };
  const int = (v: string | undefined, name: string) => {
    if (v === undefined || !/^\d+$/.test(v)) usage(`${name} needs a whole number, got ${JSON.stringify(v)}`);
    return Number(v);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case '--seconds':
        args.seconds = int(value(), '--seconds');
        break;
      case '--seed':
        args.seeds.push(int(value(), '--seed'));
        break;
      case '--seeds':
        args.seeds.push(...(value() ?? '').split(',').filter(Boolean).map((s) => int(s.trim(), '--seeds')));
        break;
      case '--data-dir': {
        const next = inline ?? (argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('--') ? argv[++i] : undefined);
        if (next) args.dataDir = next;
        else {
          args.dataDir = mkdtempSync(join(tmpdir(), 'chatmesh-chaos-'));
          args.tmpDataDir = true;
        }
        break;
      }
      case '--history':
        args.history = value() ?? usage('--history needs a file name');
        break;
      case '--help':
      case '-h':
        usage('help');
      // falls through (usage exits)
      default:
        usage(`unknown argument ${a}`);
    }
  }
  if (args.seconds < 5) usage('--seconds must be at least 5');
  if (args.seeds.length === 0) args.seeds.push(1);
  return args;
}

function summary(r: CampaignResult): string[] {
  const f = r.check.figures;
  const a = f.acknowledged;
  const mark = (n: number) => (n === 0 ? 'ok  ' : 'FAIL');
  const lines = [
    `== seed ${r.seed}, ${r.seconds} s${r.dataDir ? ', DATA_DIR' : ''}: ${r.ok ? 'CLEAN' : 'FAILED'} (${(r.durationMs / 1000).toFixed(1)} s end to end, converged ${(r.convergeMs / 1000).toFixed(1)} s after the heal)`,
    `   faults injected: ${Object.entries(f.faults).map(([k, n]) => `${k} ${n}`).join(', ')} (restarts ${f.restarts})`,
    `   writes acknowledged: ${a.total} (WebSocket messages ${a.wsMessages}, REST messages ${a.restMessages}, conversations ${a.conversations}, deletes ${a.deletes}); refused ${f.rejected}, unknown ${f.unknown}`,
    `   client connections ${f.connections}, resumes ${f.resumes} (gap:true ${f.gaps}), message frames ${f.messagesDelivered}`,
    `   ${mark(r.check.crashes.length)} instances that exited by themselves: ${r.check.crashes.length}`,
    `   ${mark(r.check.lost.length)} acknowledged writes lost: ${r.check.lost.length}`,
    `   ${mark(r.check.diverged.length)} conversations diverged: ${r.check.diverged.length}`,
    `   ${mark(r.check.resurrected.length)} deleted messages back: ${r.check.resurrected.length}`,
    `   ${mark(r.check.duplicates.length)} duplicate deliveries on a connection: ${r.check.duplicates.length}`,
    `   ${mark(r.check.brokenResumes.length)} messages missed by a client (broken resumes): ${r.check.brokenResumes.length}`,
  ];
  if (r.nemesisErrors.length) lines.push(`   FAIL nemesis errors: ${r.nemesisErrors.join('; ')}`);
  if (r.barrierFailures.length) lines.push(`   FAIL clients that never got their final echo: ${r.barrierFailures.join(', ')}`);
  if (Object.keys(r.clientErrors).length) lines.push(`   note: error frames clients got: ${JSON.stringify(r.clientErrors)}`);
  const show = <T>(title: string, list: T[], fmt: (x: T) => string) => {
    if (list.length === 0) return;
    lines.push(`   ${title}:`);
    for (const x of list.slice(0, 10)) lines.push(`     ${fmt(x)}`);
    if (list.length > 10) lines.push(`     ... and ${list.length - 10} more`);
  };
  show('crashes', r.check.crashes, (c) => `h${c.slot + 1} incarnation ${c.incarnation} exited at ${(c.t / 1000).toFixed(1)} s (code ${c.code}, signal ${c.signal})`);
  show('lost', r.check.lost, (l) => `${l.what} ${l.id} in ${l.conv} (${l.via}, acknowledged at ${(l.ackedAt / 1000).toFixed(1)} s; holders ${l.holders.map((h) => `h${h.slot + 1}#${h.incarnation}${h.survived ? ' (ran to the end)' : ' (killed)'}`).join(', ')})`);
  show('diverged', r.check.diverged, (d) => `${d.conv}: ${d.detail}`);
  show('resurrected', r.check.resurrected, (x) =>
    `${x.id} in ${x.conv} on ${x.slots.map((s) => `h${s + 1}`).join(', ')} (delete answered at ${(x.deletedAt / 1000).toFixed(1)} s; holders ${x.holders.map((h) => `h${h.slot + 1}#${h.incarnation}${h.survived ? ' (ran to the end)' : ' (killed)'}`).join(', ')})`,
  );
  show('duplicates', r.check.duplicates, (d) => `client c${d.client} connection ${d.conn}: ${d.id} ×${d.count}`);
  show('broken resumes', r.check.brokenResumes, (b) =>
    `client c${b.client} in ${b.room} never got ${b.missing.id} (ts ${b.missing.ts}); newest received ${b.newest.id}, excuse point ${b.excuse?.id ?? 'none'}; ` +
    (b.firstSeen ? `first seen at ${(b.firstSeen.t / 1000).toFixed(1)} s on h${b.firstSeen.slot + 1}; ` : '') +
    (b.resume ? `last resume that skipped it: connection ${b.resume.conn} at ${(b.resume.t / 1000).toFixed(1)} s to h${b.resume.slot + 1}#${b.resume.incarnation} since ${b.resume.since.id} (ts ${b.resume.since.ts}) said gap:false${b.heldAtResume ? ' although a client had received it from that same process before' : ''}` : 'no resume should have carried it: a live delivery missed it'),
  );
  if (r.crashOutput.length) lines.push(...r.crashOutput.map((l) => `   | ${l}`));
  return lines;
}

/** The figures of a run, for the JSON line. */
function figures(r: CampaignResult) {
  const f = r.check.figures;
  return {
    seed: r.seed,
    seconds: r.seconds,
    dataDir: r.dataDir,
    ok: r.ok,
    durationMs: r.durationMs,
    convergeMs: r.convergeMs,
    faults: f.faults,
    restarts: f.restarts,
    acknowledged: f.acknowledged,
    refused: f.rejected,
    unknown: f.unknown,
    connections: f.connections,
    resumes: f.resumes,
    gaps: f.gaps,
    crashed: r.check.crashes.length,
    lost: r.check.lost.length,
    diverged: r.check.diverged.length,
    resurrected: r.check.resurrected.length,
    duplicates: r.check.duplicates.length,
    brokenResumes: r.check.brokenResumes.length,
    nemesisErrors: r.nemesisErrors.length,
    barrierFailures: r.barrierFailures.length,
  };
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const controller = new AbortController();
  let interrupted: NodeJS.Signals | null = null;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.on(sig, () => {
      if (interrupted) {
        // Second signal: leave now (TestNetwork's exit hook still deletes the namespaces).
        process.exit(sig === 'SIGINT' ? 130 : 143);
      }
      interrupted = sig;
      console.log(`chaos: ${sig}, tearing down (again to leave at once)`);
      controller.abort();
      // Whatever happens, do not hang.
      setTimeout(() => process.exit(sig === 'SIGINT' ? 130 : 143), 15_000).unref();
    });
  }
  const results: CampaignResult[] = [];
  let broken: string | null = null;
  try {
    for (const seed of args.seeds) {
      if (controller.signal.aborted) break;
      try {
        const r = await runCampaign({
          seed,
          seconds: args.seconds,
          ...(args.dataDir ? { dataDir: join(args.dataDir, `seed-${seed}`) } : {}),
          log: (line) => console.log(line),
          signal: controller.signal,
        });
        results.push(r);
        if (args.history) {
          const file = args.seeds.length > 1 ? `${args.history}.seed-${seed}` : args.history;
          writeFileSync(file, [...r.events.map((e) => JSON.stringify(e)), JSON.stringify({ type: 'final', ...r.final })].join('\n') + '\n');
          console.log(`history written to ${file}`);
        }
        for (const line of summary(r)) console.log(line);
      } catch (err) {
        if (controller.signal.aborted) break;
        broken = `seed ${seed}: ${(err as Error).stack ?? err}`;
        console.log(`chaos: the campaign for seed ${seed} could not run: ${(err as Error).message}`);
        break;
      }
    }
  } finally {
    if (args.tmpDataDir && args.dataDir) rmSync(args.dataDir, { recursive: true, force: true });
  }
  const ok = results.length === args.seeds.length && results.every((r) => r.ok) && !broken && !interrupted;
  console.log(
    JSON.stringify({
      chaos: 'chatmesh',
      ok,
      ...(interrupted ? { interrupted } : {}),
      ...(broken ? { error: broken.split('\n')[0] } : {}),
      runs: results.map(figures),
      failingSeeds: results.filter((r) => !r.ok).map((r) => r.seed),
    }),
  );
  if (interrupted) return interrupted === 'SIGINT' ? 130 : 143;
  if (broken) return 2;
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(2);
  },
);
