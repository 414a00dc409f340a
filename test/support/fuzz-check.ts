// One fuzz input through atkafka's pure decoder, checked three ways: it must
// not throw; what it returns must be self-consistent and every record it emits
// must hash back to its CID; and its verdict must match the oracle's.
import { createHash } from 'node:crypto';

import * as dagCbor from '@ipld/dag-cbor';
import { CID } from 'multiformats/cid';

import * as relayFrame from '../../src/decode/relay-frame.ts';
import { decodeRelayFrame, type DecodedFrame } from '../../src/decode/relay-frame.ts';
import { judgeFrame, type OracleVerdict } from './fuzz-oracle.ts';

export const REASONS = new Set(['frame-too-large', 'invalid-frame', 'invalid-body', 'invalid-car', 'missing-block', 'cid-mismatch', 'invalid-record']);

export type FindingKind =
  /** decodeRelayFrame threw. */
  | 'crash'
  /** Its result broke a property on its own (shape, JSON, record vs CID). */
  | 'inconsistent'
  /** It and the oracle disagree on what is valid. */
  | 'disagreement';

export interface Finding {
  kind: FindingKind;
  /** Stable across inputs with the same cause: one seed file is kept per signature. */
  signature: string;
  detail: string;
}

export interface CheckResult {
  verdict: OracleVerdict;
  result: DecodedFrame | undefined;
  findings: Finding[];
  /** Both call it invalid, for different reasons: reported, not a failure (the reason list is coarse). */
  reasonMismatches: string[];
}

const RECEIVED_AT = new Date('2026-07-04T14:40:00.000Z');

export function checkFrame(frame: Uint8Array): CheckResult {
  const verdict = judgeFrame(frame);
  let result: DecodedFrame;
  try {
    result = decodeRelayFrame(frame, RECEIVED_AT);
  } catch (err) {
    const e = err as Error;
    return { verdict, result: undefined, findings: [{ kind: 'crash', signature: `crash:${e?.name}:${normalize(e?.message ?? String(err))}@${crashSite(e)}`, detail: e?.stack?.split('\n').slice(0, 6).join('\n') ?? String(err) }], reasonMismatches: [] };
  }
  const findings: Finding[] = [];
  const reasonMismatches: string[] = [];
  const inconsistent = (sig: string, detail: string) => findings.push({ kind: 'inconsistent', signature: `inconsistent:${sig}`, detail });
  const disagree = (sig: string, detail: string) => findings.push({ kind: 'disagreement', signature: `disagree:${sig}`, detail });

  checkShape(frame, result, inconsistent);
  checkPieces(frame, result, inconsistent);
  if (verdict.kind === 'undecided') return { verdict, result, findings, reasonMismatches };

  const ak = akKind(result);
  switch (verdict.kind) {
    case 'invalid':
      if (result.kind !== 'invalid') disagree(`oracle-invalid:${verdict.rule}:atkafka-${ak}`, `oracle: ${verdict.reason} (${verdict.rule}: ${verdict.detail}); atkafka: ${summary(result)}`);
      else if (result.skipped.reason !== verdict.reason) reasonMismatches.push(`${verdict.reason}(${verdict.rule}) -> ${result.skipped.reason}`);
      break;
    case 'ignored':
      if (result.kind !== 'unknown') disagree(`oracle-ignored:${verdict.rule}:atkafka-${ak}`, `oracle: ignore (${verdict.rule}); atkafka: ${summary(result)}`);
      break;
    case 'error':
      if (result.kind !== 'error') disagree(`oracle-error:atkafka-${ak}`, `oracle: error frame ${verdict.error}; atkafka: ${summary(result)}`);
      else if (result.error !== verdict.error || result.message !== verdict.message) inconsistent('error.fields', `error ${result.error}/${result.message} vs ${verdict.error}/${verdict.message}`);
      break;
    case 'info':
      if (result.kind !== 'info') disagree(`oracle-info:atkafka-${ak}`, `oracle: #info ${verdict.name}; atkafka: ${summary(result)}`);
      else if (result.name !== verdict.name || result.message !== verdict.message) inconsistent('info.fields', `info ${result.name} vs ${verdict.name}`);
      break;
    default: {
      if (result.kind !== 'event') {
        // A commit whose only op is bad, skipped whole, loses nothing and counts the same: a coarser grain, not a dispute.
        if (verdict.kind === 'commit' && result.kind === 'invalid' && verdict.ops.length === 1 && verdict.ops[0]!.invalid !== undefined) {
          if (result.skipped.reason !== verdict.ops[0]!.invalid.reason) reasonMismatches.push(`${verdict.ops[0]!.invalid.reason}(${verdict.ops[0]!.invalid.rule}) -> ${result.skipped.reason}`);
          break;
        }
        const valid = verdict.kind === 'commit' ? verdict.ops.filter((o) => o.invalid === undefined).length : 1;
        const what = verdict.kind === 'commit' ? `${valid} valid and ${verdict.ops.length - valid} invalid ops: ${verdict.ops.filter((o) => o.invalid).map((o) => o.invalid!.rule).join(',')}` : 'valid';
        disagree(`oracle-${verdict.kind}:atkafka-${ak}`, `oracle: #${verdict.kind} seq ${verdict.seq} with ${what}; atkafka: ${summary(result)}`);
        break;
      }
      if (result.seq !== verdict.seq || result.did !== verdict.did || result.time !== verdict.time) {
        inconsistent('event.header', `atkafka seq/did/time ${result.seq}/${result.did}/${result.time}, frame says ${verdict.seq}/${verdict.did}/${verdict.time}`);
      }
      compareEvent(verdict, result, disagree, inconsistent, reasonMismatches);
    }
  }
  return { verdict, result, findings, reasonMismatches };
}

