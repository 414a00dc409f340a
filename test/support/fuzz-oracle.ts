// The fuzzer's oracle: what a relay frame is, judged from the protocol alone
// (atproto event-stream, subscribeRepos lexicon, repository and data-model
// specs; DASL CAR/CID and DRISL, which the repository spec adopts), never by
// calling atkafka. Built on the fuzzer's own strict decoder (fuzz-cbor.ts),
// cross-checked with @ipld/dag-cbor and @ipld/car, which must agree with it on
// everything it accepts.
//
// What it judges, and at which grain (the grain decides what else survives):
// - the frame: size <= 5,000,000 bytes; exactly two strict DRISL items, each a
//   map; no floats and only 64-bit integers anywhere (data model); header `op`
//   an integer, `t` a string when op is 1; unknown op or t: ignored (spec);
// - the message (whole frame invalid): the fields a consumer reads, with their
//   lexicon types: seq (integer, 1 <= seq < 2^53), repo/did (DID syntax), commit
//   (link), rev, time (strings), blocks (bytes), ops (array of maps with string
//   action and path, cid null or a link); optional strings absent or strings;
// - each op (only that op invalid): action create/update/delete; path a valid
//   NSID "/" record key; deletes have a null cid, creates and updates a link;
//   then the record: the CAR parses (DASL CAR), holds a block with that CID,
//   the CID is dag-cbor + sha-256 and the bytes hash to it, and the block is
//   one strict DRISL map nested at most 128 deep (the record map is level 1),
//   with no floats, no integers beyond 64 bits, and no map the data-model JSON
//   would misread as a link or bytes ({"$link": "<string>"}, {"$bytes": ...}).
// Not judged (documented, not forgotten): datetime, TID and handle syntax,
// deprecated or unused commit fields (since, rebase, tooBig, blobs, prevData,
// op prev), lexicon size limits (ops <= 200, blocks), MST and signatures (the
// relay verifies them), whether non-record blocks hash to their CIDs.
import { createHash } from 'node:crypto';

import { CarBufferReader } from '@ipld/car/buffer-reader';
import * as dagCbor from '@ipld/dag-cbor';
import { CID } from 'multiformats/cid';

import { CborError, DAG_CBOR, decodeStrict, isDaslCid, linkCid, mapGet, type CborValue } from './fuzz-cbor.ts';

/** The metric labels of README's atkafka_invalid_input (its public contract, restated here). */
export type OracleReason = 'frame-too-large' | 'invalid-frame' | 'invalid-body' | 'invalid-car' | 'missing-block' | 'cid-mismatch' | 'invalid-record';

export const MAX_FRAME_BYTES = 5_000_000;
export const MAX_RECORD_DEPTH = 128;
/** Beyond this, @ipld/dag-cbor (recursive) is not asked to cross-check. */
const CROSS_CHECK_DEPTH = 500;

export interface Invalid {
  reason: OracleReason;
  /** Which rule decided, e.g. "record.depth"; disagreement signatures group by it. */
  rule: string;
  detail: string;
}

export interface OracleOp {
  action: string;
  path: string;
  /** The op's CID as a string, null when the op has none. */
  cid: string | null;
  /** Undefined when the op is valid. */
  invalid: Invalid | undefined;
  /** For valid creates and updates: the record as decoded by @ipld/dag-cbor. */
  record?: unknown;
  /** Valid, but worth knowing: "record.int53" (integers beyond 2^53, legal in the data model's 64 bits). */
  notes?: string[];
}

export type OracleVerdict =
  | ({ kind: 'invalid' } & Invalid)
  | { kind: 'ignored'; rule: 'header.op.unknown' | 'header.t.unknown'; type: string | undefined; seq: number | undefined }
  | { kind: 'error'; error: string; message: string | undefined }
  | { kind: 'info'; name: string; message: string | undefined }
  | { kind: 'commit'; seq: number; did: string; time: string; rev: string; ops: OracleOp[] }
  | { kind: 'identity'; seq: number; did: string; time: string; handle: string | undefined }
  | { kind: 'account'; seq: number; did: string; time: string; active: boolean; status: string | undefined }
  /** `invalid` set: the event is read (its seq counts) but its CAR gives no commit. */
  | { kind: 'sync'; seq: number; did: string; time: string; rev: string; commit: string | undefined; invalid: Invalid | undefined }
  /** The oracle cannot judge (its own cross-check failed): not compared, counted. */
  | { kind: 'undecided'; why: string };

