import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { zstdDecompress } from 'node:zlib';
import { decode, decodeFirst } from '@atcute/cbor';

const zstdDecompressAsync = promisify(zstdDecompress);

/** One recorded websocket binary message, as sent by the relay. */
export interface ReplayFrame {
  readonly bytes: Uint8Array;
  /** Body `seq` when the frame is a message frame carrying one; undefined for #info, error frames, or undecodable bytes. */
  readonly seq: number | undefined;
}

export interface FramesFile {
  readonly frames: readonly ReplayFrame[];
  /** Smallest and largest seq present; undefined when no frame has a seq. */
  readonly firstSeq: number | undefined;
  readonly lastSeq: number | undefined;
  /** True when seqs never decrease in file order, which cursor lookup relies on for binary search. */
  readonly seqsAscending: boolean;
  readonly totalBytes: number;
}

const ZSTD_MAGIC = 0xfd2fb528;

/** Splits `[u32 LE length][frame bytes]` records; frames are views into `buf`, not copies. */
export function splitLengthPrefixed(buf: Uint8Array): Uint8Array[] {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const frames: Uint8Array[] = [];
  let offset = 0;
  while (offset < buf.byteLength) {
    if (offset + 4 > buf.byteLength) {
      throw new Error(`frames file truncated: ${buf.byteLength - offset} stray bytes at offset ${offset}`);
    }
    const length = view.getUint32(offset, true);
    const start = offset + 4;
    const end = start + length;
    if (end > buf.byteLength) {
      throw new Error(`frames file truncated: frame at offset ${offset} declares ${length} bytes, ${buf.byteLength - start} remain`);
    }
    frames.push(buf.subarray(start, end));
    offset = end;
  }
  return frames;
}

/**
 * Finds the seq of a frame. Malformed frames are tolerated (seq undefined) rather
 * than rejected, so a replay can deliberately feed broken input to a consumer.
 */
export function frameSeq(bytes: Uint8Array): number | undefined {
  try {
    const [header, rest] = decodeFirst(bytes);
    if (!isRecord(header) || header['op'] !== 1) return undefined;
    const body: unknown = decode(rest);
    if (!isRecord(body)) return undefined;
    const seq = body['seq'];
    return typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 0 ? seq : undefined;
  } catch {
    return undefined;
  }
}

export function indexFrames(frames: readonly Uint8Array[]): FramesFile {
  const indexed: ReplayFrame[] = [];
  let firstSeq: number | undefined;
  let lastSeq: number | undefined;
  let previous: number | undefined;
  let seqsAscending = true;
  let totalBytes = 0;
  for (const bytes of frames) {
    const seq = frameSeq(bytes);
    indexed.push({ bytes, seq });
    totalBytes += bytes.byteLength;
    if (seq === undefined) continue;
    if (previous !== undefined && seq < previous) seqsAscending = false;
    previous = seq;
    firstSeq = firstSeq === undefined ? seq : Math.min(firstSeq, seq);
    lastSeq = lastSeq === undefined ? seq : Math.max(lastSeq, seq);
  }
  return { frames: indexed, firstSeq, lastSeq, seqsAscending, totalBytes };
}

/** Recognises zstd by its magic number, so the file name need not end in `.zst`. */
export function isZstd(buf: Uint8Array): boolean {
  return buf.byteLength >= 4 && new DataView(buf.buffer, buf.byteOffset, 4).getUint32(0, true) === ZSTD_MAGIC;
}

export async function readFramesFile(path: string): Promise<FramesFile> {
  const raw = await readFile(path);
  const plain = isZstd(raw) ? await zstdDecompressAsync(raw) : raw;
  return indexFrames(splitLengthPrefixed(plain));
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