type Report = (sig: string, detail: string) => void;

function compareEvent(verdict: Exclude<OracleVerdict, { kind: 'invalid' | 'ignored' | 'error' | 'info' | 'undecided' }>, result: Extract<DecodedFrame, { kind: 'event' }>, disagree: Report, inconsistent: Report, reasonMismatches: string[]): void {
  const messages = result.messages.map((m) => parse(m.value));
  switch (verdict.kind) {
    case 'commit': {
      // Align atkafka's messages and skips with the ops: both keep op order.
      let mi = 0;
      let si = 0;
      for (const [i, op] of verdict.ops.entries()) {
        const m = messages[mi] as { operation?: { path?: unknown; action?: unknown; cid?: unknown } } | undefined;
        const s = result.skipped[si];
        let emitted: boolean;
        if (m?.operation?.path === op.path && m.operation.action === op.action) {
          emitted = true;
          mi++;
        } else if (s?.path === op.path) {
          emitted = false;
          si++;
        } else {
          inconsistent('commit.alignment', `op ${i} (${op.action} ${op.path}) is neither the next message nor the next skip`);
          return;
        }
        if (emitted && op.invalid !== undefined) {
          disagree(`op-oracle-invalid:${op.invalid.rule}:atkafka-emitted`, `op ${i} ${op.action} ${op.path}: oracle ${op.invalid.reason} (${op.invalid.rule}: ${op.invalid.detail}); atkafka emitted it`);
        } else if (!emitted && op.invalid === undefined) {
          disagree(`op-oracle-valid:atkafka-skipped:${s!.reason}:${normalize(s!.message)}`, `op ${i} ${op.action} ${op.path}: oracle valid; atkafka skipped it as ${s!.reason}: ${s!.message}`);
        } else if (!emitted && op.invalid !== undefined && s!.reason !== op.invalid.reason) {
          reasonMismatches.push(`${op.invalid.reason}(${op.invalid.rule}) -> ${s!.reason}`);
        }
        if (emitted && op.invalid === undefined && m!.operation!.cid !== (op.cid ?? '')) {
          inconsistent('op.cid', `op ${i}: emitted cid ${String(m!.operation!.cid)}, the op's is ${op.cid}`);
        }
      }
      if (mi !== messages.length || si !== result.skipped.length) inconsistent('commit.extra', `${messages.length - mi} messages and ${result.skipped.length - si} skips beyond the ${verdict.ops.length} ops`);
      break;
    }
    case 'identity': {
      const m = messages[0] as { identity?: { seq?: unknown; handle?: unknown } } | undefined;
      if (result.messages.length !== 1 || m?.identity?.seq !== verdict.seq || m.identity.handle !== (verdict.handle ?? '')) inconsistent('identity.fields', `message ${JSON.stringify(m)} for ${JSON.stringify(verdict)}`);
      break;
    }
    case 'account': {
      const m = messages[0] as { account?: { seq?: unknown; active?: unknown; status?: unknown } } | undefined;
      if (result.messages.length !== 1 || m?.account?.seq !== verdict.seq || m.account.active !== verdict.active || m.account.status !== verdict.status) {
        inconsistent('account.fields', `message ${JSON.stringify(m)} for ${JSON.stringify(verdict)}`);
      }
      break;
    }
    case 'sync': {
      const s = result.skipped[0];
      if (verdict.invalid !== undefined) {
        if (result.messages.length > 0) disagree(`sync-oracle-invalid:${verdict.invalid.rule}:atkafka-emitted`, `oracle: ${verdict.invalid.rule} (${verdict.invalid.detail}); atkafka emitted ${String(result.messages[0]!.value).slice(0, 200)}`);
        else if (s !== undefined && s.reason !== verdict.invalid.reason) reasonMismatches.push(`${verdict.invalid.reason}(${verdict.invalid.rule}) -> ${s.reason}`);
      } else if (result.messages.length === 0) {
        disagree(`sync-oracle-valid:atkafka-skipped:${s?.reason}:${normalize(s?.message ?? '')}`, `oracle: valid #sync; atkafka skipped it: ${s?.reason} ${s?.message}`);
      } else {
        const m = messages[0] as { sync?: { seq?: unknown; rev?: unknown; commit?: unknown } } | undefined;
        if (m?.sync?.seq !== verdict.seq || m.sync.rev !== verdict.rev || m.sync.commit !== verdict.commit) inconsistent('sync.fields', `message ${JSON.stringify(m)} for ${JSON.stringify(verdict)}`);
      }
      break;
    }
  }
}

