/**
 * Fixtures shared by the multi-instance tests: a statically peered full mesh, and a pool
 * of test clients closed after each test.
 */
import { TestClient } from './client.js';
import { Instance, freePort } from './instance.js';
import { withTimeout } from './wait.js';

/** Starts one instance per port, each with every other port as a static peer; waits until every link is up. */
export async function fullMesh(n: number, env: Record<string, string> = {}): Promise<Instance[]> {
  const ports = await Promise.all(Array.from({ length: n }, () => freePort()));
  const instances = await Promise.all(
    ports.map((port) =>
      Instance.start({ port, env: { DISCOVERY: 'static', PEERS: ports.filter((p) => p !== port).map((p) => `ws://127.0.0.1:${p}`).join(','), ...env } }),
    ),
  );
  await Promise.all(instances.map((i) => i.waitForPeersUp(instances.filter((o) => o !== i).map((o) => o.nodeId), 10_000)));
  return instances;
}

/** Test clients opened during a test, closed together in afterEach. */
export class ClientPool {
  private readonly open: TestClient[] = [];

  async connect(instance: Instance): Promise<TestClient> {
    return this.track(await TestClient.connect(instance.url));
  }

  /** Adds a client opened some other way. */
  track(client: TestClient): TestClient {
    this.open.push(client);
    return client;
  }

  /** Closes every client; one that hangs does not hold up the rest of the cleanup. */
  async closeAll(): Promise<void> {
    await Promise.all(this.open.splice(0).map((c) => withTimeout(c.close(), 2000, 'a client to close').catch(() => {})));
  }
}
