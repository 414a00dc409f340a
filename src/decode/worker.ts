// A decode thread (see decoder.ts): batches of frames in, decoded pieces out.
import { parentPort, workerData } from 'node:worker_threads';

import { collectionMatcher, type CollectionFilter } from '../filter/collections.ts';
import { decodeRelayPieces, frameFormatter, PIECE_LIMITS, type DecodedFrame, type OutputFormat } from './relay-frame.ts';

export interface DecodeBatch {
  id: number;
  /** The frames back to back; frame i is buf[offsets[i], offsets[i + 1]). */
  buf: ArrayBuffer;
  offsets: Uint32Array;
  /** Wall clock of the batch, stamped on #info messages (they carry no time of their own). */
  now: number;
}

/**
 * Some decoded pieces of a batch, in order, their message values moved out as
 * UTF-8 into `out` (transferred): value k, in order of appearance, is
 * out[bounds[k], bounds[k + 1]), and its `value` field is left ''. The main
 * thread then never holds the JSON as a string nor encodes it. A batch comes
 * back in one or more chunks; `final` marks its last.
 */
export interface DecodeResult {
  id: number;
  pieces: DecodedFrame[];
  out: ArrayBuffer;
  bounds: Uint32Array;
  final: boolean;
  /** What this chunk takes from the thread's output credit (see Credit). */
  bytes: number;
  messages: number;
}

/**
 * Output credit, shared with the main thread: bytes and messages this thread
 * has posted that the pipeline has not taken yet. The thread stops (and
 * waits) once either reaches its limit, so a backlog of op-dense frames
 * cannot turn into unbounded decoded output while Kafka is slow.
 */
export interface CreditData {
  credit: SharedArrayBuffer;
  maxBytes: number;
  maxMessages: number;
  collections: CollectionFilter | undefined;
  format: OutputFormat;
  /** This thread's index among `threads` (each hands out its own Jetstream time_us values). */
  thread: number;
  threads: number;
}
export const CREDIT_BYTES = 0;
export const CREDIT_MESSAGES = 1;
/** Bumped by the main thread whenever it gives credit back; the thread waits on it. */
export const CREDIT_GENERATION = 2;
export const CREDIT_SLOTS = 3;

/** Post a chunk once its JSON reaches this size, even mid-batch. */
const CHUNK_BYTES = 1 << 20;

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
  const { credit: sab, maxBytes, maxMessages, collections, format: shape, thread, threads } = workerData as CreditData;
  const format = frameFormatter(shape, thread, threads);
  const credit = new Int32Array(sab);
  const keep = collections === undefined ? undefined : collectionMatcher(collections);

  port.on('message', (batch: DecodeBatch) => {
    const bytes = new Uint8Array(batch.buf);
    const { offsets } = batch;
    const now = new Date(batch.now);
    // The JSON of a batch is usually well under its frames' size (frames carry MST nodes).
    const hint = Math.min(CHUNK_BYTES, Math.max(16_384, batch.buf.byteLength >>> 1));
    let out = new Utf8Out(hint);
    let pieces: DecodedFrame[] = [];
    let chunkMessages = 0;

    const post = (final: boolean) => {
      const bounds = Uint32Array.from(out.bounds);
      const chunkBytes = out.at;
      const buf = out.take();
      const msg: DecodeResult = { id: batch.id, pieces, out: buf, bounds, final, bytes: chunkBytes, messages: chunkMessages };
      Atomics.add(credit, CREDIT_BYTES, chunkBytes);
      Atomics.add(credit, CREDIT_MESSAGES, chunkMessages);
      port.postMessage(msg, [buf, bounds.buffer]);
      out = new Utf8Out(hint);
      pieces = [];
      chunkMessages = 0;
    };

    for (let i = 0; i < offsets.length - 1; i++) {
      for (const piece of decodeRelayPieces(bytes.subarray(offsets[i], offsets[i + 1]), now, PIECE_LIMITS, keep, format)) {
        if (piece.kind === 'event') {
          for (const m of piece.messages) {
            out.add(m.value as string);
            m.value = '';
          }
          chunkMessages += piece.messages.length;
        } else if (piece.kind === 'info') {
          out.add(piece.value as string);
          piece.value = '';
          chunkMessages++;
        }
        pieces.push(piece);
        if (out.at >= CHUNK_BYTES) post(false);
        // Out of credit: hand over what we have and wait until the pipeline takes some.
        while (Atomics.load(credit, CREDIT_BYTES) + out.at >= maxBytes || Atomics.load(credit, CREDIT_MESSAGES) + chunkMessages >= maxMessages) {
          if (pieces.length > 0) post(false);
          const generation = Atomics.load(credit, CREDIT_GENERATION);
          if (Atomics.load(credit, CREDIT_BYTES) >= maxBytes || Atomics.load(credit, CREDIT_MESSAGES) >= maxMessages) {
            Atomics.wait(credit, CREDIT_GENERATION, generation, 1000);
          }
        }
      }
    }
    post(true);
  });
}
