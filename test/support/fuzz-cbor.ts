// A CBOR toolkit of the fuzzer's own: a typed value tree that keeps what JS
// values lose (int vs float, big integers, raw invalid UTF-8, key order,
// duplicate keys), a strict DRISL decoder and an encoder that writes canonical
// DRISL by default and hostile encodings on request. Both are iterative, so
// 20,000 levels of nesting cost no stack. Independent of @atcute on purpose:
// the oracle built on it must not share the product's decoder.
import { createHash } from 'node:crypto';

import { CID } from 'multiformats/cid';

export type CborValue =
  | { t: 'int'; v: bigint }
  | { t: 'float'; v: number }
  | { t: 'bytes'; v: Uint8Array }
  | { t: 'text'; v: string }
  /** A text string given as raw bytes, possibly not UTF-8 (hostile). */
  | { t: 'rawtext'; v: Uint8Array }
  | { t: 'array'; v: CborValue[] }
  /** Keys of any type and in any order: the encoder sorts them unless told not to. */
  | { t: 'map'; v: [CborValue, CborValue][] }
  | { t: 'tag'; tag: bigint; v: CborValue }
  /** 20 false, 21 true, 22 null, 23 undefined, anything else is hostile. */
  | { t: 'simple'; v: number }
  /** Bytes written verbatim (hostile: non-minimal heads, half floats, indefinite lengths). */
  | { t: 'raw'; v: Uint8Array };

export const TRUE: CborValue = { t: 'simple', v: 21 };
export const FALSE: CborValue = { t: 'simple', v: 20 };
export const NULL: CborValue = { t: 'simple', v: 22 };
export const UNDEFINED: CborValue = { t: 'simple', v: 23 };

export const int = (n: number | bigint): CborValue => ({ t: 'int', v: BigInt(n) });
export const float = (n: number): CborValue => ({ t: 'float', v: n });
export const text = (s: string): CborValue => ({ t: 'text', v: s });
export const bytes = (b: Uint8Array): CborValue => ({ t: 'bytes', v: b });
export const array = (items: CborValue[]): CborValue => ({ t: 'array', v: items });
export const raw = (b: Uint8Array | number[]): CborValue => ({ t: 'raw', v: Uint8Array.from(b) });

export function map(entries: Record<string, CborValue> | [string, CborValue][]): CborValue {
  const list = Array.isArray(entries) ? entries : Object.entries(entries);
  return { t: 'map', v: list.map(([k, v]) => [text(k), v]) };
}

/** A CID link (tag 42 over 0x00 + the binary CID). */
export function link(cid: Uint8Array): CborValue {
  const b = new Uint8Array(cid.length + 1);
  b.set(cid, 1);
  return { t: 'tag', tag: 42n, v: bytes(b) };
}

// ---------------------------------------------------------------- encoding

class Sink {
  #chunks: Uint8Array[] = [];
  #buf = new Uint8Array(4096);
  #at = 0;
  #total = 0;

