import { BytesWrapper, CidLinkWrapper } from '@atcute/cbor';

/**
 * The Jetstream v1 JSON shape (bluesky-social/jetstream, `/subscribe`; see
 * docs/jetstream-protocol.md), byte for byte as its Go server writes it:
 * struct fields in declaration order, record maps with their keys sorted
 * (Go marshals maps sorted), and Go's default escaping of `<`, `>`, `&`,
 * U+2028 and U+2029. Pure: values in, JSON out.
 */

export interface JetstreamCommit {
  rev: string;
  operation: 'create' | 'update' | 'delete';
  collection: string;
  rkey: string;
  /** null on delete (then no record and no cid) */
  record: Record<string, unknown> | null;
  cid: string;
}

export function jetstreamCommit(did: string, timeUs: number, c: JetstreamCommit): string {
  let commit = `{"rev":${str(c.rev)},"operation":"${c.operation}","collection":${str(c.collection)},"rkey":${str(c.rkey)}`;
  if (c.operation !== 'delete' && c.record !== null) commit += `,"record":${recordJson(c.record)},"cid":${str(c.cid)}`;
  return `{"did":${str(did)},"time_us":${timeUs},"kind":"commit","commit":${commit}}}`;
}

export function jetstreamIdentity(did: string, timeUs: number, e: { did: string; handle: string | undefined; seq: number; time: string }): string {
  const handle = e.handle === undefined || e.handle === '' ? '' : `,"handle":${str(e.handle)}`;
  return `{"did":${str(did)},"time_us":${timeUs},"kind":"identity","identity":{"did":${str(e.did)}${handle},"seq":${e.seq},"time":${str(e.time)}}}`;
}

export function jetstreamAccount(did: string, timeUs: number, e: { did: string; active: boolean; seq: number; status: string | undefined; time: string }): string {
  const status = e.status === undefined || e.status === '' ? '' : `,"status":${str(e.status)}`;
  return `{"did":${str(did)},"time_us":${timeUs},"kind":"account","account":{"active":${e.active},"did":${str(e.did)},"seq":${e.seq}${status},"time":${str(e.time)}}}`;
}

const GO_ESCAPE_TEST = /[<>&\u2028\u2029]/;
const GO_ESCAPE = /[<>&\u2028\u2029]/g;
const goEscape = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

function str(s: string): string {
  const json = JSON.stringify(s);
  return GO_ESCAPE_TEST.test(json) ? json.replace(GO_ESCAPE, goEscape) : json;
}

/** A data-model record as Jetstream writes it: keys sorted at every level, links and bytes as `$link` / `$bytes`. */
export function recordJson(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return str(value);
    case 'number':
    case 'boolean':
      return JSON.stringify(value);
    case 'object': {
      if (value === null) return 'null';
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + recordJson(value[i]);
        return out + ']';
      }
      if (value instanceof CidLinkWrapper || value instanceof BytesWrapper) return JSON.stringify(value);
      const o = value as Record<string, unknown>;
      // Code-unit order equals Go's byte order for every key below U+D800 (all real ones).
      const keys = Object.keys(o).sort();
      let out = '{';
      let first = true;
      for (const k of keys) {
        const v = o[k];
        if (v === undefined) continue;
        out += `${first ? '' : ','}${str(k)}:${recordJson(v)}`;
        first = false;
      }
      return out + '}';
    }
    default:
      throw new TypeError(`${typeof value} is not in the data model`);
  }
}

/**
 * Jetstream's `time_us`: the wall clock in microseconds when the event was
 * received (Jetstream stamps its own ingest time, not the event's). Strictly
 * increasing and unique per clock, so it works as a cursor and a sort key;
 * with several decode threads, thread i of n only hands out values = i mod n,
 * so no two threads ever hand out the same one.
 */
export class MicrosClock {
  #last = 0;
  readonly #stride: number;
  readonly #offset: number;

  constructor(thread = 0, threads = 1) {
    this.#stride = Math.max(1, threads);
    this.#offset = thread % this.#stride;
  }

  /** The next value at or after `nowUs`. */
  next(nowUs: number): number {
    let t = Math.max(Math.floor(nowUs), this.#last + 1);
    const r = (((t - this.#offset) % this.#stride) + this.#stride) % this.#stride;
    if (r !== 0) t += this.#stride - r;
    this.#last = t;
    return t;
  }
}

/** Wall-clock microseconds now, with the monotonic clock's resolution. */
export function nowMicros(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000);
}