class Reject extends Error {
  readonly invalid: Invalid;
  constructor(reason: OracleReason, rule: string, detail: string) {
    super(`${rule}: ${detail}`);
    this.invalid = { reason, rule, detail };
  }
}

class Undecided extends Error {}

export function judgeFrame(frame: Uint8Array): OracleVerdict {
  try {
    return judge(frame);
  } catch (err) {
    if (err instanceof Reject) return { kind: 'invalid', ...err.invalid };
    if (err instanceof Undecided) return { kind: 'undecided', why: err.message };
    throw err;
  }
}

function judge(frame: Uint8Array): OracleVerdict {
  if (frame.length > MAX_FRAME_BYTES) throw new Reject('frame-too-large', 'frame.size', `${frame.length} bytes`);
  const header = strictItem(frame, 0, 'invalid-frame', 'frame.header');
  const body = strictItem(frame, header.end, 'invalid-frame', 'frame.body');
  if (body.end !== frame.length) throw new Reject('invalid-frame', 'frame.trailing', `${frame.length - body.end} bytes after the body`);
  for (const [part, d] of [['header', header], ['body', body]] as const) {
    if (d.floats) throw new Reject('invalid-frame', `frame.${part}.float`, 'floats are not in the atproto data model');
    if (d.beyondInt64) throw new Reject('invalid-frame', `frame.${part}.int64`, 'integer beyond 64 bits');
    crossCheck(frame.subarray(part === 'header' ? 0 : header.end, d.end), d, `frame ${part}`);
  }
  const h = header.value;
  const b = body.value;
  if (h.t !== 'map') throw new Reject('invalid-frame', 'header.not-map', `header is ${h.t}`);
  if (b.t !== 'map') throw new Reject('invalid-frame', 'body.not-map', `body is ${b.t}`);

  const op = mapGet(h, 'op');
  if (op === undefined) throw new Reject('invalid-frame', 'header.op.missing', 'header has no op');
  if (op.t !== 'int') throw new Reject('invalid-frame', 'header.op.type', `op is ${op.t}`);
  if (op.v === -1n) {
    return { kind: 'error', error: reqString(b, 'error', 'error'), message: optString(b, 'message', 'error') };
  }
  if (op.v !== 1n) return { kind: 'ignored', rule: 'header.op.unknown', type: undefined, seq: undefined };
  const t = mapGet(h, 't');
  if (t?.t !== 'text') throw new Reject('invalid-frame', 'header.t', `op 1 with t of type ${t?.t ?? 'missing'}`);

  switch (t.v) {
    case '#commit':
      return commit(b);
    case '#identity':
      return { kind: 'identity', seq: seq(b, 'identity'), did: did(b, 'did', 'identity'), time: reqString(b, 'time', 'identity'), handle: optString(b, 'handle', 'identity') };
    case '#account': {
      const active = mapGet(b, 'active');
      const s = seq(b, 'account');
      const d = did(b, 'did', 'account');
      const time = reqString(b, 'time', 'account');
      if (active?.t !== 'simple' || (active.v !== 20 && active.v !== 21)) throw new Reject('invalid-body', 'account.active', 'active is not a boolean');
      return { kind: 'account', seq: s, did: d, time, active: active.v === 21, status: optString(b, 'status', 'account') };
    }
    case '#sync':
      return sync(b);
    case '#info':
      return { kind: 'info', name: reqString(b, 'name', 'info'), message: optString(b, 'message', 'info') };
    default: {
      const s = mapGet(b, 'seq');
      const n = s?.t === 'int' && s.v >= 1n && s.v < 2n ** 53n ? Number(s.v) : undefined;
      return { kind: 'ignored', rule: 'header.t.unknown', type: t.v, seq: n };
    }
  }
}

