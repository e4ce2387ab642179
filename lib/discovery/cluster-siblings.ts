/**
 * Sibling workers of one `npm start` cluster, as peers: each worker tells the primary its
 * own mesh port over IPC, and the primary tells every worker the ports of all of them.
 * Siblings are always on this host, so they are reached over loopback.
 */
import type { DiscoverySink, PeerSource } from './peer-source.js';

/** IPC messages between the cluster primary and its workers. */
export type ClusterMessage =
  | { chatmesh: 'mesh-port'; port: number; nodeId: string }
  | { chatmesh: 'siblings'; ports: number[] };

export function isClusterMessage(value: unknown): value is ClusterMessage {
  return typeof value === 'object' && value !== null && typeof (value as { chatmesh?: unknown }).chatmesh === 'string';
}

export class ClusterSiblings implements PeerSource {
  readonly name = 'cluster';
  private known = new Set<string>();
  private onMessage: ((message: unknown) => void) | null = null;

  constructor(
    private readonly ownMeshPort: number,
    private readonly nodeId: string,
    private readonly ipc: NodeJS.Process = process,
  ) {}

  start(sink: DiscoverySink): void {
    this.onMessage = (message: unknown) => {
      if (!isClusterMessage(message) || message.chatmesh !== 'siblings') return;
      const next = new Set(message.ports.filter((p) => p !== this.ownMeshPort).map((p) => `ws://127.0.0.1:${p}`));
      for (const address of this.known) if (!next.has(address)) sink.remove(address, this.name);
      for (const address of next) if (!this.known.has(address)) sink.add(address, this.name);
      this.known = next;
    };
    this.ipc.on('message', this.onMessage);
    this.ipc.send?.({ chatmesh: 'mesh-port', port: this.ownMeshPort, nodeId: this.nodeId } satisfies ClusterMessage);
  }

  async close(): Promise<void> {
    if (this.onMessage) this.ipc.off('message', this.onMessage);
    this.onMessage = null;
  }
}
