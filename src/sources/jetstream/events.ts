import { InputError } from '../../atproto/errors.ts';
import type { RecordOp } from '../../atproto/commit-ops.ts';
import { formatAccount, formatIdentity, formatOperation } from '../../format/atkafka.ts';

/**
 * Jetstream's events (docs/jetstream-protocol.md), parsed as far as the
 * pipeline needs: who, when, what, and the key that names the event the same
 * way on every Jetstream host (for dropping what a rewind sends again).
 * Pure: text in, plain data out; bad input is an InputError.
 */
export interface JetstreamHead {
  did: string;
  timeUs: number;
  kind: 'commit' | 'identity' | 'account';
  /** commit: `collection`; else '' */
  collection: string;
  /** commit: `operation#create|update|delete`; else the kind */
  action: string;
  /**
   * The same on every host: a commit op is its repo's revision and path (a
   * revision is one commit, its ops have distinct paths); identity and account
   * events carry the relay's seq. time_us is each host's own clock, so no key.
   */
  key: string;
}

const DID = /^did:[a-z]+:[a-zA-Z0-9._:%-]{1,2048}$/;
const NSID = /^[a-zA-Z]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z]([a-zA-Z0-9-]*[a-zA-Z0-9])?){2,}$/;
const RKEY = /^[a-zA-Z0-9._:~-]{1,512}$/;

// Jetstream writes its fields in one order (Go structs): most events are read from their first bytes.
const HEAD = /^\{"did":"(did:[a-z]+:[a-zA-Z0-9._:%-]{1,2048})","time_us":(\d{1,16}),(?:"cursor":\d+,)?"kind":"(commit|identity|account)",/y;
const COMMIT = /"commit":\{"rev":"([a-z2-7]{1,64})","operation":"(create|update|delete)","collection":"([a-zA-Z0-9.-]{1,317})","rkey":"([a-zA-Z0-9._:~-]{1,512})"/y;
const SEQ = /"seq":(\d{1,16})[,}]/;

/**
 * A copy of `s` that holds no reference to the text it was cut from. Regex captures are slices of the
 * whole event and a key built from them a rope of those slices: kept in the window of seen keys, each
 * would keep its whole event alive (~500 bytes, 200,000 of them). Slicing a rope flattens it into a new
 * string first (V8 issue 2869).
 */
const detach = (s: string) => (' ' + s).slice(1);

/** The head from the first bytes of an event, without decoding the rest; undefined: use parseJetstreamHead. */
export function parseJetstreamHeadFast(bytes: Uint8Array): JetstreamHead | undefined {
  // Every field of the head is ASCII, so latin1 of a prefix reads them exactly; a long did:web or a record
  // key near the limit may not fit, and then the whole event is read.
  const prefix = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.length, 640)).toString('latin1');
  HEAD.lastIndex = 0;
  const m = HEAD.exec(prefix);
  if (m === null) return undefined;
  const did = m[1]!;
  const timeUs = Number(m[2]);
  const kind = m[3] as JetstreamHead['kind'];
  if (kind === 'commit') {
    COMMIT.lastIndex = HEAD.lastIndex;
    const c = COMMIT.exec(prefix);
    if (c === null || !NSID.test(c[3]!) || c[4] === '.' || c[4] === '..') return undefined;
    return { did, timeUs, kind, collection: c[3]!, action: `operation#${c[2]}`, key: detach(`${did} ${c[1]} ${c[3]}/${c[4]}`) };
  }
  const s = SEQ.exec(prefix.slice(HEAD.lastIndex, HEAD.lastIndex + 400));
  return s === null ? undefined : { did, timeUs, kind, collection: '', action: kind, key: detach(`${did} ${kind} ${s[1]}`) };
}

/** Reads an event's head; `text` is the whole event. */
export function parseJetstreamHead(text: string): JetstreamHead {
  HEAD.lastIndex = 0;
  const m = HEAD.exec(text);
  if (m !== null) {
    const did = m[1]!;
    const timeUs = Number(m[2]);
    const kind = m[3] as JetstreamHead['kind'];
    if (kind === 'commit') {
      COMMIT.lastIndex = HEAD.lastIndex;
      const c = COMMIT.exec(text);
      if (c !== null && NSID.test(c[3]!) && c[4] !== '.' && c[4] !== '..') {
        return { did, timeUs, kind, collection: c[3]!, action: `operation#${c[2]}`, key: detach(`${did} ${c[1]} ${c[3]}/${c[4]}`) };
      }
    } else {
      // identity: did, handle?, seq, time; account: active, did, seq, status?, time (no strings before seq can hold it).
      const s = SEQ.exec(text.slice(HEAD.lastIndex, HEAD.lastIndex + 400));
      if (s !== null) return { did, timeUs, kind, collection: '', action: kind, key: detach(`${did} ${kind} ${s[1]}`) };
    }
  }
  // Another server's field order, or something wrong: the slow path says which.
  return headOf(parseJetstreamEvent(text));
}

export type JetstreamEvent =
  | { kind: 'commit'; did: string; timeUs: number; rev: string; operation: 'create' | 'update' | 'delete'; collection: string; rkey: string; record: Record<string, unknown> | null; cid: string }
  | { kind: 'identity'; did: string; timeUs: number; seq: number; time: string; handle: string | undefined }
  | { kind: 'account'; did: string; timeUs: number; seq: number; time: string; active: boolean; status: string | undefined };

