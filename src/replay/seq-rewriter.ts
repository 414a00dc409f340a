import { decode, decodeFirst, encode } from '@atcute/cbor';
import type { ReplayFrame } from './frames-file.ts';

/**
 * Reference rewrite: decode the body, set `seq`, re-encode canonically, keep the
 * header bytes. Slow (a full encode per call); the cached rewriter below must
 * produce exactly these bytes, and the tests hold it to that.
 */
export function rewriteFrameSeq(bytes: Uint8Array, seq: number): Uint8Array {
  const { headerLength, body } = decodeMessageFrame(bytes);
  body['seq'] = seq;
  return concat(bytes.subarray(0, headerLength), encode(body));
}

export interface SeqRewriter {
  /** Bytes of frame `index` with its body seq set to `seq`; a fresh buffer unless unchanged, since sent buffers are not copied by `ws`. */
  bytesWithSeq(index: number, seq: number): Uint8Array;
}

interface Template {
  readonly bytes: Uint8Array;
  /** Offset of the CBOR unsigned-integer item holding seq. */
  readonly itemOffset: number;
  readonly argumentLength: ArgumentLength;
}

type ArgumentLength = 0 | 1 | 2 | 4 | 8;

/**
 * Re-encoding a multi-kB commit body per loop would dominate loop-mode CPU. In
 * canonical DAG-CBOR the seq integer sits at a fixed offset as long as its
 * encoded width is unchanged (all seqs from 2^32 to 2^53 share one width), so
 * each frame is encoded once per width and later seqs are patched in place.
 */
export function createSeqRewriter(frames: readonly ReplayFrame[]): SeqRewriter {
  const templates: (Template | undefined)[] = new Array(frames.length);
  return {
    bytesWithSeq(index, seq) {
      const frame = frames[index];
      if (frame === undefined) throw new RangeError(`no frame at index ${index}`);
      if (frame.seq === undefined || frame.seq === seq) return frame.bytes;
      if (!Number.isSafeInteger(seq) || seq < 0) throw new RangeError(`seq ${seq} cannot be encoded`);
      const width = argumentLengthOf(seq);
      let template = templates[index];
      if (template === undefined || template.argumentLength !== width) {
        template = buildTemplate(frame.bytes, seq);
        templates[index] = template;
      }
      const out = Buffer.allocUnsafe(template.bytes.byteLength);
      out.set(template.bytes);
      writeUnsigned(out, template.itemOffset, seq, width);
      return out;
    },
  };
}

function buildTemplate(bytes: Uint8Array, seq: number): Template {
  const { headerLength, body } = decodeMessageFrame(bytes);
  body['seq'] = seq;
  const encoded = encode(body);
  // Same width, different last byte: diffing the two encodings locates the seq item without parsing.
  body['seq'] = seq % 2 === 0 ? seq + 1 : seq - 1;
  const probe = encode(body);
  const diff = singleDifference(encoded, probe);
  if (diff === undefined) throw new Error('could not locate seq in re-encoded frame body');
  const argumentLength = argumentLengthOf(seq);
  const original = bytes.subarray(headerLength);
  // Relay output is canonical already, so usually the original bytes can serve as the template without a copy.
  const templateBytes = equalBytes(original, encoded) ? bytes : concat(bytes.subarray(0, headerLength), encoded);
  return { bytes: templateBytes, itemOffset: headerLength + diff - argumentLength, argumentLength };
}

function decodeMessageFrame(bytes: Uint8Array): { headerLength: number; body: Record<string, unknown> } {
  const [, rest] = decodeFirst(bytes);
  const body: unknown = decode(rest);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new TypeError('frame body is not a map');
  }
  return { headerLength: bytes.byteLength - rest.byteLength, body: body as Record<string, unknown> };
}

function argumentLengthOf(value: number): ArgumentLength {
  return value < 24 ? 0 : value < 0x100 ? 1 : value < 0x10000 ? 2 : value < 0x100000000 ? 4 : 8;
}

function writeUnsigned(out: Uint8Array, offset: number, value: number, width: ArgumentLength): void {
  switch (width) {
    case 0:
      out[offset] = value;
      return;
    case 1:
      out[offset] = 24;
      out[offset + 1] = value;
      return;
    case 2:
      out[offset] = 25;
      out[offset + 1] = value >>> 8;
      out[offset + 2] = value & 0xff;
      return;
    case 4:
      out[offset] = 26;
      writeUint32(out, offset + 1, value);
      return;
    case 8:
      out[offset] = 27;
      writeUint32(out, offset + 1, Math.floor(value / 0x100000000));
      writeUint32(out, offset + 5, value >>> 0);
      return;
  }
}

function writeUint32(out: Uint8Array, offset: number, value: number): void {
  out[offset] = value >>> 24;
  out[offset + 1] = (value >>> 16) & 0xff;
  out[offset + 2] = (value >>> 8) & 0xff;
  out[offset + 3] = value & 0xff;
}

function singleDifference(a: Uint8Array, b: Uint8Array): number | undefined {
  if (a.byteLength !== b.byteLength) return undefined;
  let found: number | undefined;
  for (let i = 0; i < a.byteLength; i++) {
    if (a[i] === b[i]) continue;
    if (found !== undefined) return undefined;
    found = i;
  }
  return found;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a);
  out.set(b, a.byteLength);
  return out;
}
