import { decodeFirst, decode, BytesWrapper, CidLinkWrapper } from '@atcute/cbor';

import { InputError } from './errors.ts';

/** The relay refuses frames above this size; so do we, before decoding. */
export const MAX_FRAME_BYTES = 5_000_000;

export interface CommitOp {
  action: 'create' | 'update' | 'delete';
  path: string;
  /** null on delete */
  cid: CidLinkWrapper | null;
  /** Why this op alone is unusable (an unknown action, a create without a CID...); the commit's other ops still count. */
  invalid?: string;
}

export interface CommitEvent {
  kind: 'commit';
  seq: number;
  repo: string;
  rev: string;
  time: string;
  commit: CidLinkWrapper;
  ops: CommitOp[];
  /** CAR bytes holding the commit block, changed MST nodes and new records. */
  blocks: Uint8Array;
}

export interface SyncEvent {
  kind: 'sync';
  seq: number;
  did: string;
  rev: string;
  time: string;
  blocks: Uint8Array;
}

export interface IdentityEvent {
  kind: 'identity';
  seq: number;
  did: string;
  time: string;
  handle: string | undefined;
}

export interface AccountEvent {
  kind: 'account';
  seq: number;
  did: string;
  time: string;
  active: boolean;
  status: string | undefined;
}

export interface InfoEvent {
  kind: 'info';
  name: string;
  message: string | undefined;
}

/** `op: -1`: the server is about to close the stream. */
export interface ErrorEvent {
  kind: 'error';
  error: string;
  message: string | undefined;
}

/** A message type this version does not know; the spec says to ignore it. */
export interface UnknownEvent {
  kind: 'unknown';
  type: string;
  seq: number | undefined;
}

export type FirehoseEvent =
  | CommitEvent
  | SyncEvent
  | IdentityEvent
  | AccountEvent
  | InfoEvent
  | ErrorEvent
  | UnknownEvent;

/**
 * Decodes one `subscribeRepos` websocket message. Pure: throws InputError on
 * bad input and leaves logging and counting to the caller. Record blocks are
 * not decoded here (see commit-ops.ts), so a frame is decoded exactly once.
 */
export function decodeFrame(frame: Uint8Array): FirehoseEvent {
  // A plain Uint8Array view: the decoder slices it many times per frame, and
  // Buffer#subarray is several times slower than Uint8Array#subarray.
  const bytes = Buffer.isBuffer(frame) ? new Uint8Array(frame.buffer, frame.byteOffset, frame.byteLength) : frame;
  if (bytes.length > MAX_FRAME_BYTES) {
    throw new InputError('frame-too-large', `frame of ${bytes.length} bytes exceeds ${MAX_FRAME_BYTES}`);
  }
  let header: unknown;
  let body: unknown;
  try {
    const [first, rest] = decodeFirst(bytes);
    header = first;
    body = decode(rest);
  } catch (err) {
    throw new InputError('invalid-frame', `undecodable frame: ${(err as Error).message}`, { cause: err });
  }
  if (!isObject(header) || !isObject(body)) {
    throw new InputError('invalid-frame', 'frame header or body is not a map');
  }
  if (header.op === -1) {
    return { kind: 'error', error: str(body, 'error'), message: optStr(body, 'message') };
  }
  if (typeof header.op !== 'number') throw new InputError('invalid-frame', 'frame header has no op');
  // The spec says to ignore frames of an op it does not define, like unknown message types.
  if (header.op !== 1) return { kind: 'unknown', type: `op ${header.op}`, seq: undefined };
  if (typeof header.t !== 'string') throw new InputError('invalid-frame', 'frame header has no type');
  switch (header.t) {
    case '#commit':
      return commitEvent(body);
    case '#sync':
      return {
        kind: 'sync',
        seq: seqOf(body),
        did: did(body, 'did'),
        rev: str(body, 'rev'),
        time: str(body, 'time'),
        blocks: bytesOf(body, 'blocks'),
      };
    case '#identity':
      return { kind: 'identity', seq: seqOf(body), did: did(body, 'did'), time: str(body, 'time'), handle: optStr(body, 'handle') };
    case '#account':
      if (typeof body.active !== 'boolean') throw bodyError('active', body);
      return {
        kind: 'account',
        seq: seqOf(body),
        did: did(body, 'did'),
        time: str(body, 'time'),
        active: body.active,
        status: optStr(body, 'status'),
      };
    case '#info':
      return { kind: 'info', name: str(body, 'name'), message: optStr(body, 'message') };
    default:
      return { kind: 'unknown', type: header.t, seq: Number.isSafeInteger(body.seq) ? (body.seq as number) : undefined };
  }
}

function commitEvent(body: Record<string, unknown>): CommitEvent {
  const seq = seqOf(body);
  const repo = did(body, 'repo');
  const commit = body.commit;
  if (!(commit instanceof CidLinkWrapper)) throw bodyError('commit', body);
  const rawOps = body.ops;
  if (!Array.isArray(rawOps)) throw bodyError('ops', body);
  const ops: CommitOp[] = new Array(rawOps.length);
  for (let i = 0; i < rawOps.length; i++) {
    const op: unknown = rawOps[i];
    if (!isObject(op)) throw bodyError('ops', body);
    const { action, path, cid } = op;
    // Wrong types make the message itself malformed; a wrong value spoils only its op.
    if (typeof action !== 'string') throw bodyError('ops.action', body);
    if (typeof path !== 'string') throw bodyError('ops.path', body);
    if (cid !== null && cid !== undefined && !(cid instanceof CidLinkWrapper)) throw bodyError('ops.cid', body);
    const link = cid ?? null;
    let invalid: string | undefined;
    if (action !== 'create' && action !== 'update' && action !== 'delete') invalid = `unknown op action "${action.slice(0, 64)}"`;
    else if (action === 'delete' && link !== null) invalid = 'delete op with a CID';
    else if (action !== 'delete' && link === null) invalid = `${action} op without a CID`;
    ops[i] = invalid === undefined ? { action: action as CommitOp['action'], path, cid: link } : { action: action as CommitOp['action'], path, cid: link, invalid };
  }
  return {
    kind: 'commit',
    seq,
    repo,
    rev: str(body, 'rev'),
    time: str(body, 'time'),
    commit,
    ops,
    blocks: bytesOf(body, 'blocks'),
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function bodyError(field: string, body: Record<string, unknown>): InputError {
  const seq = Number.isSafeInteger(body.seq) ? ` (seq ${String(body.seq)})` : '';
  return new InputError('invalid-body', `missing or invalid field "${field}"${seq}`);
}

function seqOf(body: Record<string, unknown>): number {
  const seq = body.seq;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) throw bodyError('seq', body);
  return seq;
}

function str(body: Record<string, unknown>, field: string): string {
  const value = body[field];
  if (typeof value !== 'string') throw bodyError(field, body);
  return value;
}

function optStr(body: Record<string, unknown>, field: string): string | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw bodyError(field, body);
  return value;
}

/** The DID syntax of the atproto spec: `did:method:id`, method lowercase, id without a trailing ':' or '%'. */
const DID_SYNTAX = /^did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]$/;

function did(body: Record<string, unknown>, field: string): string {
  const value = str(body, field);
  // It becomes the Kafka key and the record URIs: anything else would be passed on as an account.
  if (value.length > 2048 || !DID_SYNTAX.test(value)) throw bodyError(field, body);
  return value;
}

function bytesOf(body: Record<string, unknown>, field: string): Uint8Array {
  const value = body[field];
  if (!(value instanceof BytesWrapper)) throw bodyError(field, body);
  return value.buf;
}