export function parseJetstreamEvent(text: string): JetstreamEvent {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new InputError('invalid-frame', `not JSON: ${(err as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new InputError('invalid-frame', 'not a JSON object');
  const o = v as Record<string, unknown>;
  const { did, time_us: timeUs, kind } = o;
  if (typeof did !== 'string' || !DID.test(did)) throw new InputError('invalid-event', `bad did ${JSON.stringify(did)?.slice(0, 80)}`);
  if (typeof timeUs !== 'number' || !Number.isSafeInteger(timeUs) || timeUs <= 0) throw new InputError('invalid-event', 'no time_us');
  if (kind === 'commit') {
    const c = o.commit as Record<string, unknown> | undefined;
    if (typeof c !== 'object' || c === null) throw new InputError('invalid-event', 'commit event without commit');
    const { rev, operation, collection, rkey } = c;
    if (typeof rev !== 'string' || rev === '') throw new InputError('invalid-event', 'commit without rev');
    if (operation !== 'create' && operation !== 'update' && operation !== 'delete') throw new InputError('invalid-event', `bad operation ${JSON.stringify(operation)}`);
    if (typeof collection !== 'string' || !NSID.test(collection)) throw new InputError('invalid-event', `bad collection ${JSON.stringify(collection)?.slice(0, 80)}`);
    if (typeof rkey !== 'string' || !RKEY.test(rkey) || rkey === '.' || rkey === '..') throw new InputError('invalid-event', `bad rkey ${JSON.stringify(rkey)?.slice(0, 80)}`);
    let record: Record<string, unknown> | null = null;
    let cid = '';
    if (operation !== 'delete') {
      if (typeof c.record !== 'object' || c.record === null || Array.isArray(c.record)) throw new InputError('invalid-record', `${operation} without a record`);
      if (typeof c.cid !== 'string' || c.cid === '') throw new InputError('invalid-event', `${operation} without a cid`);
      record = c.record as Record<string, unknown>;
      cid = c.cid;
    }
    return { kind, did, timeUs, rev, operation, collection, rkey, record, cid };
  }
  if (kind === 'identity' || kind === 'account') {
    const b = o[kind] as Record<string, unknown> | undefined;
    if (typeof b !== 'object' || b === null) throw new InputError('invalid-event', `${kind} event without ${kind}`);
    const { seq, time } = b;
    if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0) throw new InputError('invalid-event', `${kind} without seq`);
    const t = typeof time === 'string' ? time : new Date(timeUs / 1000).toISOString();
    if (kind === 'identity') return { kind, did, timeUs, seq, time: t, handle: typeof b.handle === 'string' ? b.handle : undefined };
    return { kind, did, timeUs, seq, time: t, active: b.active === true, status: typeof b.status === 'string' ? b.status : undefined };
  }
  throw new InputError('invalid-event', `unknown kind ${JSON.stringify(kind)?.slice(0, 40)}`);
}

export function headOf(e: JetstreamEvent): JetstreamHead {
  if (e.kind === 'commit') return { did: e.did, timeUs: e.timeUs, kind: e.kind, collection: e.collection, action: `operation#${e.operation}`, key: detach(`${e.did} ${e.rev} ${e.collection}/${e.rkey}`) };
  return { did: e.did, timeUs: e.timeUs, kind: e.kind, collection: '', action: e.kind, key: detach(`${e.did} ${e.kind} ${e.seq}`) };
}

/** When Jetstream saw the event, for the at-kafka `timestamp` (Jetstream does not carry the commit's own time). */
export function timeOf(timeUs: number): string {
  return new Date(Math.floor(timeUs / 1000)).toISOString();
}

/**
 * The at-kafka shape of an event, as relay mode writes it for the same event
 * (docs/compatibility.md says what differs): record keys back in DAG-CBOR
 * order (Jetstream sorts them), so the bytes match too.
 */
export function atkafkaValue(e: JetstreamEvent): string {
  switch (e.kind) {
    case 'commit': {
      const op: RecordOp = {
        action: e.operation,
        collection: e.collection,
        rkey: e.rkey,
        path: `${e.collection}/${e.rkey}`,
        cid: e.cid,
        record: e.record === null ? null : (cborOrder(e.record) as Record<string, unknown>),
      };
      return formatOperation(e.did, timeOf(e.timeUs), op);
    }
    case 'identity':
      return formatIdentity({ kind: 'identity', did: e.did, seq: e.seq, time: e.time, handle: e.handle });
    case 'account':
      return formatAccount({ kind: 'account', did: e.did, seq: e.seq, time: e.time, active: e.active, status: e.status });
  }
}

/** Keys length-first, then bytewise: DAG-CBOR's map order, which relay mode's records keep. */
function cborOrder(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map(cborOrder);
  const o = value as Record<string, unknown>;
  const keys = Object.keys(o).sort((a, b) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0));
  const out: Record<string, unknown> = {};
  for (const k of keys) out[k] = cborOrder(o[k]);
  return out;
}
