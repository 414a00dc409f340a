// Seeded mutations of real relay frames (the production capture and the PDS
// recording), by family. Structure-aware families decode a frame with the
// fuzzer's own CBOR toolkit, change one thing and re-encode it, so everything
// but the mutation stays valid; hostile records get a correct CID (sha-256,
// dag-cbor) so they get past the CID check to the record decoder.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { splitLengthPrefixed } from '../../src/replay/frames-file.ts';
import { corpusFrames } from './corpus.ts';
import {
  array, buildCar, bytes, cidOf, concat, decodeStrict, encode, FALSE, float, head, int, link, linkCid, map, mapGet, mapSet, NULL, raw, text, TRUE, UNDEFINED, varint, type CarBlock, type CborValue,
} from './fuzz-cbor.ts';
import { parseCar } from './fuzz-oracle.ts';
import { prng } from './prng.ts';

export const PDS_FRAMES_FILE = fileURLToPath(new URL('../fixtures/pds/frames.bin', import.meta.url));

export interface SeedFrame {
  bytes: Uint8Array;
  header: CborValue;
  body: CborValue;
  type: string;
  /** #commit and #sync: the CAR, parsed. */
  car?: { roots: Uint8Array[]; blocks: CarBlock[] };
}

export interface Mutant {
  family: string;
  variant: string;
  bytes: Uint8Array;
}

export type Rand = () => number;

/** The real frames every mutation starts from. */
export function loadSeedFrames(): SeedFrame[] {
  const all = [...corpusFrames(), ...splitLengthPrefixed(readFileSync(PDS_FRAMES_FILE))];
  return all.map(seedFrameOf);
}

/** A valid frame, decoded for the structure-aware families. */
export function seedFrameOf(frame: Uint8Array): SeedFrame {
  const bytesCopy = Uint8Array.from(frame);
  const h = decodeStrict(bytesCopy, 0);
  const b = decodeStrict(bytesCopy, h.end);
  const t = mapGet(h.value, 't');
  const seed: SeedFrame = { bytes: bytesCopy, header: h.value, body: b.value, type: t?.t === 'text' ? t.v : '?' };
  const blocks = mapGet(b.value, 'blocks');
  if (blocks?.t === 'bytes') seed.car = parseCar(blocks.v);
  return seed;
}

export function frameOf(header: CborValue, body: CborValue): Uint8Array {
  return concat([encode(header), encode(body)]);
}

// ---------------------------------------------------------------- helpers

