import { fromUint8Array } from '@atcute/car';
import { fromCidLink } from '@atcute/cbor';

import { InputError } from './errors.ts';
import type { SyncEvent } from './frame.ts';

/** The commit CID a `#sync` event asserts: the root of its one-block CAR. */
export function syncCommitCid(evt: SyncEvent): string {
  try {
    const car = fromUint8Array(evt.blocks);
    const root = car.roots[0];
    if (root === undefined) throw new Error('CAR has no root');
    // The whole CAR, not just its header: the commit block must be there (a sync is one block, so this is cheap).
    const want = fromCidLink(root).bytes;
    for (const entry of car) {
      const cid = entry.cid.bytes;
      if (cid.length === want.length && cid.every((b, i) => b === want[i])) return root.$link;
    }
    throw new Error('the commit block is not in the CAR');
  } catch (err) {
    throw new InputError('invalid-car', `unreadable #sync CAR: ${(err as Error).message}`, { cause: err });
  }
}
