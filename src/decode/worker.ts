// A decode thread (see decoder.ts): batches of frames in, decoded frames out.
import { parentPort } from 'node:worker_threads';

import { decodeRelayFrame, type DecodedFrame } from './relay-frame.ts';

export interface DecodeBatch {
  id: number;
  /** The frames back to back; frame i is buf[offsets[i], offsets[i + 1]). */
  buf: ArrayBuffer;
  offsets: Uint32Array;
  /** Wall clock of the batch, stamped on #info messages (they carry no time of their own). */
  now: number;
}

/**
 * The frames decoded, their message values moved out as UTF-8 into `out`
 * (transferred): value k, in order of appearance, is out[bounds[k], bounds[k + 1]),
 * and its `value` field is left ''. The main thread then never holds the JSON
 * as a string nor encodes it.
 */
export interface DecodeResult {
  id: number;
  results: DecodedFrame[];
  out: ArrayBuffer;
  bounds: Uint32Array;
}

/** Appends strings as UTF-8 to one growing buffer. */
class Utf8Out {
  ab: ArrayBuffer;
  buf: Buffer;
  at = 0;
  readonly bounds: number[] = [0];

  constructor(sizeHint: number) {
    this.ab = new ArrayBuffer(sizeHint);
    this.buf = Buffer.from(this.ab);
  }

  add(s: string): void {
    // A UTF-16 code unit is at most 3 UTF-8 bytes.
    if (this.buf.length - this.at < s.length * 3) {
      const ab = new ArrayBuffer(Math.max(this.buf.length * 2, this.at + s.length * 3));
      const bigger = Buffer.from(ab);
      this.buf.copy(bigger, 0, 0, this.at);
      this.ab = ab;
      this.buf = bigger;
    }
    this.at += this.buf.write(s, this.at);
    this.bounds.push(this.at);
  }

  /** The bytes written, as a buffer of their own length, ready to transfer (this Utf8Out is spent). */
  take(): ArrayBuffer {
    return this.ab.transfer(this.at);
  }
}

if (parentPort !== null) {
  const port = parentPort;
  port.on('message', (batch: DecodeBatch) => {
    const bytes = new Uint8Array(batch.buf);
    const { offsets } = batch;
    const now = new Date(batch.now);
    const results: DecodedFrame[] = new Array(offsets.length - 1);
    // The JSON of a batch is usually well under its frames' size (frames carry MST nodes).
    const out = new Utf8Out(Math.max(16_384, batch.buf.byteLength >>> 1));
    for (let i = 0; i < results.length; i++) {
      const r = decodeRelayFrame(bytes.subarray(offsets[i], offsets[i + 1]), now);
      if (r.kind === 'event') {
        for (const m of r.messages) {
          out.add(m.value as string);
          m.value = '';
        }
      } else if (r.kind === 'info') {
        out.add(r.value as string);
        r.value = '';
      }
      results[i] = r;
    }
    const bounds = Uint32Array.from(out.bounds);
    const buf = out.take();
    port.postMessage({ id: batch.id, results, out: buf, bounds } satisfies DecodeResult, [buf, bounds.buffer]);
  });
}