export const pick = <T>(r: Rand, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const below = (r: Rand, n: number): number => Math.floor(r() * n);
const randomBytes = (r: Rand, n: number): Uint8Array => Uint8Array.from({ length: n }, () => below(r, 256));

/** Bytes that change the meaning of CBOR heads: length prefixes, breaks, tags, floats, simple values. */
const INTERESTING = [0x00, 0x01, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1f, 0x20, 0x38, 0x3b, 0x40, 0x58, 0x5b, 0x5f, 0x60, 0x78, 0x7b, 0x7f, 0x80, 0x98, 0x9b, 0x9f, 0xa0, 0xb8, 0xbb, 0xbf, 0xc0, 0xc2, 0xd8, 0xd9, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xff, 0x2a, 0x7e, 0xfe];

function withOps(body: CborValue, f: (ops: CborValue[]) => CborValue[]): CborValue {
  const ops = mapGet(body, 'ops');
  return mapSet(body, 'ops', array(f(ops?.t === 'array' ? [...ops.v] : [])));
}

function setOpField(body: CborValue, i: number, field: string, value: CborValue | undefined): CborValue {
  return withOps(body, (ops) => {
    ops[i] = mapSet(ops[i]!, field, value);
    return ops;
  });
}

function opIndexes(seed: SeedFrame, pred: (action: string) => boolean): number[] {
  const ops = mapGet(seed.body, 'ops');
  if (ops?.t !== 'array') return [];
  return ops.v.flatMap((o, i) => {
    const a = mapGet(o, 'action');
    return a?.t === 'text' && pred(a.v) ? [i] : [];
  });
}

const isRecordOp = (a: string) => a === 'create' || a === 'update';

/** A float64 given by its bit pattern (NaN, infinities). */
const rawFloat = (hexBits: string): CborValue => raw(Buffer.from(`fb${hexBits}`, 'hex'));

// ---------------------------------------------------------------- families

type Family = (r: Rand, seeds: SeedFrame[]) => Mutant;

const bitflip: Family = (r, seeds) => {
  const out = Uint8Array.from(pick(r, seeds).bytes);
  const n = 1 + Math.floor(r() * r() * 8);
  for (let i = 0; i < n; i++) out[below(r, out.length)]! ^= 1 << below(r, 8);
  return { family: 'bitflip', variant: `bits-${n}`, bytes: out };
};

const byteEdit: Family = (r, seeds) => {
  const src = pick(r, seeds).bytes;
  const at = below(r, src.length);
  const kind = pick(r, ['replace', 'interesting', 'insert', 'delete', 'duplicate'] as const);
  switch (kind) {
    case 'replace': {
      const out = Uint8Array.from(src);
      const n = 1 + below(r, 8);
      for (let i = 0; i < n; i++) out[below(r, out.length)] = below(r, 256);
      return { family: 'bytes', variant: 'replace', bytes: out };
    }
    case 'interesting': {
      const out = Uint8Array.from(src);
      out[at] = pick(r, INTERESTING);
      return { family: 'bytes', variant: 'interesting', bytes: out };
    }
    case 'insert':
      return { family: 'bytes', variant: 'insert', bytes: concat([src.subarray(0, at), Uint8Array.from({ length: 1 + below(r, 4) }, () => pick(r, INTERESTING)), src.subarray(at)]) };
    case 'delete':
      return { family: 'bytes', variant: 'delete', bytes: concat([src.subarray(0, at), src.subarray(Math.min(src.length, at + 1 + below(r, 16)))]) };
    case 'duplicate': {
      const end = Math.min(src.length, at + 1 + below(r, 64));
      return { family: 'bytes', variant: 'duplicate', bytes: concat([src.subarray(0, end), src.subarray(at, end), src.subarray(end)]) };
    }
  }
};

const truncate: Family = (r, seeds) => {
  const src = pick(r, seeds).bytes;
  switch (pick(r, ['anywhere', 'tail', 'header', 'append-junk', 'append-item'] as const)) {
    case 'anywhere':
      return { family: 'truncate', variant: 'anywhere', bytes: src.subarray(0, below(r, src.length)) };
    case 'tail':
      return { family: 'truncate', variant: 'tail', bytes: src.subarray(0, Math.max(0, src.length - 1 - below(r, 64))) };
    case 'header':
      return { family: 'truncate', variant: 'header', bytes: src.subarray(0, below(r, 20)) };
    case 'append-junk':
      return { family: 'truncate', variant: 'append-junk', bytes: concat([src, randomBytes(r, 1 + below(r, 16))]) };
    case 'append-item':
      return { family: 'truncate', variant: 'append-item', bytes: concat([src, encode(map({ extra: int(1) }))]) };
  }
};

/** Values a field of the wrong type might hold. */
function confusers(r: Rand, original: CborValue | undefined): [string, CborValue | undefined][] {
  const num = original?.t === 'int' ? Number(original.v) : 31527015322;
  const str = original?.t === 'text' ? original.v : 'did:plc:2oib4tg6eczioz6o4frmcscl';
  return [
    ['text', text(String(num))],
    ['empty-text', text('')],
    ['int-0', int(0)],
    ['int-neg', int(-1)],
    ['int-2^53', int(2n ** 53n)],
    ['int-2^63-1', int(2n ** 63n - 1n)],
    ['uint64-max', int(2n ** 64n - 1n)],
    ['int-min64', int(-(2n ** 63n))],
    ['nint-max', int(-(2n ** 64n))],
    ['float', float(1.5)],
    ['float-integral', float(num)],
    ['float-neg-zero', float(-0)],
    ['nan', rawFloat('7ff8000000000000')],
    ['infinity', rawFloat('7ff0000000000000')],
    ['half-float', raw([0xf9, 0x3c, 0x00])],
    ['bytes', bytes(new TextEncoder().encode(str))],
    ['link', link(cidOf(randomBytes(r, 8)))],
    ['null', NULL],
    ['undefined', UNDEFINED],
    ['true', TRUE],
    ['array', array(original === undefined ? [] : [original])],
    ['map', map({})],
    ['missing', undefined],
  ];
}

const FIELDS: Record<string, string[]> = {
  '#commit': ['seq', 'repo', 'commit', 'rev', 'time', 'blocks', 'ops'],
  '#identity': ['seq', 'did', 'time', 'handle'],
  '#account': ['seq', 'did', 'time', 'active', 'status'],
  '#sync': ['seq', 'did', 'rev', 'time', 'blocks'],
};

const typeConfusion: Family = (r, seeds) => {
  const seed = pick(r, seeds);
  const { header, body } = seed;
  const m = (variant: string, h: CborValue, b: CborValue): Mutant => ({ family: 'type', variant, bytes: frameOf(h, b) });
  const choice = below(r, 10);
  if (choice === 0) {
    // The header: op and t.
    const [name, v] = pick(r, [
      ['op-2', int(2)], ['op-0', int(0)], ['op--2', int(-2)], ['op-text', text('1')], ['op-float', float(1)], ['op-missing', undefined], ['op-bigint', int(2n ** 64n - 1n)],
      ['t-int', int(1)], ['t-missing', undefined], ['t-unknown', text('#frobnicate')], ['t-no-hash', text(seed.type.slice(1))], ['t-empty', text('')],
      ['t-commit', text('#commit')], ['t-identity', text('#identity')], ['t-account', text('#account')], ['t-sync', text('#sync')], ['t-info', text('#info')],
    ] as [string, CborValue | undefined][]);
    const field = name.startsWith('op') ? 'op' : 't';
    return m(`header-${name}`, mapSet(header, field, v), body);
  }
  if (choice === 1) return errorFrame(r);
  if (choice === 2) return infoFrame(r);
  const fields = FIELDS[seed.type];
  if (fields === undefined) return errorFrame(r);
  if (seed.type === '#commit' && choice >= 6) return opConfusion(r, seed);
  const field = pick(r, fields);
  const [name, v] = pick(r, confusers(r, mapGet(body, field)));
  return m(`${field}-${name}`, header, mapSet(body, field, v));
};

function opConfusion(r: Rand, seed: SeedFrame): Mutant {
  const m = (variant: string, b: CborValue): Mutant => ({ family: 'type', variant, bytes: frameOf(seed.header, b) });
  const ops = mapGet(seed.body, 'ops');
  const n = ops?.t === 'array' ? ops.v.length : 0;
  if (n === 0) return m('ops-not-array', mapSet(seed.body, 'ops', map({})));
  const i = below(r, n);
  const records = opIndexes(seed, isRecordOp);
  const deletes = opIndexes(seed, (a) => a === 'delete');
  switch (below(r, 9)) {
    case 0: {
      const [name, v] = pick(r, [['not-array', map({})], ['text', text('ops')], ['null', NULL], ['item-int', array([int(1)])], ['item-null', array([NULL])], ['item-array', array([array([])])]] as [string, CborValue][]);
      return m(`ops-${name}`, mapSet(seed.body, 'ops', v));
    }
    case 1: {
      const [name, v] = pick(r, [['unknown', text('frobnicate')], ['capital', text('Create')], ['empty', text('')], ['int', int(1)], ['missing', undefined], ['null', NULL]] as [string, CborValue | undefined][]);
      return m(`op-action-${name}`, setOpField(seed.body, i, 'action', v));
    }
    case 2: {
      const [name, v] = pick(r, [
        ['no-slash', text('app.bsky.feed.like')], ['two-slashes', text('app.bsky.feed.like/a/b')], ['leading-slash', text('/app.bsky.feed.like')], ['empty-rkey', text('app.bsky.feed.like/')],
        ['empty-collection', text('/3mptbyptgpf2g')], ['bad-nsid', text('app..bsky/3mptbyptgpf2g')], ['two-segment-nsid', text('bsky.like/3mptbyptgpf2g')], ['nsid-chars', text('app.bsky.feed.l!ke/3mptbyptgpf2g')],
        ['rkey-dot', text('app.bsky.feed.like/.')], ['rkey-dotdot', text('app.bsky.feed.like/..')], ['rkey-space', text('app.bsky.feed.like/a b')], ['rkey-unicode', text('app.bsky.feed.like/é')],
        ['rkey-long', text(`app.bsky.feed.like/${'a'.repeat(600)}`)], ['rkey-colon', text('app.bsky.feed.like/a:b')], ['rkey-tilde', text('app.bsky.feed.like/a~b')], ['path-int', int(5)], ['path-bytes', bytes(new Uint8Array(3))],
      ] as [string, CborValue][]);
      return m(`op-path-${name}`, setOpField(seed.body, i, 'path', v));
    }
    case 3: {
      const [name, v] = pick(r, [['text', text('bafyreiguce4jh7kcbmof3pmcvasifqtw24b6isakj5ve5ga2b4z4alpc4i')], ['bytes', bytes(cidOf(new Uint8Array(1)))], ['int', int(0)], ['missing', undefined], ['map', map({ $link: text('bafy') })]] as [string, CborValue | undefined][]);
      return m(`op-cid-${name}`, setOpField(seed.body, i, 'cid', v));
    }
    case 4:
      if (records.length > 0) return m('op-create-null-cid', setOpField(seed.body, pick(r, records), 'cid', NULL));
      return m('op-cid-missing', setOpField(seed.body, i, 'cid', undefined));
    case 5:
      if (deletes.length > 0) return m('op-delete-with-cid', setOpField(seed.body, pick(r, deletes), 'cid', link(cidOf(new Uint8Array([1])))));
      if (records.length > 0) return m('op-record-as-delete', setOpField(seed.body, pick(r, records), 'action', text('delete')));
      return m('op-extra-field', setOpField(seed.body, i, 'extra', int(1)));
    case 6:
      if (deletes.length > 0) return m('op-delete-cid-missing', setOpField(seed.body, pick(r, deletes), 'cid', undefined));
      return m('op-item-not-map', withOps(seed.body, (os) => [...os, text('op')]));
    case 7:
      return m('op-duplicated', withOps(seed.body, (os) => [...os, os[i]!]));
    default:
      return m('op-not-map', withOps(seed.body, (os) => os.map((o, j) => (j === i ? array([o]) : o))));
  }
}

function errorFrame(r: Rand): Mutant {
  const [name, h, b] = pick(r, [
    ['future-cursor', map({ op: int(-1) }), map({ error: text('FutureCursor'), message: text('cursor in the future') })],
    ['too-slow', map({ op: int(-1) }), map({ error: text('ConsumerTooSlow') })],
    ['empty-body', map({ op: int(-1) }), map({})],
    ['error-int', map({ op: int(-1) }), map({ error: int(5) })],
    ['message-int', map({ op: int(-1) }), map({ error: text('X'), message: int(7) })],
    ['message-null', map({ op: int(-1) }), map({ error: text('X'), message: NULL })],
    ['body-array', map({ op: int(-1) }), array([text('FutureCursor')])],
    ['body-text', map({ op: int(-1) }), text('FutureCursor')],
    ['with-t', map({ op: int(-1), t: text('#commit') }), map({ error: text('X') })],
    ['huge-message', map({ op: int(-1) }), map({ error: text('X'), message: text('m'.repeat(100_000)) })],
    ['error-empty', map({ op: int(-1) }), map({ error: text('') })],
    ['error-bytes', map({ op: int(-1) }), map({ error: bytes(new Uint8Array(4)) })],
  ] as [string, CborValue, CborValue][]);
  return { family: 'type', variant: `error-${name}`, bytes: frameOf(h, b) };
}

function infoFrame(r: Rand): Mutant {
  const h = map({ op: int(1), t: text('#info') });
  const [name, b] = pick(r, [
    ['outdated', map({ name: text('OutdatedCursor'), message: text('Requested cursor exceeded limit. Possibly missing events') })],
    ['no-message', map({ name: text('OutdatedCursor') })],
    ['name-int', map({ name: int(1) })],
    ['name-missing', map({ message: text('x') })],
    ['message-null', map({ name: text('X'), message: NULL })],
    ['with-seq', map({ name: text('X'), seq: int(5) })],
    ['unknown-name', map({ name: text('SomethingNew'), message: text('hello') })],
  ] as [string, CborValue][]);
  return { family: 'type', variant: `info-${name}`, bytes: frameOf(h, b) };
}

// ---------------------------------------------------------------- hostile CARs

export function withCar(seed: SeedFrame, car: Uint8Array): Uint8Array {
  return frameOf(seed.header, mapSet(seed.body, 'blocks', bytes(car)));
}

export const carSeeds = (seeds: SeedFrame[]) => seeds.filter((s) => s.car !== undefined && (s.type === '#sync' || opIndexes(s, isRecordOp).length > 0));

const carFamily: Family = (r, seeds) => {
  const seed = pick(r, carSeeds(seeds));
  const [name, make] = pick(r, carVariants(r, seed));
  return { family: 'car', variant: `${seed.type.slice(1)}-${name}`, bytes: withCar(seed, make()) };
};

/** Hostile CARs for a #commit (around one of its record blocks) or #sync frame. */
export function carVariants(r: Rand, seed: SeedFrame): [string, () => Uint8Array][] {
  const { roots, blocks } = seed.car!;
  const records = opIndexes(seed, isRecordOp);
  const recordCid = records.length > 0 ? linkCid(mapGet((mapGet(seed.body, 'ops') as { v: CborValue[] }).v[pick(r, records)]!, 'cid'))! : roots[0]!;
  const ri = Math.max(0, blocks.findIndex((b) => Buffer.from(b.cid).equals(Buffer.from(recordCid))));
  const headerOf = (value: CborValue) => {
    const h = encode(value);
    return concat([varint(h.length), h]);
  };
  const goodHeader = headerOf(map({ roots: array(roots.map(link)), version: int(1) }));
  const section = (b: CarBlock, lengthBytes?: Uint8Array) => concat([lengthBytes ?? varint(b.cid.length + b.bytes.length), b.cid, b.bytes]);
  const body = (bs: CarBlock[]) => concat(bs.map((b) => section(b)));
  const withBlock = (i: number, f: (b: CarBlock) => CarBlock) => blocks.map((b, j) => (j === i ? f(b) : b));
  const withCidByte = (pos: number, value: number) => body(withBlock(ri, (b) => ({ cid: Uint8Array.from(b.cid, (x, k) => (k === pos ? value : x)), bytes: b.bytes })));
  const full = buildCar(roots, blocks);

  return [
    ['empty', () => new Uint8Array(0)],
    ['garbage', () => randomBytes(r, 1 + below(r, 64))],
    ['header-only', () => goodHeader],
    ['header-length-huge', () => concat([varint(2 ** 40), goodHeader.subarray(1)])],
    ['header-length-zero', () => concat([varint(0), goodHeader.subarray(1)])],
    ['header-length-past-end', () => concat([varint(full.length * 2), full.subarray(1)])],
    ['header-varint-non-minimal', () => concat([varint(goodHeader.length - 1, 1), goodHeader.subarray(1), body(blocks)])],
    ['header-varint-overlong', () => concat([Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), goodHeader.subarray(1)])],
    ['header-varint-truncated', () => Uint8Array.of(0x80)],
    ['header-not-map', () => concat([headerOf(array([int(1), array(roots.map(link))])), body(blocks)])],
    ['version-2', () => concat([headerOf(map({ roots: array(roots.map(link)), version: int(2) })), body(blocks)])],
    ['version-text', () => concat([headerOf(map({ roots: array(roots.map(link)), version: text('1') })), body(blocks)])],
    ['version-missing', () => concat([headerOf(map({ roots: array(roots.map(link)) })), body(blocks)])],
    ['roots-missing', () => concat([headerOf(map({ version: int(1) })), body(blocks)])],
    ['roots-not-array', () => concat([headerOf(map({ roots: link(roots[0]!), version: int(1) })), body(blocks)])],
    ['roots-zero', () => concat([headerOf(map({ roots: array([]), version: int(1) })), body(blocks)])],
    ['roots-not-links', () => concat([headerOf(map({ roots: array([text('bafy')]), version: int(1) })), body(blocks)])],
    ['roots-unknown-cid', () => concat([headerOf(map({ roots: array([link(cidOf(new Uint8Array(2)))]), version: int(1) })), body(blocks)])],
    ['header-extra-key', () => concat([headerOf(map({ roots: array(roots.map(link)), version: int(1), note: text('metadata') })), body(blocks)])],
    ['header-unsorted', () => concat([headerOf({ t: 'map', v: [[text('version'), int(1)], [text('roots'), array(roots.map(link))]] }), body(blocks)].map((x, i) => (i === 0 ? reencodeUnsorted(x) : x)))],
    ['block-length-huge', () => concat([goodHeader, section(blocks[ri]!, varint(2 ** 50))])],
    ['block-length-past-end', () => concat([goodHeader, ...blocks.map((b, j) => (j === blocks.length - 1 ? section(b, varint(b.cid.length + b.bytes.length + 10)) : section(b)))])],
    ['block-length-short', () => concat([goodHeader, body(blocks), varint(20), randomBytes(r, 20)])],
    ['block-length-zero', () => concat([goodHeader, body(blocks), varint(0)])],
    ['block-varint-non-minimal', () => concat([goodHeader, ...blocks.map((b, j) => (j === ri ? section(b, varint(b.cid.length + b.bytes.length, 1)) : section(b)))])],
    ['block-varint-overlong', () => concat([goodHeader, body(blocks), Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])])],
    ['block-truncated', () => {
      const car = concat([goodHeader, body(blocks)]);
      return car.subarray(0, goodHeader.length + below(r, car.length - goodHeader.length));
    }],
    ['cid-version-0-byte', () => concat([goodHeader, withCidByte(0, 0)])],
    ['cid-version-2', () => concat([goodHeader, withCidByte(0, 2)])],
    ['cid-codec-dag-pb', () => concat([goodHeader, withCidByte(1, 0x70)])],
    ['cid-codec-raw', () => concat([goodHeader, withCidByte(1, 0x55)])],
    ['cid-hash-sha512', () => concat([goodHeader, withCidByte(2, 0x13)])],
    ['cid-digest-size-16', () => concat([goodHeader, withCidByte(3, 0x10)])],
    ['cid-v0', () => concat([goodHeader, ...blocks.map((b, j) => (j === ri ? concat([varint(34 + b.bytes.length), Uint8Array.of(0x12, 0x20), b.cid.subarray(4), b.bytes]) : section(b)))])],
    ['record-block-dropped', () => concat([goodHeader, body(blocks.filter((_, j) => j !== ri))])],
    ['record-block-duplicated', () => concat([goodHeader, body([...blocks, blocks[ri]!])])],
    ['record-block-corrupt', () => concat([goodHeader, body(withBlock(ri, (b) => ({ cid: b.cid, bytes: Uint8Array.from(b.bytes, (x, k) => (k === b.bytes.length - 1 ? x ^ 1 : x)) })))])],
    ['record-block-other-bytes', () => concat([goodHeader, body(withBlock(ri, (b) => ({ cid: b.cid, bytes: blocks[(ri + 1) % blocks.length]!.bytes })))])],
    ['blocks-reversed', () => concat([goodHeader, body([...blocks].reverse())])],
    ['trailing-garbage', () => concat([full, randomBytes(r, 1 + below(r, 40))])],
  ];
}

