import { hash } from 'node:crypto';

import { decode } from '@atcute/cbor';
import { fromUint8Array, type CarEntry } from '@atcute/car';

import { InputError } from './errors.ts';
import type { CommitEvent } from './frame.ts';

const DAG_CBOR = 0x71;
const SHA2_256 = 0x12;

export interface RecordOp {
  action: 'create' | 'update' | 'delete';
  collection: string;
  rkey: string;
  path: string;
  /** The record CID, '' on delete (the shape the Go at-kafka emits). */
  cid: string;
  /** The decoded record: links and bytes serialise to `$link` / `$bytes` JSON. null on delete. */
  record: Record<string, unknown> | null;
}

export type OpResult = { ok: true; op: RecordOp } | { ok: false; path: string; error: InputError };

/**
 * Splits a commit into its record operations, each with its record taken
 * from the commit's CAR and checked against the op's CID. A bad op fails
 * alone; the others of the commit still go through.
 */
export function commitOps(commit: CommitEvent): OpResult[] {
  const results: OpResult[] = new Array(commit.ops.length);
  let blocks: CarEntry[] | InputError | undefined;

  for (let i = 0; i < commit.ops.length; i++) {
    const op = commit.ops[i]!;
    const slash = op.path.indexOf('/');
    if (slash <= 0 || slash === op.path.length - 1 || op.path.indexOf('/', slash + 1) !== -1) {
      results[i] = { ok: false, path: op.path, error: new InputError('invalid-body', `invalid op path "${op.path}"`) };
      continue;
    }
    const collection = op.path.slice(0, slash);
    const rkey = op.path.slice(slash + 1);

    if (op.cid === null) {
      results[i] = { ok: true, op: { action: op.action, collection, rkey, path: op.path, cid: '', record: null } };
      continue;
    }

    // Parse the CAR lazily: a commit of only deletes never needs it.
    blocks ??= readBlocks(commit.blocks);
    if (blocks instanceof InputError) {
      results[i] = { ok: false, path: op.path, error: blocks };
      continue;
    }
    try {
      const record = readRecord(blocks, op.cid.bytes);
      results[i] = { ok: true, op: { action: op.action, collection, rkey, path: op.path, cid: op.cid.$link, record } };
    } catch (err) {
      results[i] = { ok: false, path: op.path, error: err as InputError };
    }
  }
  return results;
}

function readBlocks(car: Uint8Array): CarEntry[] | InputError {
  try {
    return Array.from(fromUint8Array(car));
  } catch (err) {
    return new InputError('invalid-car', `unreadable CAR: ${(err as Error).message}`, { cause: err });
  }
}

function readRecord(blocks: CarEntry[], cid: Uint8Array): Record<string, unknown> {
  const entry = blocks.find((b) => bytesEqual(b.cid.bytes, cid));
  if (entry === undefined) throw new InputError('missing-block', 'record block not in the commit CAR');
  const { codec, digest } = entry.cid;
  if (codec !== DAG_CBOR || digest.codec !== SHA2_256) {
    throw new InputError('cid-mismatch', `record CID has codec 0x${codec.toString(16)}, hash 0x${digest.codec.toString(16)}`);
  }
  // The CAR names the block by CID but nothing guarantees the bytes match it.
  const actual = hash('sha256', entry.bytes, 'buffer');
  if (!bytesEqual(actual, digest.contents)) throw new InputError('cid-mismatch', 'record bytes do not hash to the op CID');

  let record: unknown;
  try {
    record = decode(entry.bytes);
  } catch (err) {
    throw new InputError('invalid-record', `undecodable record: ${(err as Error).message}`, { cause: err });
  }
  if (typeof record !== 'object' || record === null || Array.isArray(record)) {
    throw new InputError('invalid-record', 'record is not a map');
  }
  return record as Record<string, unknown>;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = a.length - 1; i >= 0; i--) if (a[i] !== b[i]) return false;
  return true;
}