type PiecesFn = (frame: Uint8Array, receivedAt: Date, limits: { messages: number; chars: number }) => Iterable<DecodedFrame>;
/** Present once frames are decoded in bounded pieces; checked only where it exists. */
const decodeRelayPieces = (relayFrame as unknown as Record<string, unknown>).decodeRelayPieces as PiecesFn | undefined;
const SMALL_PIECES = { messages: 2, chars: 4096 };

/** Decoding in small pieces must give the same messages and skips, in order, as decoding whole. */
function checkPieces(frame: Uint8Array, whole: DecodedFrame, inconsistent: Report): void {
  if (decodeRelayPieces === undefined) return;
  let pieces: DecodedFrame[];
  try {
    pieces = [...decodeRelayPieces(frame, RECEIVED_AT, SMALL_PIECES)];
  } catch (err) {
    inconsistent(`pieces.throw:${(err as Error).name}`, `decodeRelayPieces threw where decodeRelayFrame did not: ${(err as Error).message}`);
    return;
  }
  if (whole.kind !== 'event') {
    if (pieces.length !== 1 || JSON.stringify(pieces[0]) !== JSON.stringify(whole)) inconsistent('pieces.non-event', `${pieces.length} pieces for a ${whole.kind}`);
    return;
  }
  const events = pieces.filter((p): p is Extract<DecodedFrame, { kind: 'event' }> => p.kind === 'event');
  const flags = events.map((p) => p as { first?: unknown; last?: unknown });
  if (events.length !== pieces.length || events.length === 0) return inconsistent('pieces.kind', `pieces of kinds ${pieces.map((p) => p.kind).join(',')}`);
  if (events.some((p) => p.seq !== whole.seq || p.did !== whole.did || p.time !== whole.time)) inconsistent('pieces.header', 'a piece of another seq/did/time');
  if (flags.some((f, i) => f.first !== (i === 0) || f.last !== (i === flags.length - 1))) inconsistent('pieces.first-last', `first/last flags ${flags.map((f) => `${String(f.first)}/${String(f.last)}`).join(' ')}`);
  if (events.some((p) => p.messages.length > SMALL_PIECES.messages)) inconsistent('pieces.size', `a piece of ${Math.max(...events.map((p) => p.messages.length))} messages, limit ${SMALL_PIECES.messages}`);
  const values = (ms: { value: string | Uint8Array }[]) => ms.map((m) => String(m.value));
  if (JSON.stringify(events.flatMap((p) => values(p.messages))) !== JSON.stringify(values(whole.messages))) inconsistent('pieces.messages', 'the pieces hold other messages than the whole frame');
  if (JSON.stringify(events.flatMap((p) => p.skipped)) !== JSON.stringify(whole.skipped)) inconsistent('pieces.skipped', 'the pieces skip other ops than the whole frame');
}