/** The same header with its map keys in the order given (not canonical). */
function reencodeUnsorted(prefixed: Uint8Array): Uint8Array {
  const h = decodeStrict(prefixed, prefixed[0]! < 0x80 ? 1 : 2);
  const unsorted = encode({ t: 'map', v: [...(h.value as { v: [CborValue, CborValue][] }).v].reverse() }, { keepKeyOrder: true });
  return concat([varint(unsorted.length), unsorted]);
}

// ---------------------------------------------------------------- hostile records

/** Containers nested `levels` deep (each a map {"a": ...} or an array of one), innermost holding 1. */
export function nested(levels: number, kind: 'map' | 'array'): CborValue {
  const prefix = kind === 'map' ? [0xa1, 0x61, 0x61] : [0x81];
  const out = new Uint8Array(levels * prefix.length + 1);
  for (let i = 0; i < levels; i++) out.set(prefix, i * prefix.length);
  out[out.length - 1] = 0x01;
  return raw(out);
}

const DEPTHS = [127, 128, 129, 200, 1_000, 5_000, 20_000];
const WIDTHS = [10_000, 100_000];

/** A record around `value`: {"$type", "createdAt", "x": value}. */
function recordWith(type: string, value: CborValue): Uint8Array {
  return encode(map({ $type: text(type), createdAt: text('2026-07-04T14:38:07.517Z'), x: value }));
}

