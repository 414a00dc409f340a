import { InputError } from '../../atproto/errors.ts';

/**
 * Tap's `/channel` events (indigo `cmd/tap`; see docs/tap-protocol.md), parsed
 * and checked. Pure: text in, plain data out; bad input is an InputError.
 */
export type TapEvent =
  | {
      type: 'record';
      id: number;
      live: boolean;
      did: string;
      rev: string;
      collection: string;
      rkey: string;
      action: 'create' | 'update' | 'delete';
      /** '' on delete */
      cid: string;
      /** data-model JSON as Tap sends it; null on delete */
      record: Record<string, unknown> | null;
    }
  | { type: 'identity'; id: number; did: string; handle: string; isActive: boolean; status: string }
  /** A type this version does not know: acknowledged and skipped. */
  | { type: 'other'; id: number; name: string };

const DID = /^did:[a-z]+:[a-zA-Z0-9._:%-]{1,2048}$/;
const NSID = /^[a-zA-Z]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z]([a-zA-Z0-9-]*[a-zA-Z0-9])?){2,}$/;
const RKEY = /^[a-zA-Z0-9._:~-]{1,512}$/;

/** The id of a message that is otherwise unusable, so it can still be acknowledged (or undefined). */
export function tapEventId(text: string): number | undefined {
  const m = /"id"\s*:\s*(\d{1,16})\b/.exec(text);
  return m === null ? undefined : Number(m[1]);
}

export function parseTapEvent(text: string): TapEvent {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new InputError('invalid-frame', `not JSON: ${(err as Error).message}`);
  }
  if (typeof v !== 'object' || v === null) throw new InputError('invalid-frame', 'not a JSON object');
  const o = v as Record<string, unknown>;
  const id = o.id;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 0) throw new InputError('invalid-body', 'no event id');
  if (o.type === 'record') {
    const r = o.record as Record<string, unknown> | undefined;
    if (typeof r !== 'object' || r === null) throw new InputError('invalid-body', 'record event without record');
    const { did, collection, rkey, action, rev } = r;
    if (typeof did !== 'string' || !DID.test(did)) throw new InputError('invalid-body', `bad did ${JSON.stringify(did)}`);
    if (typeof collection !== 'string' || !NSID.test(collection)) throw new InputError('invalid-body', `bad collection ${JSON.stringify(collection)}`);
    if (typeof rkey !== 'string' || !RKEY.test(rkey) || rkey === '.' || rkey === '..') throw new InputError('invalid-body', `bad rkey ${JSON.stringify(rkey)}`);
    if (action !== 'create' && action !== 'update' && action !== 'delete') throw new InputError('invalid-body', `bad action ${JSON.stringify(action)}`);
    const cid = r.cid ?? '';
    if (typeof cid !== 'string') throw new InputError('invalid-body', 'bad cid');
    const record = r.record ?? null;
    if (record !== null && (typeof record !== 'object' || Array.isArray(record))) throw new InputError('invalid-record', 'record is not an object');
    if (action !== 'delete' && (record === null || cid === '')) throw new InputError('invalid-body', `${action} without record or cid`);
    return {
      type: 'record',
      id,
      live: r.live === true,
      did,
      rev: typeof rev === 'string' ? rev : '',
      collection,
      rkey,
      action,
      cid: action === 'delete' ? '' : cid,
      record: action === 'delete' ? null : (record as Record<string, unknown>),
    };
  }
  if (o.type === 'identity') {
    const i = o.identity as Record<string, unknown> | undefined;
    if (typeof i !== 'object' || i === null) throw new InputError('invalid-body', 'identity event without identity');
    if (typeof i.did !== 'string' || !DID.test(i.did)) throw new InputError('invalid-body', `bad did ${JSON.stringify(i.did)}`);
    // The wire says is_active (indigo cmd/tap); the Go at-kafka read isActive and so always saw false.
    return {
      type: 'identity',
      id,
      did: i.did,
      handle: typeof i.handle === 'string' ? i.handle : '',
      isActive: i.is_active === true,
      status: typeof i.status === 'string' ? i.status : '',
    };
  }
  return { type: 'other', id, name: String(o.type) };
}

const TID_CHARS = '234567abcdefghijklmnopqrstuvwxyz';
const TID = /^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$/;

/** The time inside a TID record key (microseconds since 1970 in its top 53 bits), or undefined. */
export function tidTime(rkey: string): Date | undefined {
  if (!TID.test(rkey)) return undefined;
  let v = 0n;
  for (const c of rkey) v = (v << 5n) | BigInt(TID_CHARS.indexOf(c));
  const ms = Number(v >> 10n) / 1000;
  return ms > 0 && ms < 8.64e15 ? new Date(ms) : undefined;
}

/**
 * Tap events carry no time. As the Go version: the record's `createdAt` when it
 * parses, else the time in a TID record key, else when it was received.
 */
export function recordTime(record: Record<string, unknown> | null, rkey: string, receivedAt: Date): string {
  const createdAt = record?.createdAt;
  if (typeof createdAt === 'string' && createdAt.length <= 64) {
    const ms = Date.parse(createdAt);
    if (!Number.isNaN(ms)) return new Date(ms).toISOString();
  }
  return (tidTime(rkey) ?? receivedAt).toISOString();
}
