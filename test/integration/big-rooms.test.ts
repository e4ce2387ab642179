/**
 * A join storm into one room over two real instances: presence batched per turn, counts only
 * above PRESENCE_MAX_MEMBERS (cluster-wide), `members` answering with the count, and the whole
 * list again once the room is back under the limit.
 */
import { expect } from 'chai';
import { WebSocket } from 'ws';
import { stopAll, type Instance } from '../helpers/instance.js';
import { fullMesh } from '../helpers/mesh.js';
import { poll, withTimeout } from '../helpers/wait.js';

const CLIENTS = 2000;
const MAX = 500;
const KEPT = 400;
const ROOM = 'big';

/** A light client: what a chat client would keep of presence, and how many frames it took. */
class Member {
  joined: Record<string, unknown> | null = null;
  /** The names this client knows are in the room (from joined, presence and members frames). */
  readonly names = new Set<string>();
  /** Every name it was ever told of while it had lists (the switch must come before MAX). */
  readonly everSeen = new Set<string>();
  presenceFrames = 0;
  occupancyFrames = 0;
  occupancyCounts: number[] = [];
  membersFrames = 0;
  /** The last count it was told (joined or occupancy), while the room is counts-only. */
  count = 0;
  closeCode: number | null = null;
  replies: Record<string, unknown>[] = [];

  constructor(readonly ws: WebSocket, readonly user: string) {
    ws.on('error', () => {});
    ws.on('close', (code) => (this.closeCode = code));
    ws.on('message', (data) => this.take(JSON.parse(data.toString())));
  }

  private take(f: Record<string, unknown>): void {
    if (f.type === 'joined') {
      this.joined = f;
      if (Array.isArray(f.members)) this.list(f.members as string[]);
      else this.count = f.count as number;
    } else if (f.type === 'presence') {
      this.presenceFrames++;
      const joined = f.joined ?? (f.event === 'join' ? [f.user] : []);
      const left = f.left ?? (f.event === 'leave' ? [f.user] : []);
      for (const name of joined as string[]) (this.names.add(name), this.everSeen.add(name));
      for (const name of left as string[]) this.names.delete(name);
    } else if (f.type === 'occupancy') {
      this.occupancyFrames++;
      this.occupancyCounts.push(f.count as number);
      this.count = f.count as number;
    } else if (f.type === 'members') {
      this.membersFrames++;
      this.replies.push(f);
      if (Array.isArray(f.members)) this.list(f.members as string[]);
    }
  }

  private list(names: string[]): void {
    this.names.clear();
    for (const name of names) (this.names.add(name), this.everSeen.add(name));
  }
}

async function open(instance: Instance, user: string): Promise<Member> {
  const ws = new WebSocket(instance.url, { perMessageDeflate: false });
  await withTimeout(new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject))), 10_000, `client ${user}`);
  return new Member(ws, user);
}

let members: Member[] = [];

afterEach(async () => {
  for (const m of members) m.ws.terminate();
  members = [];
  await stopAll();
});

describe('big rooms', () => {
  it(`a storm of ${CLIENTS} joins over two instances: batched presence, counts only above ${MAX}, members answers with the count`, async () => {
    const nodes = await fullMesh(2, { PRESENCE_MAX_MEMBERS: String(MAX), LOG_LEVEL: 'info' });
    for (let i = 0; i < CLIENTS; i += 200) {
      members.push(...(await Promise.all(Array.from({ length: 200 }, (_, k) => open(nodes[(i + k) % 2], `u${i + k}`)))));
    }
    // Every join sent at once: the storm.
    for (const m of members) m.ws.send(JSON.stringify({ type: 'join', room: ROOM, user: m.user }));
    await poll(() => members.every((m) => m.joined), { timeoutMs: 20_000, what: 'every client to be joined' });
    // The last count reaches everyone (the throttle always sends the last one).
    await poll(() => members.every((m) => m.count === CLIENTS), { timeoutMs: 10_000, what: `every client to know the count ${CLIENTS}` });

    expect(members.filter((m) => m.closeCode !== null), 'clients cut').to.have.length(0);
    const frames = members.map((m) => m.presenceFrames + m.occupancyFrames);
    const most = Math.max(...frames);
    // One frame per join would be up to MAX - 1 presence frames for the first members.
    expect(most, `presence + occupancy frames per client (most ${most})`).to.be.below(MAX / 5);
    // The switch: no client was told more than MAX names, occupancy only ever above MAX.
    expect(Math.max(...members.map((m) => m.everSeen.size))).to.be.at.most(MAX);
    expect(members.flatMap((m) => m.occupancyCounts).every((c) => c > MAX)).to.equal(true);
    const listed = members.filter((m) => Array.isArray(m.joined!.members));
    const counted = members.filter((m) => m.joined!.truncated === true);
    expect(listed.length + counted.length).to.equal(CLIENTS);
    // Each instance decides on the count it knows, and the other's joins reach it a moment later:
    // up to MAX joins per instance may still get the list.
    expect(listed.length).to.be.within(1, 2 * MAX);
    for (const m of listed) expect((m.joined!.members as string[]).length).to.be.at.most(MAX);
    for (const m of counted) expect(m.joined!.count as number).to.be.above(MAX);

    // members: the cluster count and the flag, on both instances.
    for (const m of members.slice(0, 2)) {
      m.ws.send(JSON.stringify({ type: 'members', room: ROOM }));
      await poll(() => m.replies.length > 0, { what: 'the members reply' });
      expect(m.replies[0]).to.deep.equal({ type: 'members', room: ROOM, count: CLIENTS, truncated: true });
    }

    // Back under the limit: the whole list once, then events; every kept client ends with the right list.
    const gone = members.splice(KEPT);
    for (const m of gone) m.ws.close();
    const expected = members.map((m) => m.user).sort();
    await poll(() => members.every((m) => m.names.size === KEPT), { timeoutMs: 15_000, what: `every kept client to list ${KEPT} names` });
    for (const m of members) expect([...m.names].sort()).to.deep.equal(expected);
    // The list at the switch back (and the two replies above).
    members.forEach((m, i) => expect(m.membersFrames, m.user).to.equal(i < 2 ? 2 : 1));
    expect(members.filter((m) => m.closeCode !== null), 'clients cut').to.have.length(0);
  });
});