/** Every hostile record, by name, as a builder of its encoding; `type` is the op's collection. */
export function hostileRecords(type: string): [string, () => Uint8Array][] {
  const k = (s: string) => text(s);
  const rec = (name: string, value: () => CborValue): [string, () => Uint8Array] => [name, () => recordWith(type, value())];
  const whole = (name: string, b: () => Uint8Array | number[]): [string, () => Uint8Array] => [name, () => Uint8Array.from(b())];
  const h = (hexs: string) => Buffer.from(hexs, 'hex');
  return [
    // Depth is counted with the record map as level 1: "x" holds the rest.
    ...DEPTHS.flatMap((depth) => (['map', 'array'] as const).map((kind) => rec(`deep-${kind}-${depth}`, () => nested(depth - 1, kind)))),
    ...WIDTHS.flatMap((n) => [
      rec(`wide-map-${n}`, () => ({ t: 'map', v: Array.from({ length: n }, (_, i) => [k(`k${String(i).padStart(6, '0')}`), int(i)] as [CborValue, CborValue]) })),
      rec(`wide-array-${n}`, () => array(Array.from({ length: n }, (_, i) => int(i)))),
    ]),
    rec('utf8-invalid-ff', () => ({ t: 'rawtext', v: Uint8Array.of(0x61, 0xff, 0x62) })),
    rec('utf8-overlong', () => ({ t: 'rawtext', v: Uint8Array.of(0xc0, 0xaf) })),
    rec('utf8-surrogate', () => ({ t: 'rawtext', v: Uint8Array.of(0xed, 0xa0, 0x80) })),
    rec('utf8-truncated', () => ({ t: 'rawtext', v: Uint8Array.of(0xe2, 0x82) })),
    rec('utf8-beyond-10ffff', () => ({ t: 'rawtext', v: Uint8Array.of(0xf4, 0x90, 0x80, 0x80) })),
    whole('utf8-invalid-key', () => concat([head(5, 3), encode(k('$type')), encode(k(type)), head(3, 1), Uint8Array.of(0xff), encode(int(1)), encode(k('createdAt')), encode(k('x'))])),
    rec('bom-text', () => k('\ufeffhello')),
    rec('tag-0-datetime', () => raw(concat([h('c0'), encode(k('2026-07-04T14:38:07Z'))]))),
    rec('tag-1-epoch', () => raw(h('c11a5f5e1000'))),
    rec('tag-2-bignum', () => raw(h('c249010000000000000000'))),
    rec('tag-24-embedded', () => raw(concat([h('d818'), encode(bytes(encode(int(1))))]))),
    whole('tag-55799-self-describe', () => concat([h('d9d9f7'), recordWith(type, int(1))])),
    rec('tag-258-set', () => raw(concat([h('d90102'), encode(array([int(1)]))]))),
    rec('tag42-text', () => raw(concat([h('d82a'), encode(k('bafyrei'))]))),
    rec('tag42-int', () => raw(h('d82a01'))),
    rec('tag42-no-prefix', () => raw(concat([h('d82a'), encode(bytes(cidOf(new Uint8Array(3))))]))),
    rec('tag42-garbage', () => raw(concat([h('d82a'), encode(bytes(Uint8Array.of(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)))]))),
    rec('tag42-empty', () => raw(concat([h('d82a'), encode(bytes(new Uint8Array(0)))]))),
    rec('tag42-cidv0', () => raw(concat([h('d82a'), encode(bytes(concat([Uint8Array.of(0, 0x12, 0x20), cidOf(new Uint8Array(1)).subarray(4)])))]))),
    rec('tag42-sha512', () => raw(concat([h('d82a'), encode(bytes(concat([Uint8Array.of(0, 1, 0x71, 0x13, 0x40), new Uint8Array(64)])))]))),
    rec('tag42-identity-hash', () => raw(concat([h('d82a'), encode(bytes(Uint8Array.of(0, 1, 0x55, 0x00, 0x03, 1, 2, 3)))]))),
    rec('tag42-raw-codec', () => link(cidOf(new Uint8Array([7]), 0x55))),
    rec('tag42-nested', () => raw(concat([h('d82a'), h('d82a'), encode(bytes(concat([Uint8Array.of(0), cidOf(new Uint8Array(1))])))]))),
    rec('int-2^53-1', () => int(2n ** 53n - 1n)),
    rec('int-2^53', () => int(2n ** 53n)),
    rec('int-2^53+1', () => int(2n ** 53n + 1n)),
    rec('int-2^63-1', () => int(2n ** 63n - 1n)),
    rec('int-min64', () => int(-(2n ** 63n))),
    rec('int--2^53-1', () => int(-(2n ** 53n) - 1n)),
    rec('uint64-max', () => int(2n ** 64n - 1n)),
    rec('nint-max', () => int(-(2n ** 64n))),
    rec('float-1.5', () => float(1.5)),
    rec('float-integral', () => float(1)),
    rec('float-neg-zero', () => float(-0)),
    rec('float-max', () => float(1.7976931348623157e308)),
    rec('float-subnormal', () => float(5e-324)),
    rec('float16', () => raw(h('f93c00'))),
    rec('float32', () => raw(h('fa3fc00000'))),
    rec('float-nan', () => rawFloat('7ff8000000000000')),
    rec('float-inf', () => rawFloat('7ff0000000000000')),
    rec('float-neg-inf', () => rawFloat('fff0000000000000')),
    rec('float16-nan', () => raw(h('f97e00'))),
    rec('undefined', () => UNDEFINED),
    rec('simple-0', () => raw(h('e0'))),
    rec('simple-32', () => raw(h('f820'))),
    rec('break', () => raw(h('ff'))),
    rec('key-int', () => ({ t: 'map', v: [[int(1), int(1)]] })),
    rec('key-bytes', () => ({ t: 'map', v: [[bytes(Uint8Array.of(1)), int(1)]] })),
    rec('key-array', () => ({ t: 'map', v: [[array([]), int(1)]] })),
    rec('key-null', () => ({ t: 'map', v: [[NULL, int(1)]] })),
    rec('key-negative', () => ({ t: 'map', v: [[int(-5), int(1)]] })),
    rec('duplicate-keys', () => raw(encode({ t: 'map', v: [[k('a'), int(1)], [k('a'), int(2)]] }, { keepKeyOrder: true }))),
    rec('unsorted-keys', () => raw(encode({ t: 'map', v: [[k('b'), int(1)], [k('a'), int(2)]] }, { keepKeyOrder: true }))),
    rec('length-before-bytes', () => raw(encode({ t: 'map', v: [[k('aa'), int(1)], [k('b'), int(2)]] }, { keepKeyOrder: true }))),
    rec('non-minimal-int', () => raw(h('1805'))),
    rec('non-minimal-length', () => raw(h('7803616263'))),
    rec('indefinite-map', () => raw(h('bf616101ff'))),
    rec('indefinite-array', () => raw(h('9f01ff'))),
    rec('indefinite-text', () => raw(h('7f6161ff'))),
    rec('indefinite-bytes', () => raw(h('5f4101ff'))),
    rec('proto-key', () => map({ __proto__: map({ polluted: TRUE }) })),
    rec('proto-null', () => map({ __proto__: NULL })),
    ['proto-top-level', () => encode(map({ $type: k(type), __proto__: map({ isAdmin: TRUE }), createdAt: k('2026-07-04T14:38:07.517Z') }))],
    rec('constructor-key', () => map({ constructor: k('x'), prototype: int(1), toString: int(2), hasOwnProperty: int(3), valueOf: NULL })),
    rec('tojson-key', () => map({ toJSON: k('not a function') })),
    rec('huge-bytes-1m', () => bytes(new Uint8Array(1_000_000).fill(0xab))),
    rec('huge-bytes-3m', () => bytes(new Uint8Array(3_000_000))),
    rec('huge-text-1m', () => k('\u00e9'.repeat(500_000))),
    rec('long-key', () => map({ ['k'.repeat(10_000)]: int(1) })),
    rec('ambiguous-link', () => map({ $link: k('bafyreiguce4jh7kcbmof3pmcvasifqtw24b6isakj5ve5ga2b4z4alpc4i') })),
    rec('ambiguous-bytes', () => map({ $bytes: k('aGVsbG8') })),
    rec('link-key-not-string', () => map({ $link: int(1) })),
    rec('link-key-with-sibling', () => map({ $link: k('bafy'), other: int(1) })),
    ['type-int', () => encode(map({ $type: int(1), createdAt: k('x') }))],
    ['type-missing', () => encode(map({ createdAt: k('2026-07-04T14:38:07.517Z') }))],
    ['empty-record', () => encode(map({}))],
    whole('not-map-array', () => encode(array([k(type)]))),
    whole('not-map-text', () => encode(k(type))),
    whole('not-map-int', () => encode(int(1))),
    whole('not-map-null', () => encode(NULL)),
    whole('not-map-bytes', () => encode(bytes(new Uint8Array(4)))),
    whole('trailing-byte', () => concat([recordWith(type, int(1)), Uint8Array.of(0)])),
    whole('two-items', () => concat([recordWith(type, int(1)), recordWith(type, int(2))])),
    whole('empty-block', () => new Uint8Array(0)),
    rec('unicode-keys', () => map({ '😀': int(1), '\uffff': int(2), '\u0000': int(3), 'é': int(4), 'e\u0301': int(5), '\u202e': int(6), '': int(7) })),
    rec('nul-in-text', () => k('a\u0000b')),
    rec('many-links', () => array(Array.from({ length: 5_000 }, (_, i) => link(cidOf(Uint8Array.of(i & 0xff, i >> 8)))))),
    rec('bytes-empty', () => bytes(new Uint8Array(0))),
    rec('blob-ref', () => map({ $type: k('blob'), ref: link(cidOf(new Uint8Array(5), 0x55)), mimeType: k('image/jpeg'), size: int(12345) })),
    rec('false-null-mix', () => array([FALSE, TRUE, NULL, int(0), k(''), array([]), map({})])),
  ];
}