function commit(b: CborValue): OracleVerdict {
  const s = seq(b, 'commit');
  const repo = did(b, 'repo', 'commit');
  const c = mapGet(b, 'commit');
  if (linkCid(c) === undefined) throw new Reject('invalid-body', 'commit.commit', `commit is ${c?.t ?? 'missing'}`);
  const rev = reqString(b, 'rev', 'commit');
  const time = reqString(b, 'time', 'commit');
  const blocks = mapGet(b, 'blocks');
  if (blocks?.t !== 'bytes') throw new Reject('invalid-body', 'commit.blocks', `blocks is ${blocks?.t ?? 'missing'}`);
  const rawOps = mapGet(b, 'ops');
  if (rawOps?.t !== 'array') throw new Reject('invalid-body', 'commit.ops', `ops is ${rawOps?.t ?? 'missing'}`);

  // Message-level types first: a lexicon violation in any op makes the whole message invalid.
  const shaped = rawOps.v.map((o) => {
    if (o.t !== 'map') throw new Reject('invalid-body', 'commit.ops.item', `op is ${o.t}`);
    const action = mapGet(o, 'action');
    if (action?.t !== 'text') throw new Reject('invalid-body', 'commit.ops.action', `action is ${action?.t ?? 'missing'}`);
    const path = mapGet(o, 'path');
    if (path?.t !== 'text') throw new Reject('invalid-body', 'commit.ops.path', `path is ${path?.t ?? 'missing'}`);
    const cid = mapGet(o, 'cid');
    if (cid === undefined) throw new Reject('invalid-body', action.v === 'delete' ? 'commit.ops.cid.missing-on-delete' : 'commit.ops.cid.missing', 'op has no cid (required, nullable)');
    const isNull = cid.t === 'simple' && cid.v === 22;
    if (!isNull && linkCid(cid) === undefined) throw new Reject('invalid-body', 'commit.ops.cid.type', `cid is ${cid.t}`);
    return { action: action.v, path: path.v, cid: isNull ? null : linkCid(cid)! };
  });

  let car: ParsedCar | Reject | undefined;
  const ops: OracleOp[] = shaped.map(({ action, path, cid }) => {
    const cidStr = cid === null ? null : CID.decode(cid).toString();
    const bad = (reason: OracleReason, rule: string, detail: string): OracleOp => ({ action, path, cid: cidStr, invalid: { reason, rule, detail } });
    if (action !== 'create' && action !== 'update' && action !== 'delete') return bad('invalid-body', 'op.action.unknown', `action "${action}"`);
    const pathProblem = checkPath(path);
    if (pathProblem !== undefined) return bad('invalid-body', `op.path.${pathProblem.rule}`, pathProblem.detail);
    if (action === 'delete') {
      if (cid !== null) return bad('invalid-body', 'op.delete.cid', 'delete with a record CID');
      return { action, path, cid: null, invalid: undefined };
    }
    if (cid === null) return bad('invalid-body', 'op.cid.null', `${action} without a record CID`);
    if (cid[1] !== DAG_CBOR) return bad('cid-mismatch', 'op.cid.codec', `record CID codec 0x${cid[1]!.toString(16)}`);
    car ??= parseCarOrReject(blocks.v);
    if (car instanceof Reject) return { action, path, cid: cidStr, invalid: car.invalid };
    const block = car.blocks.find((bl) => bytesEqual(bl.cid, cid));
    if (block === undefined) return bad('missing-block', 'op.block.missing', 'record block not in the CAR');
    const digest = createHash('sha256').update(block.bytes).digest();
    if (!bytesEqual(digest, cid.subarray(4))) return bad('cid-mismatch', 'op.block.hash', 'record bytes do not hash to the CID');
    try {
      const record = judgeRecord(block.bytes);
      const notes = hasUnsafeInteger(record) ? ['record.int53'] : undefined;
      return { action, path, cid: cidStr, invalid: undefined, record, ...(notes ? { notes } : {}) };
    } catch (err) {
      if (err instanceof Reject) return { action, path, cid: cidStr, invalid: err.invalid };
      throw err;
    }
  });
  return { kind: 'commit', seq: s, did: repo, time, rev, ops };
}

