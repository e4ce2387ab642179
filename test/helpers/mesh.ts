/**
 * Fixtures shared by the multi-instance tests: a statically peered full mesh, and a pool
 * of test clients closed after each test.
 */
import { TestClient } from './client.js';
import { Instance, freePort } from './instance.js';

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
    const client = await TestClient.connect(instance.url);
    this.open.push(client);
    return client;
  }

  async closeAll(): Promise<void> {
    await Promise.all(this.open.splice(0).map((c) => c.close()));
  }
}
