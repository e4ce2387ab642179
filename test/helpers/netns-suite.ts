/**
 * The fixture every network-namespace suite needs: skip when namespaces are unavailable, and
 * after each test dump the output of a failed one, then close its clients, stop its
 * instances and delete its network (also when it failed). Call it inside `describe`.
 */
import type { TestClient } from './client.js';
import { stopAll, type Instance } from './instance.js';
import { TestNetwork, dumpInstanceOutput, requireNetns } from './netns.js';

export interface NetnsSuite {
  /** Instances the test started (dumped if it fails). */
  started: Instance[];
  /** Clients the test opened. */
  clients: TestClient[];
  /** A new network for this test, deleted after it. */
  network(): Promise<TestNetwork>;
}

export function netnsSuite(dumpLines = 60): NetnsSuite {
  let net: TestNetwork | null = null;
  const suite: NetnsSuite = {
    started: [],
    clients: [],
    network: async () => (net = await TestNetwork.create()),
  };
  before(async function () {
    await requireNetns(this);
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') dumpInstanceOutput(suite.started, dumpLines);
    await Promise.all(suite.clients.splice(0).map((c) => c.close().catch(() => {})));
    await stopAll();
    suite.started.length = 0;
    await net?.destroy();
    net = null;
  });
  return suite;
}