  byte(b: number): void {
    if (this.#at === this.#buf.length) this.#spill(4096);
    this.#buf[this.#at++] = b;
    this.#total++;
  }

  write(b: Uint8Array): void {
    if (b.length > this.#buf.length - this.#at) {
      this.#spill(0);
      this.#chunks.push(b);
      this.#total += b.length;
      return;
    }
    this.#buf.set(b, this.#at);
    this.#at += b.length;
    this.#total += b.length;
  }

  #spill(next: number): void {
    if (this.#at > 0) this.#chunks.push(this.#buf.subarray(0, this.#at));
    this.#buf = new Uint8Array(Math.max(next, 4096));
    this.#at = 0;
  }

  done(): Uint8Array {
    this.#spill(0);
    const out = new Uint8Array(this.#total);
    let p = 0;
    for (const c of this.#chunks) {
      out.set(c, p);
      p += c.length;
    }
    return out;
  }
}

/** A CBOR head with the shortest argument encoding (DRISL requires it). */
export function head(major: number, arg: bigint | number): Uint8Array {
  const n = BigInt(arg);
  const m = major << 5;
  if (n < 24n) return Uint8Array.of(m | Number(n));
  if (n < 0x100n) return Uint8Array.of(m | 24, Number(n));
  if (n < 0x10000n) return Uint8Array.of(m | 25, Number(n >> 8n), Number(n & 0xffn));
  if (n < 0x100000000n) {
    const v = Number(n);
    return Uint8Array.of(m | 26, v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
  }
  const out = new Uint8Array(9);
  out[0] = m | 27;
  new DataView(out.buffer).setBigUint64(1, n);
  return out;
}

const utf8 = new TextEncoder();

export interface EncodeOptions {
  /** Keep map entries in the order given (default: canonical order, length first then bytewise). */
  keepKeyOrder?: boolean;
}

/** Encodes a value; canonical DRISL unless the value holds hostile parts or `keepKeyOrder` is set. */
export function encode(value: CborValue, opts: EncodeOptions = {}): Uint8Array {
  const sink = new Sink();
  const stack: (CborValue | Uint8Array)[] = [value];
  while (stack.length > 0) {
    const v = stack.pop()!;
    if (v instanceof Uint8Array) {
      sink.write(v);
      continue;
    }
    switch (v.t) {
      case 'int':
        sink.write(v.v >= 0n ? head(0, v.v) : head(1, -1n - v.v));
        break;
      case 'float': {
        const b = new Uint8Array(9);
        b[0] = 0xfb;
        new DataView(b.buffer).setFloat64(1, v.v);
        sink.write(b);
        break;
      }
      case 'bytes':
        sink.write(head(2, v.v.length));
        sink.write(v.v);
        break;
      case 'text': {
        const b = utf8.encode(v.v);
        sink.write(head(3, b.length));
        sink.write(b);
        break;
      }
      case 'rawtext':
        sink.write(head(3, v.v.length));
        sink.write(v.v);
        break;
      case 'array':
        sink.write(head(4, v.v.length));
        for (let i = v.v.length - 1; i >= 0; i--) stack.push(v.v[i]!);
        break;
      case 'map': {
        sink.write(head(5, v.v.length));
        // Keys are shallow in practice: encoding them recursively is fine.
        let entries = v.v.map(([k, val]) => ({ k: encode(k, opts), val }));
        if (!opts.keepKeyOrder) entries = entries.sort((a, b) => compareKeys(a.k, b.k));
        for (let i = entries.length - 1; i >= 0; i--) {
          stack.push(entries[i]!.val);
          stack.push(entries[i]!.k);
        }
        break;
      }
      case 'tag':
        sink.write(head(6, v.tag));
        stack.push(v.v);
        break;
      case 'simple':
        sink.write(v.v < 24 ? Uint8Array.of(0xe0 | v.v) : Uint8Array.of(0xf8, v.v));
        break;
      case 'raw':
        sink.write(v.v);
        break;
    }
  }
  return sink.done();
}

/** DAG-CBOR / DRISL map key order over encoded keys: shorter first, then bytewise. */
function compareKeys(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return a.length - b.length;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return 0;
}

// ---------------------------------------------------------------- decoding

/** Why bytes are not strict DRISL; the rule names end up in disagreement signatures. */
export class CborError extends Error {
  readonly rule: string;
  constructor(rule: string, message: string) {
    super(message);
    this.rule = rule;
  }
}

export interface Decoded {
  value: CborValue;
  /** Offset just past the item. */
  end: number;
  /** Deepest nesting of maps and arrays; the outermost container is level 1. */
  depth: number;
  /** Whether any float appears (DRISL allows them, the atproto data model does not). */
  floats: boolean;
  /** Whether any integer lies outside the signed 64-bit range (the data model's integer). */
  beyondInt64: boolean;
}

const utf8Strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

interface Open {
  kind: 'array' | 'map';
  items: CborValue[] | [CborValue, CborValue][];
  remaining: number;
  key: CborValue | undefined;
  prevKey: Uint8Array | undefined;
  expectKey: boolean;
}

/**
 * Decodes one strict DRISL item at `offset`: shortest heads, definite lengths,
 * text keys in canonical order without duplicates, tag 42 only (over a DASL
 * CID), simple values false/true/null only, floats only as finite float64,
 * UTF-8 text. Throws CborError with the rule broken.
 */
export function decodeStrict(buf: Uint8Array, offset = 0): Decoded {
  let p = offset;
  let depth = 0;
  let maxDepth = 0;
  let floats = false;
  let beyondInt64 = false;
  const stack: Open[] = [];
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  /** A tag 42 was read: the next item must be its byte string. */
  let pendingTag = false;

  const need = (n: number | bigint): number => {
    if (BigInt(n) > BigInt(buf.length - p)) throw new CborError('truncated', `needs ${n} bytes at ${p}, ${buf.length - p} left`);
    return Number(n);
  };

  const readArg = (info: number): bigint => {
    if (info < 24) return BigInt(info);
    if (info === 24) {
      need(1);
      const v = buf[p++]!;
      if (v < 24) throw new CborError('non-minimal', `argument ${v} in 2 bytes at ${p - 2}`);
      return BigInt(v);
    }
    if (info === 25) {
      need(2);
      const v = view.getUint16(p);
      p += 2;
      if (v < 0x100) throw new CborError('non-minimal', `argument ${v} in 3 bytes`);
      return BigInt(v);
    }
    if (info === 26) {
      need(4);
      const v = view.getUint32(p);
      p += 4;
      if (v < 0x10000) throw new CborError('non-minimal', `argument ${v} in 5 bytes`);
      return BigInt(v);
    }
    if (info === 27) {
      need(8);
      const v = view.getBigUint64(p);
      p += 8;
      if (v < 0x100000000n) throw new CborError('non-minimal', `argument ${v} in 9 bytes`);
      return v;
    }
    if (info === 31) throw new CborError('indefinite', `indefinite length at ${p - 1}`);
    throw new CborError('reserved-info', `reserved additional info ${info} at ${p - 1}`);
  };

  for (;;) {
    const itemStart = p;
    need(1);
    const ib = buf[p++]!;
    const major = ib >> 5;
    const info = ib & 31;
    let value: CborValue | undefined;

    if (pendingTag && major !== 2) throw new CborError('tag42-not-bytes', `tag 42 over major type ${major}`);

    switch (major) {
      case 0:
      case 1: {
        const arg = readArg(info);
        const v = major === 0 ? arg : -1n - arg;
        if (v < INT64_MIN || v > INT64_MAX) beyondInt64 = true;
        value = { t: 'int', v };
        break;
      }
      case 2: {
        const n = need(readArg(info));
        const b = buf.subarray(p, p + n);
        p += n;
        if (pendingTag) {
          pendingTag = false;
          value = { t: 'tag', tag: 42n, v: { t: 'bytes', v: b } };
          checkCidBytes(b);
        } else {
          value = { t: 'bytes', v: b };
        }
        break;
      }
      case 3: {
        const n = need(readArg(info));
        let s: string;
        try {
          s = utf8Strict.decode(buf.subarray(p, p + n));
        } catch {
          throw new CborError('invalid-utf8', `text string at ${itemStart} is not UTF-8`);
        }
        p += n;
        value = { t: 'text', v: s };
        break;
      }
      case 4:
      case 5: {
        const n = readArg(info);
        // Every entry takes at least a byte (two for a map entry): refuse counts the input cannot hold.
        need(major === 4 ? n : n * 2n);
        const count = Number(n);
        depth++;
        if (depth > maxDepth) maxDepth = depth;
        if (count === 0) {
          depth--;
          value = major === 4 ? { t: 'array', v: [] } : { t: 'map', v: [] };
          break;
        }
        stack.push({ kind: major === 4 ? 'array' : 'map', items: [], remaining: count, key: undefined, prevKey: undefined, expectKey: major === 5 });
        continue;
      }
      case 6: {
        const tag = readArg(info);
        if (tag !== 42n) throw new CborError('tag-not-42', `tag ${tag} at ${itemStart}`);
        pendingTag = true;
        continue;
      }
      case 7: {
        if (info === 20 || info === 21 || info === 22) value = { t: 'simple', v: info };
        else if (info === 27) {
          need(8);
          const f = view.getFloat64(p);
          p += 8;
          if (!Number.isFinite(f)) throw new CborError('float-nonfinite', `${f} at ${itemStart}`);
          floats = true;
          value = { t: 'float', v: f };
        } else if (info === 25 || info === 26) throw new CborError('float-width', `${info === 25 ? 16 : 32}-bit float at ${itemStart}`);
        else if (info === 31) throw new CborError('indefinite', `break code at ${itemStart}`);
        else throw new CborError('simple-value', `simple value ${info === 24 ? buf[p] : info} at ${itemStart}`);
        break;
      }
    }

    // Attach the finished value to its containers, closing those that are full.
    let done: CborValue = value!;
    for (;;) {
      const top = stack[stack.length - 1];
      if (top === undefined) {
        return { value: done, end: p, depth: maxDepth, floats, beyondInt64 };
      }
      if (top.kind === 'array') {
        (top.items as CborValue[]).push(done);
        top.remaining--;
      } else if (top.expectKey) {
        if (done.t !== 'text') throw new CborError('map-key-not-text', `map key of type ${done.t} at ${itemStart}`);
        const keyBytes = buf.subarray(itemStart, p);
        if (top.prevKey !== undefined) {
          const c = compareKeys(keyBytes, top.prevKey);
          if (c === 0) throw new CborError('duplicate-key', `duplicate map key "${done.v}"`);
          if (c < 0) throw new CborError('map-key-order', `map key "${done.v}" out of canonical order`);
        }
        top.prevKey = keyBytes;
        top.key = done;
        top.expectKey = false;
        break;
      } else {
        (top.items as [CborValue, CborValue][]).push([top.key!, done]);
        top.remaining--;
        top.expectKey = true;
      }
      if (top.remaining > 0) break;
      stack.pop();
      depth--;
      done = top.kind === 'array' ? { t: 'array', v: top.items as CborValue[] } : { t: 'map', v: top.items as [CborValue, CborValue][] };
    }
  }
}

/** The bytes of a tag 42: 0x00 then a DASL CID (v1, dag-cbor or raw, sha-256, 32 bytes). */
function checkCidBytes(b: Uint8Array): void {
  if (b[0] !== 0) throw new CborError('cid-prefix', 'tag 42 bytes do not start with 0x00');
  const cid = b.subarray(1);
  try {
    CID.decode(cid);
  } catch (err) {
    throw new CborError('cid-invalid', `tag 42 holds no CID: ${(err as Error).message}`);
  }
  if (!isDaslCid(cid)) throw new CborError('cid-not-dasl', 'tag 42 CID is not a DASL CID (v1, dag-cbor/raw, sha-256)');
}

export const DAG_CBOR = 0x71;
export const RAW = 0x55;

export function isDaslCid(cid: Uint8Array): boolean {
  return cid.length === 36 && cid[0] === 1 && (cid[1] === DAG_CBOR || cid[1] === RAW) && cid[2] === 0x12 && cid[3] === 0x20;
}

/** The binary CID inside a decoded tag 42, or undefined. */
export function linkCid(v: CborValue | undefined): Uint8Array | undefined {
  if (v?.t !== 'tag' || v.tag !== 42n || v.v.t !== 'bytes') return undefined;
  return v.v.v.subarray(1);
}

export function mapGet(v: CborValue, key: string): CborValue | undefined {
  if (v.t !== 'map') return undefined;
  for (const [k, val] of v.v) if (k.t === 'text' && k.v === key) return val;
  return undefined;
}

/** A copy of a map with `key` set (added or replaced), or removed when `value` is undefined. */
export function mapSet(v: CborValue, key: string, value: CborValue | undefined): CborValue {
  if (v.t !== 'map') throw new Error('not a map');
  const entries = v.v.filter(([k]) => !(k.t === 'text' && k.v === key));
  if (value !== undefined) entries.push([text(key), value]);
  return { t: 'map', v: entries };
}

// ---------------------------------------------------------------- CIDs, varints, CARs

/** A DASL CID (v1, sha-256) of `block` with the given codec. */
export function cidOf(block: Uint8Array, codec = DAG_CBOR): Uint8Array {
  const out = new Uint8Array(36);
  out.set([1, codec, 0x12, 0x20]);
  out.set(createHash('sha256').update(block).digest(), 4);
  return out;
}

export function cidString(cid: Uint8Array): string {
  return CID.decode(cid).toString();
}

/** An unsigned LEB128 varint; `pad` extra continuation bytes make it non-minimal (hostile). */
export function varint(n: number | bigint, pad = 0): Uint8Array {
  let v = BigInt(n);
  const out: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n || pad > 0) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  for (let i = 0; i < pad; i++) out.push(i === pad - 1 ? 0x00 : 0x80);
  return Uint8Array.from(out);
}

export interface CarBlock {
  cid: Uint8Array;
  bytes: Uint8Array;
}

/** A CARv1: varint + header `{roots, version: 1}`, then varint + CID + bytes per block. */
export function buildCar(roots: Uint8Array[], blocks: CarBlock[]): Uint8Array {
  const header = encode(map({ roots: array(roots.map(link)), version: int(1) }));
  return concat([varint(header.length), header, ...blocks.flatMap((b) => [varint(b.cid.length + b.bytes.length), b.cid, b.bytes])]);
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}
