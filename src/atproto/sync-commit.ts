import { fromUint8Array } from '@atcute/car';

import { InputError } from './errors.ts';
import type { SyncEvent } from './frame.ts';

/** The commit CID a `#sync` event asserts: the root of its one-block CAR. */
export function syncCommitCid(evt: SyncEvent): string {
  try {
    const root = fromUint8Array(evt.blocks).roots[0];
    if (root === undefined) throw new Error('CAR has no root');
    return root.$link;
  } catch (err) {
    throw new InputError('invalid-car', `unreadable #sync CAR: ${(err as Error).message}`, { cause: err });
  }
}