/** Deep and wide records are slow to build and check: drawn less often than the others. */
function pickHostileRecord(r: Rand, type: string): [string, () => Uint8Array] {
  const all = hostileRecords(type);
  const choice = below(r, 100);
  if (choice < 22) {
    const depth = DEPTHS[Math.min(DEPTHS.length - 1, Math.floor(-Math.log2(r() + 1e-9) * 1.1))]!;
    const name = `deep-${r() < 0.5 ? 'map' : 'array'}-${depth}`;
    return all.find(([n]) => n === name)!;
  }
  if (choice < 25) {
    const name = `wide-${r() < 0.5 ? 'map' : 'array'}-${r() < 0.2 ? WIDTHS[1] : WIDTHS[0]}`;
    return all.find(([n]) => n === name)!;
  }
  return pick(r, all.filter(([n]) => !n.startsWith('deep-') && !n.startsWith('wide-')));
}

export const recordSeeds = (seeds: SeedFrame[]) => seeds.filter((s) => s.car !== undefined && opIndexes(s, isRecordOp).length > 0);

const recordFamily: Family = (r, seeds) => {
  const seed = pick(r, recordSeeds(seeds));
  const i = pick(r, opIndexes(seed, isRecordOp));
  const [name, make] = pickHostileRecord(r, collectionOf(seed, i));
  return { family: 'record', variant: name, bytes: withRecord(seed, i, make()) };
};

