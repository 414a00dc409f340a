import { hash } from 'node:crypto';

import { decode, BytesWrapper, CidLinkWrapper } from '@atcute/cbor';
import { fromUint8Array, type CarEntry } from '@atcute/car';

import { InputError } from './errors.ts';
import type { CommitEvent } from './frame.ts';

const DAG_CBOR = 0x71;
const SHA2_256 = 0x12;

/**
 * Deepest nesting of maps and arrays a record may have. The atproto data
 * model recommends 32 (indigo's and @atproto/lex-data's MAX_CBOR_NESTED_LEVELS,
 * enforced by the Bluesky PDS); 128 lets through what a laxer PDS accepted,
 * and stays far below what recursive code (JSON.stringify) survives: a record
 * nested thousands deep is otherwise a stack overflow, from one ~13 KB block.
 */
export const MAX_RECORD_DEPTH = 128;

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
  const reader = new CommitOpReader(commit);
  const results: OpResult[] = new Array(commit.ops.length);
  for (let i = 0; i < results.length; i++) results[i] = reader.read(i);
  return results;
}

/**
 * commitOps one op at a time: a record is decoded only when asked for, so a
 * commit whose ops all point at one large block never holds more than one
 * decoded copy of it. (A class, not a generator: this runs for every op.)
 */
export class CommitOpReader {
  readonly #commit: CommitEvent;
  #blocks: CarEntry[] | InputError | undefined;

  constructor(commit: CommitEvent) {
    this.#commit = commit;
  }

  read(i: number): OpResult {
    const op = this.#commit.ops[i]!;
    const slash = op.path.indexOf('/');
    if (slash <= 0 || slash === op.path.length - 1 || op.path.indexOf('/', slash + 1) !== -1) {
      return { ok: false, path: op.path, error: new InputError('invalid-body', `invalid op path "${op.path}"`) };
    }
    if (op.invalid !== undefined) return { ok: false, path: op.path, error: new InputError('invalid-body', op.invalid) };
    const collection = op.path.slice(0, slash);
    const rkey = op.path.slice(slash + 1);

    if (op.cid === null) return { ok: true, op: { action: op.action, collection, rkey, path: op.path, cid: '', record: null } };

    // Parse the CAR lazily: a commit of only deletes never needs it.
    const blocks = (this.#blocks ??= readBlocks(this.#commit.blocks));
    if (blocks instanceof InputError) return { ok: false, path: op.path, error: blocks };
    try {
      const record = readRecord(blocks, op.cid.bytes);
      return { ok: true, op: { action: op.action, collection, rkey, path: op.path, cid: op.cid.$link, record } };
    } catch (err) {
      // Whatever a hostile block makes the decoder throw, it is this op's problem only.
      const error = err instanceof InputError ? err : new InputError('invalid-record', `unreadable record: ${(err as Error).message}`, { cause: err });
      return { ok: false, path: op.path, error };
    }
  }
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

  // The data model has no floats; an integral one (1.0) would also come out as a JSON integer that
  // no longer hashes to the CID. DAG-CBOR writes floats as 0xfb + 8 bytes, so most records need no scan.
  if (entry.bytes.indexOf(0xfb) !== -1 && hasFloat(entry.bytes)) {
    throw new InputError('invalid-record', 'record has a float (the atproto data model allows none)');
  }
  let record: unknown;
  try {
    record = decode(entry.bytes);
  } catch (err) {
    throw new InputError('invalid-record', `undecodable record: ${(err as Error).message}`, { cause: err });
  }
  if (typeof record !== 'object' || record === null || Array.isArray(record) || record instanceof BytesWrapper || record instanceof CidLinkWrapper) {
    throw new InputError('invalid-record', 'record is not a map');
  }
  const problem = checkRecord(record, MAX_RECORD_DEPTH);
  if (problem !== undefined) throw new InputError('invalid-record', problem);
  return record as Record<string, unknown>;
}

/**
 * Why the record cannot be passed on as data-model JSON, or undefined: maps
 * and arrays nest at most `levels` deep, and no map is `{"$link": string}`
 * or `{"$bytes": string}` (its JSON would read back as a link or bytes, so
 * consumers could not tell them apart, nor hash the record back to its CID).
 * Recursion is safe: it stops at the limit.
 */
function checkRecord(value: unknown, levels: number): string | undefined {
  // Links and bytes decode to wrapper objects; they hold no nested data.
  if (value instanceof CidLinkWrapper || value instanceof BytesWrapper) return undefined;
  if (levels === 0) return `record nested deeper than ${MAX_RECORD_DEPTH} levels`;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      if (typeof v === 'object' && v !== null) {
        const problem = checkRecord(v, levels - 1);
        if (problem !== undefined) return problem;
      }
    }
    return undefined;
  }
  for (const key in value as Record<string, unknown>) {
    const v = (value as Record<string, unknown>)[key];
    if ((key === '$link' || key === '$bytes') && typeof v === 'string' && Object.keys(value as object).length === 1) {
      return `record has a map {"${key}": <string>}, which data-model JSON reads as a ${key.slice(1)}`;
    }
    if (typeof v === 'object' && v !== null) {
      const problem = checkRecord(v, levels - 1);
      if (problem !== undefined) return problem;
    }
  }
  return undefined;
}

/**
 * Whether a CBOR item sequence holds a float, walking item heads only (a
 * string's or bytes' payload is skipped, so its content cannot look like a
 * float). Not a decoder: malformed input just ends the walk, and the decoder
 * that runs next refuses it.
 */
function hasFloat(bytes: Uint8Array): boolean {
  let pos = 0;
  while (pos < bytes.length) {
    const head = bytes[pos++]!;
    const major = head >> 5;
    const info = head & 31;
    if (major === 7 && (info === 25 || info === 26 || info === 27)) return true;
    let arg = info;
    if (info >= 24 && info <= 27) {
      const size = 1 << (info - 24);
      if (pos + size > bytes.length) return false;
      arg = 0;
      for (let i = 0; i < size; i++) arg = arg * 256 + bytes[pos + i]!;
      pos += size;
    } else if (info > 27) {
      return false;
    }
    if (major === 2 || major === 3) pos += arg;
  }
  return false;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = a.length - 1; i >= 0; i--) if (a[i] !== b[i]) return false;
  return true;
}
