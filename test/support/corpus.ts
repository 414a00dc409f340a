// The real relay capture and the messages the bridge must make of it.
import { readFileSync } from 'node:fs';
import { zstdDecompressSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';

import { commitOps } from '../../src/atproto/commit-ops.ts';
import { decodeFrame } from '../../src/atproto/frame.ts';
import { formatAccount, formatIdentity, formatOperation } from '../../src/format/atkafka.ts';

export const CORPUS_FILE = fileURLToPath(new URL('../fixtures/corpus/frames.bin.zst', import.meta.url));

export function corpusFrames(): Uint8Array[] {
  const buf = zstdDecompressSync(readFileSync(CORPUS_FILE));
  const frames: Uint8Array[] = [];
  for (let p = 0; p < buf.length; ) {
    const len = buf.readUInt32LE(p);
    frames.push(buf.subarray(p + 4, p + 4 + len));
    p += 4 + len;
  }
  return frames;
}

export interface ExpectedMessage {
  seq: number;
  key: string;
  value: string;
}

/** One entry per Kafka message, in stream order. */
export function expectedMessages(frames: Uint8Array[]): ExpectedMessage[] {
  const out: ExpectedMessage[] = [];
  for (const frame of frames) {
    const evt = decodeFrame(frame);
    if (evt.kind === 'commit') {
      for (const r of commitOps(evt)) {
        if (!r.ok) throw r.error;
        out.push({ seq: evt.seq, key: evt.repo, value: formatOperation(evt.repo, evt.time, r.op) });
      }
    } else if (evt.kind === 'identity') out.push({ seq: evt.seq, key: evt.did, value: formatIdentity(evt) });
    else if (evt.kind === 'account') out.push({ seq: evt.seq, key: evt.did, value: formatAccount(evt) });
  }
  return out;
}

export function lastSeq(frames: Uint8Array[]): number {
  let last = -1;
  for (const f of frames) {
    const e = decodeFrame(f);
    if ('seq' in e && typeof e.seq === 'number') last = Math.max(last, e.seq);
  }
  return last;
}
