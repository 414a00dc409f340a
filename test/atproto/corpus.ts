import { readFileSync } from 'node:fs';
import { zstdDecompressSync } from 'node:zlib';

import { decode, decodeFirst, encode, type CidLink } from '@atcute/cbor';
import { writeCarStream, type CarBlock } from '@atcute/car';

/** The real relay capture kept in test/fixtures/corpus/ (see its README.md). */
const dir = new URL('../fixtures/corpus/', import.meta.url);

export interface Manifest {
  seq_first: number;
  seq_last: number;
  frames: number;
  commit_frames: number;
  creates: number;
  updates: number;
  deletes: number;
  identity: number;
  account: number;
  commit_dids: string[];
}

export const manifest: Manifest = JSON.parse(readFileSync(new URL('manifest.json', dir), 'utf8'));

let frames: Uint8Array[] | undefined;

/** Every frame of the capture, in order: `[u32 LE length][frame]...`, zstd-compressed. */
export function corpusFrames(): Uint8Array[] {
  if (frames !== undefined) return frames;
  const all = zstdDecompressSync(readFileSync(new URL('frames.bin.zst', dir)));
  const out: Uint8Array[] = [];
  let pos = 0;
  while (pos < all.length) {
    if (pos + 4 > all.length) throw new Error(`frames file: truncated length prefix at ${pos}`);
    const len = all.readUInt32LE(pos);
    pos += 4;
    if (pos + len > all.length) throw new Error(`frames file: truncated frame at ${pos}`);
    // Copy, so a test that mutates a frame cannot corrupt the others.
    out.push(Uint8Array.prototype.slice.call(all, pos, pos + len));
    pos += len;
  }
  frames = out;
  return out;
}

/** A frame as its two DAG-CBOR values, for tests that change fields and re-encode. */
export interface FrameParts {
  header: Record<string, unknown>;
  body: Record<string, unknown>;
}

export function splitFrame(frame: Uint8Array): FrameParts {
  const [header, rest] = decodeFirst(frame);
  return { header, body: decode(rest) };
}

export function joinFrame(header: unknown, body: unknown): Uint8Array {
  return Buffer.concat([encode(header), encode(body)]);
}

/** A CAR file of `blocks` with the given roots, written by @atcute/car. */
export async function writeCar(roots: CidLink[], blocks: CarBlock[]): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of writeCarStream(roots, blocks)) chunks.push(chunk);
  return Buffer.concat(chunks);
}