export function collectionOf(seed: SeedFrame, op: number): string {
  const path = mapGet((mapGet(seed.body, 'ops') as { v: CborValue[] }).v[op]!, 'path');
  return path?.t === 'text' ? path.v.split('/')[0]! : 'app.bsky.feed.post';
}

export const recordOps = (seed: SeedFrame): number[] => opIndexes(seed, isRecordOp);

/** The frame with op `op`'s record replaced by `record`, under its correct CID, in the CAR. */
export function withRecord(seed: SeedFrame, op: number, record: Uint8Array): Uint8Array {
  const ops = (mapGet(seed.body, 'ops') as { v: CborValue[] }).v;
  const oldCid = linkCid(mapGet(ops[op]!, 'cid'))!;
  const cid = cidOf(record);
  const { roots, blocks } = seed.car!;
  const replaced = blocks.map((b) => (Buffer.from(b.cid).equals(Buffer.from(oldCid)) ? { cid, bytes: record } : b));
  return frameOf(seed.header, mapSet(setOpField(seed.body, op, 'cid', link(cid)), 'blocks', bytes(buildCar(roots, replaced))));
}

const seqFamily: Family = (r, seeds) => {
  const seed = pick(r, seeds.filter((s) => mapGet(s.body, 'seq')?.t === 'int'));
  const base = (mapGet(seed.body, 'seq') as { v: bigint }).v;
  const [name, v] = pick(r, [
    ['max-safe', 2n ** 53n - 1n], ['2^53', 2n ** 53n], ['2^52', 2n ** 52n], ['far-future', base + 10n ** 12n], ['zero', 0n], ['one', 1n],
    ['backwards', base - 1000n], ['repeated', base], ['2^32', 2n ** 32n], ['2^32-1', 2n ** 32n - 1n], ['2^31', 2n ** 31n],
  ] as [string, bigint][]);
  return { family: 'seq', variant: name, bytes: frameOf(seed.header, mapSet(seed.body, 'seq', int(v))) };
};

