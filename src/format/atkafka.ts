import type { RecordOp } from '../atproto/commit-ops.ts';
import type { AccountEvent, IdentityEvent, InfoEvent, SyncEvent } from '../atproto/frame.ts';

/**
 * The at-kafka JSON shape (the one the Go at-kafka emits and users already
 * parse). Field order follows the Go structs. Pure: values in, JSON out.
 * `eventMetadata` is null until enrichment fills it.
 */

/** Kafka key of events that belong to no account (`#info`), as in the Go version. */
export const UNKNOWN_KEY = '<unknown>';

export function formatOperation(did: string, time: string, op: RecordOp, extra?: { rev: string; live: boolean }): string {
  return JSON.stringify({
    did,
    timestamp: time,
    eventMetadata: null,
    operation: {
      action: op.action,
      collection: op.collection,
      rkey: op.rkey,
      uri: `at://${did}/${op.collection}/${op.rkey}`,
      cid: op.cid,
      path: op.path,
      record: op.record,
      // Sources that say more (Tap: backfill or live, and the repo revision); left out when undefined.
      rev: extra?.rev,
      live: extra?.live,
    },
  });
}

export function formatAccount(evt: AccountEvent): string {
  return JSON.stringify({
    did: evt.did,
    timestamp: evt.time,
    eventMetadata: null,
    account: { active: evt.active, seq: evt.seq, status: evt.status },
  });
}

export function formatIdentity(evt: IdentityEvent): string {
  return JSON.stringify({
    did: evt.did,
    timestamp: evt.time,
    eventMetadata: null,
    // The Go struct has a non-optional string here; keep the type, say "no handle" with "".
    identity: { seq: evt.seq, handle: evt.handle ?? '' },
  });
}

/** `#info` has no time of its own: stamp it with when we received it. */
export function formatInfo(evt: InfoEvent, receivedAt: Date): string {
  return JSON.stringify({
    did: '',
    timestamp: receivedAt.toISOString(),
    eventMetadata: null,
    info: { name: evt.name, message: evt.message },
  });
}

/**
 * `#sync` (new in this implementation; the Go version drops it): the account
 * asserts its repo is now at `rev` with commit `commit`, so consumers that
 * hold repo state should refetch it.
 */
export function formatSync(evt: SyncEvent, commit: string | null): string {
  return JSON.stringify({
    did: evt.did,
    timestamp: evt.time,
    eventMetadata: null,
    sync: { seq: evt.seq, rev: evt.rev, commit },
  });
}

/** An identity event that also says whether the account is active (Tap); `seq` is the upstream event id. */
export function formatIdentityState(did: string, time: string, seq: number, handle: string, active: boolean, status: string): string {
  return JSON.stringify({
    did,
    timestamp: time,
    eventMetadata: null,
    identity: { seq, handle, active, status },
  });
}