/** Properties of atkafka's result that need no oracle. */
function checkShape(frame: Uint8Array, r: DecodedFrame, inconsistent: Report): void {
  switch (r.kind) {
    case 'invalid':
      if (!REASONS.has(r.skipped.reason)) inconsistent('reason.unknown', `reason ${r.skipped.reason}`);
      if (r.bytes !== frame.length) inconsistent('invalid.bytes', `bytes ${r.bytes} for a ${frame.length}-byte frame`);
      return;
    case 'info': {
      const v = parse(r.value) as { info?: { name?: unknown } } | undefined;
      if (v?.info?.name !== r.name) inconsistent('info.json', `info message ${String(r.value).slice(0, 200)}`);
      return;
    }
    case 'error':
    case 'unknown':
      return;
    case 'event': {
      if (!Number.isSafeInteger(r.seq) || r.seq < 0) inconsistent('event.seq', `seq ${r.seq}`);
      if (typeof r.did !== 'string' || !r.did.startsWith('did:')) inconsistent('event.did', `did ${r.did}`);
      for (const s of r.skipped) if (!REASONS.has(s.reason)) inconsistent('reason.unknown', `reason ${s.reason}`);
      for (const m of r.messages) {
        const v = parse(m.value);
        if (v === undefined) {
          inconsistent('message.json', `not JSON: ${String(m.value).slice(0, 200)}`);
          continue;
        }
        const o = v as { did?: unknown; timestamp?: unknown; operation?: Record<string, unknown> };
        if (o.did !== r.did || o.timestamp !== r.time) inconsistent('message.envelope', `did/timestamp ${String(o.did)}/${String(o.timestamp)} in an event of ${r.did}/${r.time}`);
        if (o.operation !== undefined) checkOperation(r.did, m.action, m.collection, o.operation, inconsistent);
      }
    }
  }
}

function checkOperation(did: string, action: string, collection: string, op: Record<string, unknown>, inconsistent: Report): void {
  const path = `${String(op.collection)}/${String(op.rkey)}`;
  if (op.path !== path || op.uri !== `at://${did}/${path}`) inconsistent('op.path', `path ${String(op.path)} uri ${String(op.uri)} for ${path}`);
  if (action !== `operation#${String(op.action)}` || collection !== op.collection) inconsistent('op.labels', `labels ${action}/${collection} for ${String(op.action)}/${String(op.collection)}`);
  if (op.action === 'delete') {
    if (op.cid !== '' || op.record !== null) inconsistent('op.delete-shape', `delete with cid ${JSON.stringify(op.cid)} and a record`);
    return;
  }
  if (op.action !== 'create' && op.action !== 'update') {
    inconsistent('op.action', `action ${String(op.action)}`);
    return;
  }
  const problem = recordHashProblem(op.record, op.cid);
  if (problem !== undefined) inconsistent(`op.record-hash:${problem.split(':')[0]}`, `${op.action} ${path}: ${problem}`);
}

