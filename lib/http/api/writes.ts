/**
 * A REST write: committed through the replicator, answered once it is on disk (DATA_DIR)
 * and every linked peer acknowledged it (or the ack timeout passed), and only if this
 * instance stored it: a write the store refused is never a 2xx.
 */
import type { ApplyResult } from '../../core/conversation-store.js';
import type { StoreWrite } from '../../core/store-write.js';
import { ApiErrorCode } from '../../errors.js';
import type { Replicator } from '../../replication/replicator.js';
import { ApiError, storageUnavailable } from './errors.js';

export async function commitAndWait(replicator: Replicator, write: StoreWrite): Promise<void> {
  const { result, replicated, durable } = replicator.commit(write);
  refuseUnlessStored(result);
  try {
    await durable;
  } catch {
    throw storageUnavailable();
  }
  await replicated;
}

function refuseUnlessStored(result: ApplyResult | 'storage_unavailable'): void {
  if (result === 'applied' || result === 'duplicate') return;
  if (result === 'storage_unavailable') throw storageUnavailable();
  if (result === 'store_full') throw new ApiError(507, ApiErrorCode.StoreFull, 'the store is full: nothing was stored (MAX_STORE_BYTES or MAX_CONVERSATIONS)');
  throw new ApiError(409, ApiErrorCode.OutsideHistory, 'not stored: older than everything this conversation keeps');
}