function sync(b: CborValue): OracleVerdict {
  const s = seq(b, 'sync');
  const d = did(b, 'did', 'sync');
  const rev = reqString(b, 'rev', 'sync');
  const time = reqString(b, 'time', 'sync');
  const blocks = mapGet(b, 'blocks');
  if (blocks?.t !== 'bytes') throw new Reject('invalid-body', 'sync.blocks', `blocks is ${blocks?.t ?? 'missing'}`);
  const car = parseCarOrReject(blocks.v);
  const event = { kind: 'sync' as const, seq: s, did: d, time, rev };
  if (car instanceof Reject) return { ...event, commit: undefined, invalid: car.invalid };
  const root = car.roots[0];
  // The lexicon: the CAR holds the commit block, and its CID is the first root.
  if (root === undefined) return { ...event, commit: undefined, invalid: { reason: 'invalid-car', rule: 'sync.car.no-root', detail: 'CAR has no root' } };
  if (!car.blocks.some((bl) => bytesEqual(bl.cid, root))) {
    return { ...event, commit: undefined, invalid: { reason: 'invalid-car', rule: 'sync.car.root-block', detail: 'commit block not in the CAR' } };
  }
  return { ...event, commit: CID.decode(root).toString(), invalid: undefined };
}

/** A record block: one strict DRISL map within the data model and the depth limit; its @ipld/dag-cbor value. */
function judgeRecord(block: Uint8Array): unknown {
  const d = strictItem(block, 0, 'invalid-record', 'record.cbor');
  if (d.end !== block.length) throw new Reject('invalid-record', 'record.trailing', `${block.length - d.end} bytes after the record`);
  if (d.value.t !== 'map') throw new Reject('invalid-record', `record.not-map.${d.value.t === 'tag' ? 'link' : d.value.t}`, `record is ${d.value.t}`);
  if (d.depth > MAX_RECORD_DEPTH) throw new Reject('invalid-record', 'record.depth', `nested ${d.depth} deep`);
  if (d.floats) throw new Reject('invalid-record', 'record.float', 'floats are not in the atproto data model');
  if (d.beyondInt64) throw new Reject('invalid-record', 'record.int64', 'integer beyond 64 bits');
  const ambiguous = findAmbiguousJson(d.value);
  if (ambiguous !== undefined) throw new Reject('invalid-record', 'record.ambiguous-json', `a map {"${ambiguous}": <string>} reads as a ${ambiguous.slice(1)} in data-model JSON`);
  return crossCheck(block, d, 'record');
}

/** {"$link": "<string>"} or {"$bytes": "<string>"}: data-model JSON would turn it into a link or bytes. */
function findAmbiguousJson(v: CborValue): string | undefined {
  const stack = [v];
  while (stack.length > 0) {
    const x = stack.pop()!;
    if (x.t === 'array') for (const item of x.v) stack.push(item);
    else if (x.t === 'map') {
      if (x.v.length === 1) {
        const [k, val] = x.v[0]!;
        if (k.t === 'text' && (k.v === '$link' || k.v === '$bytes') && val.t === 'text') return k.v;
      }
      for (const [, val] of x.v) stack.push(val);
    }
  }
  return undefined;
}

// ---------------------------------------------------------------- CAR (DASL CAR)

interface ParsedCar {
  roots: Uint8Array[];
  blocks: { cid: Uint8Array; bytes: Uint8Array }[];
}

function parseCarOrReject(car: Uint8Array): ParsedCar | Reject {
  try {
    return parseCar(car);
  } catch (err) {
    if (err instanceof Reject) return err;
    throw err;
  }
}