/**
 * The property at the heart of the product: the JSON record, read back as
 * data-model JSON and written as DAG-CBOR by @ipld/dag-cbor, hashes to the
 * op's CID. Returns what is wrong, or undefined.
 */
export function recordHashProblem(record: unknown, cid: unknown): string | undefined {
  if (typeof record !== 'object' || record === null || Array.isArray(record)) return `not-a-map: record is ${JSON.stringify(record)?.slice(0, 80)}`;
  if (typeof cid !== 'string') return `no-cid: cid ${JSON.stringify(cid)}`;
  let want: CID;
  try {
    want = CID.parse(cid);
  } catch {
    return `bad-cid: "${cid}" does not parse`;
  }
  let block: Uint8Array;
  try {
    block = dagCbor.encode(fromDataModel(record));
  } catch (err) {
    return `unencodable: ${(err as Error).message}`;
  }
  const digest = createHash('sha256').update(block).digest();
  const got = CID.createV1(dagCbor.code, { code: 0x12, size: 32, digest, bytes: Uint8Array.from([0x12, 0x20, ...digest]) });
  if (!got.equals(want)) return `mismatch: re-encoded record is ${got.toString()}, op cid ${cid}`;
  return undefined;
}

/** Data-model JSON back to IPLD values: {"$link": s} is a CID, {"$bytes": s} is bytes. */
export function fromDataModel(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(fromDataModel);
  if (typeof v !== 'object' || v === null) return v;
  const keys = Object.keys(v);
  const o = v as Record<string, unknown>;
  if (keys.length === 1 && keys[0] === '$link' && typeof o.$link === 'string') return CID.parse(o.$link);
  if (keys.length === 1 && keys[0] === '$bytes' && typeof o.$bytes === 'string') return new Uint8Array(Buffer.from(o.$bytes, 'base64'));
  const out: Record<string, unknown> = {};
  for (const k of keys) {
    // A "__proto__" key must stay a key, not become the prototype.
    Object.defineProperty(out, k, { value: fromDataModel(o[k]), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function parse(value: string | Uint8Array): unknown {
  try {
    return JSON.parse(typeof value === 'string' ? value : Buffer.from(value).toString('utf8'));
  } catch {
    return undefined;
  }
}

function akKind(r: DecodedFrame): string {
  if (r.kind === 'invalid') return `invalid:${r.skipped.reason}:${normalize(r.skipped.message)}`;
  return r.kind;
}

function summary(r: DecodedFrame): string {
  switch (r.kind) {
    case 'invalid':
      return `invalid ${r.skipped.reason}: ${r.skipped.message}`;
    case 'event':
      return `event seq ${r.seq}, ${r.messages.length} messages, ${r.skipped.length} skipped${r.skipped.map((s) => ` [${s.reason}: ${s.message}]`).join('')}`;
    default:
      return r.kind;
  }
}

/** The first of atkafka's own functions on the stack: where it broke. */
function crashSite(e: Error | undefined): string {
  for (const line of e?.stack?.split('\n').slice(1) ?? []) {
    const m = /at (?:([\w.<>]+) )?\(?[^()]*\/src\/([\w/.-]+):\d+/.exec(line);
    if (m) return `${m[1] ?? '?'}(${m[2]})`;
  }
  return '?';
}

/** Groups messages that differ only in numbers, quoted values or offsets. */
export function normalize(message: string): string {
  return message
    // Field names stay ("ops.cid"); values in quotes (paths, CIDs, DIDs) go.
    .replace(/"[^"]*"/g, (q) => (/^"[a-zA-Z$_.]{1,24}"$/.test(q) ? q : '"…"'))
    .replace(/0x[0-9a-f]+/gi, 'N')
    .replace(/\d+/g, 'N')
    .slice(0, 90);
}