const spliceFamily: Family = (r, seeds) => {
  const a = pick(r, seeds);
  const b = pick(r, seeds);
  switch (pick(r, ['header-swap', 'two-frames', 'body-twice', 'header-only'] as const)) {
    case 'header-swap':
      return { family: 'splice', variant: 'header-swap', bytes: frameOf(a.header, b.body) };
    case 'two-frames':
      return { family: 'splice', variant: 'two-frames', bytes: concat([a.bytes, b.bytes]) };
    case 'body-twice':
      return { family: 'splice', variant: 'body-twice', bytes: concat([encode(a.header), encode(a.body), encode(a.body)]) };
    case 'header-only':
      return { family: 'splice', variant: 'header-only', bytes: encode(a.header) };
  }
};

export const FAMILIES: Record<string, { weight: number; make: Family }> = {
  bitflip: { weight: 18, make: bitflip },
  bytes: { weight: 14, make: byteEdit },
  truncate: { weight: 7, make: truncate },
  type: { weight: 22, make: typeConfusion },
  car: { weight: 13, make: carFamily },
  record: { weight: 18, make: recordFamily },
  seq: { weight: 5, make: seqFamily },
  splice: { weight: 3, make: spliceFamily },
};

/** A seeded stream of mutants: the same seed gives the same inputs. */
export function* mutants(seed: number, seeds: SeedFrame[], only?: readonly string[]): Generator<Mutant> {
  const r = prng(seed);
  const entries = Object.entries(FAMILIES).filter(([name]) => only === undefined || only.includes(name));
  if (entries.length === 0) throw new Error(`no such family: ${only?.join(',')}`);
  const total = entries.reduce((n, [, f]) => n + f.weight, 0);
  for (;;) {
    let x = r() * total;
    const [, fam] = entries.find(([, f]) => (x -= f.weight) < 0) ?? entries[0]!;
    yield fam.make(r, seeds);
  }
}