/** The steps of DASL CAR's "parse a CAR", then @ipld/car must read the same blocks. */
export function parseCar(car: Uint8Array): ParsedCar {
  const fail = (rule: string, detail: string): never => {
    throw new Reject('invalid-car', `car.${rule}`, detail);
  };
  let p = 0;
  const readVarint = (what: string): number => {
    const r = uvarint(car, p);
    if (typeof r === 'string') return fail(`varint.${r}`, `${what} length at ${p}`);
    p = r.next;
    return r.value;
  };
  const headerLength = readVarint('header');
  if (headerLength === 0) fail('header.empty', 'header length 0');
  if (headerLength > car.length - p) fail('header.truncated', `header of ${headerLength} bytes, ${car.length - p} left`);
  const headerBytes = car.subarray(p, p + headerLength);
  let header;
  try {
    header = decodeStrict(headerBytes);
  } catch (err) {
    if (err instanceof CborError) fail(`header.cbor.${err.rule}`, err.message);
    throw err;
  }
  if (header.end !== headerBytes.length) fail('header.trailing', 'bytes after the header map');
  if (header.value.t !== 'map') fail('header.not-map', `header is ${header.value.t}`);
  const version = mapGet(header.value, 'version');
  if (version?.t !== 'int' || version.v !== 1n) fail('header.version', 'version is not integer 1');
  const rootsValue = mapGet(header.value, 'roots');
  if (rootsValue?.t !== 'array') fail('header.roots', 'roots is not an array');
  const roots = (rootsValue as { v: CborValue[] }).v.map((r) => linkCid(r) ?? fail('header.roots', 'a root is not a link'));
  p += headerLength;
  const p0 = p;

  const blocks: ParsedCar['blocks'] = [];
  while (p < car.length) {
    const length = readVarint('block');
    if (length < 36) fail('block.short', `block of ${length} bytes cannot hold a CID`);
    if (length > car.length - p) fail('block.truncated', `block of ${length} bytes, ${car.length - p} left`);
    const cid = car.subarray(p, p + 36);
    if (!isDaslCid(cid)) fail('block.cid', `block CID ${Buffer.from(cid.subarray(0, 4)).toString('hex')}... is not a DASL CID`);
    blocks.push({ cid, bytes: car.subarray(p + 36, p + length) });
    p += length;
  }

  // DASL lets the header carry other metadata; @ipld/car's CARv1 schema does not: give it just roots and version.
  const onlyRootsAndVersion = (header.value as { v: [CborValue, CborValue][] }).v.every(([k]) => k.t === 'text' && (k.v === 'roots' || k.v === 'version'));
  const forIpld = onlyRootsAndVersion ? car : plainHeaderCar(roots, car.subarray(p0));
  let theirs;
  try {
    theirs = CarBufferReader.fromBytes(forIpld).blocks();
  } catch (err) {
    throw new Undecided(`@ipld/car refuses a CAR the oracle accepts: ${(err as Error).message}`);
  }
  if (theirs.length !== blocks.length || theirs.some((bl, i) => !bytesEqual(bl.cid.bytes, blocks[i]!.cid) || !bytesEqual(bl.bytes, blocks[i]!.bytes))) {
    throw new Undecided('@ipld/car reads other blocks than the oracle');
  }
  return { roots, blocks };
}

function plainHeaderCar(roots: Uint8Array[], blockSection: Uint8Array): Uint8Array {
  const header = dagCbor.encode({ roots: roots.map((r) => CID.decode(r)), version: 1 });
  const length = [];
  for (let n = header.length; ; n >>= 7) {
    if (n < 0x80) {
      length.push(n);
      break;
    }
    length.push((n & 0x7f) | 0x80);
  }
  return Buffer.concat([Uint8Array.from(length), header, blockSection]);
}

/** A multiformats unsigned varint: minimal, at most 9 bytes, within 2^53 (our lengths). */
function uvarint(buf: Uint8Array, at: number): { value: number; next: number } | 'truncated' | 'too-long' | 'non-minimal' | 'too-large' {
  let value = 0n;
  for (let i = 0; i < 9; i++) {
    const b = buf[at + i];
    if (b === undefined) return 'truncated';
    value |= BigInt(b & 0x7f) << BigInt(7 * i);
    if ((b & 0x80) === 0) {
      if (b === 0 && i > 0) return 'non-minimal';
      if (value > BigInt(Number.MAX_SAFE_INTEGER)) return 'too-large';
      return { value: Number(value), next: at + i + 1 };
    }
  }
  return 'too-long';
}

// ---------------------------------------------------------------- fields and syntax

function strictItem(buf: Uint8Array, offset: number, reason: OracleReason, rule: string) {
  try {
    return decodeStrict(buf, offset);
  } catch (err) {
    if (err instanceof CborError) throw new Reject(reason, `${rule}.${err.rule}`, err.message);
    throw err;
  }
}

/** @ipld/dag-cbor must read what the oracle accepted and write it back byte for byte. */
function crossCheck(bytes: Uint8Array, d: { value: CborValue; depth: number; floats: boolean }, what: string): unknown {
  if (d.depth > CROSS_CHECK_DEPTH || d.floats) return undefined;
  let value: unknown;
  try {
    value = dagCbor.decode(bytes);
  } catch (err) {
    throw new Undecided(`@ipld/dag-cbor refuses a ${what} the oracle accepts: ${(err as Error).message}`);
  }
  if (!bytesEqual(dagCbor.encode(value), bytes)) {
    // cborg drops a leading U+FEFF from text strings (its TextDecoder strips BOMs); the oracle keeps it, as UTF-8 says.
    if (hasLeadingBom(d.value)) return undefined;
    throw new Undecided(`@ipld/dag-cbor re-encodes a ${what} differently`);
  }
  return value;
}

/** @ipld/dag-cbor gives integers beyond 2^53 as bigint. */
function hasUnsafeInteger(v: unknown): boolean {
  const stack = [v];
  while (stack.length > 0) {
    const x = stack.pop();
    if (typeof x === 'bigint') return true;
    if (x instanceof Uint8Array || CID.asCID(x) !== null) continue;
    if (Array.isArray(x)) for (const item of x) stack.push(item);
    else if (typeof x === 'object' && x !== null) for (const item of Object.values(x)) stack.push(item);
  }
  return false;
}

function hasLeadingBom(v: CborValue): boolean {
  const stack = [v];
  while (stack.length > 0) {
    const x = stack.pop()!;
    if (x.t === 'text' && x.v.startsWith('\ufeff')) return true;
    if (x.t === 'array') for (const item of x.v) stack.push(item);
    else if (x.t === 'map') for (const [k, val] of x.v) stack.push(k, val);
  }
  return false;
}

function seq(b: CborValue, ctx: string): number {
  const s = mapGet(b, 'seq');
  if (s?.t !== 'int') throw new Reject('invalid-body', `${ctx}.seq.type`, `seq is ${s?.t ?? 'missing'}`);
  // Event-stream spec: positive (non-zero), below 2^53.
  if (s.v === 0n) throw new Reject('invalid-body', `${ctx}.seq.zero`, 'seq 0');
  if (s.v < 1n || s.v >= 2n ** 53n) throw new Reject('invalid-body', `${ctx}.seq.range`, `seq ${s.v}`);
  return Number(s.v);
}

function reqString(b: CborValue, field: string, ctx: string): string {
  const v = mapGet(b, field);
  if (v?.t !== 'text') throw new Reject('invalid-body', `${ctx}.${field}`, `${field} is ${v?.t ?? 'missing'}`);
  return v.v;
}

/** Optional and not nullable in the lexicon: absent or a string (null is a value, and not a string). */
function optString(b: CborValue, field: string, ctx: string): string | undefined {
  const v = mapGet(b, field);
  if (v === undefined) return undefined;
  if (v.t === 'simple' && v.v === 22) throw new Reject('invalid-body', `${ctx}.${field}.null`, `${field} is null`);
  if (v.t !== 'text') throw new Reject('invalid-body', `${ctx}.${field}`, `${field} is ${v.t}`);
  return v.v;
}

const DID_RE = /^did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]$/;

function did(b: CborValue, field: string, ctx: string): string {
  const v = reqString(b, field, ctx);
  if (!v.startsWith('did:')) throw new Reject('invalid-body', `${ctx}.${field}.prefix`, `"${v.slice(0, 80)}" is not a DID`);
  if (v.length > 2048 || !DID_RE.test(v)) throw new Reject('invalid-body', `${ctx}.${field}.syntax`, `"${v.slice(0, 80)}" is not a DID`);
  return v;
}

const NSID_RE = /^[a-zA-Z]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)+(\.[a-zA-Z][a-zA-Z0-9]{0,62})$/;
const RKEY_RE = /^[a-zA-Z0-9_~.:-]{1,512}$/;

/** Repository spec: "<NSID>/<record key>", exactly two segments ("shape"), each of valid syntax. */
export function checkPath(path: string): { rule: 'shape' | 'syntax'; detail: string } | undefined {
  const parts = path.split('/');
  if (parts.length !== 2 || parts[0] === '' || parts[1] === '') return { rule: 'shape', detail: `"${path.slice(0, 80)}" is not collection/rkey` };
  const [collection, rkey] = parts as [string, string];
  if (collection.length > 317 || !NSID_RE.test(collection)) return { rule: 'syntax', detail: `collection "${collection.slice(0, 80)}" is not an NSID` };
  if (!RKEY_RE.test(rkey) || rkey === '.' || rkey === '..') return { rule: 'syntax', detail: `record key "${rkey.slice(0, 80)}" is not valid` };
  return undefined;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}
