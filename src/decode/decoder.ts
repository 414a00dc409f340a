import { Worker } from 'node:worker_threads';

import { collectionMatcher, type CollectionFilter } from '../filter/collections.ts';
import { decodeRelayPieces, frameFormatter, isFrameEnd, PIECE_LIMITS, type DecodedFrame, type FrameFormatter, type OutputFormat } from './relay-frame.ts';
import { CREDIT_BYTES, CREDIT_GENERATION, CREDIT_MESSAGES, CREDIT_SLOTS, type CreditData, type DecodeBatch, type DecodeResult } from './worker.ts';

/**
 * Frames in, decoded pieces out, in the order the frames went in. Pull-based:
 * the pipeline takes pieces with next() only while Kafka has room, and a
 * decoder never decodes far ahead of what was taken, so memory is bounded
 * whatever the frames fan out into.
 */
export interface FrameDecoder {
  push(frame: Uint8Array, receivedAt: number): void;
  /** The next decoded piece, or undefined until onReadable is called again. */
  next(): DecodedFrame | undefined;
  /** `receivedAt` of the frame the piece last returned by next() belongs to. */
  readonly receivedAt: number;
  /** Frames pushed and not yet taken whole. */
  readonly pending: number;
  /** Their size in bytes. */
  readonly pendingBytes: number;
  /** Resolves once every frame pushed so far has been taken whole. */
  drained(): Promise<void>;
  close(): Promise<void>;
}

export interface DecoderOptions {
  /** 0: decode on the calling thread; N: on N worker threads. */
  threads: number;
  /** Pieces are ready for next(); may be called while some are already waiting. */
  onReadable: () => void;
  /** A worker thread died: a bug, not bad input (that comes back as a result). */
  onFatal: (err: Error) => void;
  /** Decoded output a thread may have waiting before it stops and waits (defaults below). */
  maxOutputBytes?: number;
  maxOutputMessages?: number;
  /** Ops of other collections are skipped before their record is decoded. */
  collections?: CollectionFilter;
  /** The JSON shape of the messages (default at-kafka). */
  format?: OutputFormat;
}

export const DEFAULT_OUTPUT_BYTES = 8 * 1024 * 1024;
export const DEFAULT_OUTPUT_MESSAGES = 8192;

export function createFrameDecoder(opts: DecoderOptions): FrameDecoder {
  return opts.threads > 0 ? new ThreadDecoder(opts) : new InlineDecoder(opts.onReadable, opts.collections, opts.format);
}

/** Decodes on the calling thread, lazily: a frame is decoded piece by piece as next() asks. */
export class InlineDecoder implements FrameDecoder {
  readonly #onReadable: () => void;
  readonly #frames: { frame: Uint8Array; receivedAt: number }[] = [];
  #head = 0;
  #pieces: Generator<DecodedFrame, void, undefined> | undefined;
  #receivedAt = 0;
  #pendingBytes = 0;
  #currentBytes = 0;
  #drained: (() => void)[] = [];
  readonly #keep: ((collection: string) => boolean) | undefined;

  readonly #format: FrameFormatter;

  constructor(onReadable: () => void, collections?: CollectionFilter, format?: OutputFormat) {
    this.#onReadable = onReadable;
    this.#format = frameFormatter(format);
    this.#keep = collections === undefined ? undefined : collectionMatcher(collections);
  }

  get pending(): number {
    return this.#frames.length - this.#head + (this.#pieces === undefined ? 0 : 1);
  }

  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  get receivedAt(): number {
    return this.#receivedAt;
  }

  push(frame: Uint8Array, receivedAt: number): void {
    this.#frames.push({ frame, receivedAt });
    this.#pendingBytes += frame.byteLength;
    this.#onReadable();
  }

  next(): DecodedFrame | undefined {
    for (;;) {
      if (this.#pieces === undefined) {
        if (this.#head === this.#frames.length) return undefined;
        const { frame, receivedAt } = this.#frames[this.#head]!;
        this.#frames[this.#head++] = undefined!;
        if (this.#head > 1024 && this.#head * 2 > this.#frames.length) {
          this.#frames.splice(0, this.#head);
          this.#head = 0;
        }
        this.#receivedAt = receivedAt;
        this.#currentBytes = frame.byteLength;
        this.#pieces = decodeRelayPieces(frame, new Date(), PIECE_LIMITS, this.#keep, this.#format);
      }
      const r = this.#pieces.next();
      if (!r.done) {
        if (isFrameEnd(r.value)) this.#frameDone();
        return r.value;
      }
      this.#frameDone();
    }
  }

  #frameDone(): void {
    this.#pieces = undefined;
    this.#pendingBytes -= this.#currentBytes;
    this.#currentBytes = 0;
    if (this.pending === 0) {
      const drained = this.#drained;
      this.#drained = [];
      for (const resolve of drained) resolve();
    }
  }

  drained(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drained.push(resolve));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Flush a batch once it holds this much, before HOLD_MS is up. */
const BATCH_FRAMES = 256;
const BATCH_BYTES = 1 << 20;
/**
 * A batch is sent this long after its first frame (or once full). At the network's real rate a
 * socket read brings one frame, and a batch per frame cost the decode thread and the main thread
 * a wake-up, a postMessage and its result each: at 2,000 frames/s that was a quarter of the
 * bridge's CPU (docs/benchmarks.md, issue 13). 5 ms gathers about ten frames there and adds at
 * most 5 ms to a frame's way to Kafka, next to the sink's 20 ms linger; at full speed a batch
 * holds a hundred frames or more either way, so throughput does not change.
 */
const HOLD_MS = 5;

interface Batch {
  id: number;
  frames: Uint8Array[];
  /** Byte size of each frame, released as the frame is taken whole. */
  sizes: number[];
  bytes: number;
  receivedAt: number[];
  worker: number;
  /** Chunks of results that arrived, not yet handed out. */
  chunks: Chunk[];
  final: boolean;
  /** Index of the frame the next piece belongs to. */
  frame: number;
}

interface Chunk {
  pieces: DecodedFrame[];
  at: number;
  bytes: number;
  messages: number;
}

/**
 * Decodes on worker threads, so the thread holding the socket and the Kafka
 * client does little more than move bytes. Frames are gathered for HOLD_MS
 * (or until a batch is full), copied into one
 * buffer that is transferred, not cloned, and decoded in batches; results
 * come back as plain data and are handed out strictly in push order, also
 * with several threads. Each thread has its own output credit (worker.ts),
 * given back as the pipeline takes its pieces: a thread waiting for credit
 * never waits on another thread's output, so several threads cannot
 * deadlock on the in-order hand-out.
 */
export class ThreadDecoder implements FrameDecoder {
  readonly #opts: DecoderOptions;
  readonly #workers: Worker[] = [];
  readonly #credits: Int32Array[] = [];
  #next = 0;
  #nextId = 0;
  #open: Batch | undefined;
  #flushScheduled = false;
  /** Batches sent, oldest first; handed out from the head as their results arrive. */
  readonly #inOrder: Batch[] = [];
  readonly #byId = new Map<number, Batch>();
  #pending = 0;
  #pendingBytes = 0;
  #receivedAt = 0;
  #drained: (() => void)[] = [];
  #closing = false;
  #failed = false;

  constructor(opts: DecoderOptions) {
    this.#opts = opts;
    for (let i = 0; i < opts.threads; i++) {
      const credit = new SharedArrayBuffer(CREDIT_SLOTS * Int32Array.BYTES_PER_ELEMENT);
      const workerData: CreditData = {
        credit,
        maxBytes: opts.maxOutputBytes ?? DEFAULT_OUTPUT_BYTES,
        maxMessages: opts.maxOutputMessages ?? DEFAULT_OUTPUT_MESSAGES,
        collections: opts.collections,
        format: opts.format ?? 'atkafka',
        thread: i,
        threads: opts.threads,
      };
      const worker = new Worker(new URL('./worker.ts', import.meta.url), { name: `atkafka-decode-${i}`, workerData });
      worker.on('message', (msg: DecodeResult) => this.#onResult(msg));
      worker.on('error', (err) => this.#fail(err));
      worker.on('exit', (code) => {
        if (!this.#closing) this.#fail(new Error(`decode thread exited with code ${code}`));
      });
      this.#workers.push(worker);
      this.#credits.push(new Int32Array(credit));
    }
  }

  get pending(): number {
    return this.#pending;
  }

  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  get receivedAt(): number {
    return this.#receivedAt;
  }

  push(frame: Uint8Array, receivedAt: number): void {
    this.#pending++;
    this.#pendingBytes += frame.byteLength;
    let batch = this.#open;
    if (batch === undefined) {
      batch = { id: this.#nextId++, frames: [], sizes: [], bytes: 0, receivedAt: [], worker: 0, chunks: [], final: false, frame: 0 };
      this.#open = batch;
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setTimeout(() => {
          this.#flushScheduled = false;
          this.#flush();
        }, HOLD_MS);
      }
    }
    batch.frames.push(frame);
    batch.sizes.push(frame.byteLength);
    batch.receivedAt.push(receivedAt);
    batch.bytes += frame.byteLength;
    if (batch.frames.length >= BATCH_FRAMES || batch.bytes >= BATCH_BYTES) this.#flush();
  }

  #flush(): void {
    const batch = this.#open;
    if (batch === undefined) return;
    this.#open = undefined;
    // The socket's buffers are shared slabs: copy the frames into one buffer of our own and transfer it.
    const buf = new ArrayBuffer(batch.bytes);
    const bytes = new Uint8Array(buf);
    const offsets = new Uint32Array(batch.frames.length + 1);
    let at = 0;
    for (let i = 0; i < batch.frames.length; i++) {
      const frame = batch.frames[i]!;
      bytes.set(frame, at);
      at += frame.byteLength;
      offsets[i + 1] = at;
    }
    const msg: DecodeBatch = { id: batch.id, buf, offsets, now: Date.now() };
    batch.frames = [];
    batch.worker = this.#next;
    this.#inOrder.push(batch);
    this.#byId.set(batch.id, batch);
    const worker = this.#workers[this.#next]!;
    this.#next = (this.#next + 1) % this.#workers.length;
    worker.postMessage(msg, [buf, offsets.buffer]);
  }

  #onResult(msg: DecodeResult): void {
    const batch = this.#byId.get(msg.id);
    if (batch === undefined) return;
    if (msg.final) this.#byId.delete(msg.id);
    // Put the values back as views of the transferred buffer (see DecodeResult).
    const { out, bounds } = msg;
    let k = 0;
    for (const p of msg.pieces) {
      if (p.kind === 'event') {
        for (const m of p.messages) {
          m.value = Buffer.from(out, bounds[k]!, bounds[k + 1]! - bounds[k]!);
          k++;
        }
      } else if (p.kind === 'info') {
        p.value = Buffer.from(out, bounds[k]!, bounds[k + 1]! - bounds[k]!);
        k++;
      }
    }
    // The final chunk may be empty: everything went out in chunks posted while waiting for credit.
    if (msg.pieces.length > 0) batch.chunks.push({ pieces: msg.pieces, at: 0, bytes: msg.bytes, messages: msg.messages });
    batch.final = msg.final;
    // Batches taken whole leave the head, so a later one that came back is seen as readable.
    while (this.#inOrder.length > 0 && this.#inOrder[0]!.final && this.#inOrder[0]!.chunks.length === 0) this.#inOrder.shift();
    if (this.#inOrder[0] === batch) this.#opts.onReadable();
  }

  next(): DecodedFrame | undefined {
    for (;;) {
      const batch = this.#inOrder[0];
      if (batch === undefined) return undefined;
      const chunk = batch.chunks[0];
      if (chunk === undefined) {
        if (!batch.final) return undefined;
        this.#inOrder.shift();
        // The next batch may have come back whole while this one was still out.
        continue;
      }
      const piece = chunk.pieces[chunk.at]!;
      chunk.pieces[chunk.at++] = undefined!;
      if (chunk.at === chunk.pieces.length) {
        batch.chunks.shift();
        this.#giveBack(batch.worker, chunk);
      }
      this.#receivedAt = batch.receivedAt[batch.frame]!;
      if (isFrameEnd(piece)) {
        this.#pendingBytes -= batch.sizes[batch.frame]!;
        batch.frame++;
        this.#pending--;
        if (this.#pending === 0) {
          const drained = this.#drained;
          this.#drained = [];
          for (const resolve of drained) resolve();
        }
      }
      return piece;
    }
  }

  #giveBack(worker: number, chunk: Chunk): void {
    if (chunk.bytes === 0 && chunk.messages === 0) return;
    const credit = this.#credits[worker]!;
    Atomics.sub(credit, CREDIT_BYTES, chunk.bytes);
    Atomics.sub(credit, CREDIT_MESSAGES, chunk.messages);
    Atomics.add(credit, CREDIT_GENERATION, 1);
    Atomics.notify(credit, CREDIT_GENERATION);
  }

  #fail(err: Error): void {
    if (this.#failed) return;
    this.#failed = true;
    this.#opts.onFatal(err);
  }

  drained(): Promise<void> {
    if (this.#pending === 0 || this.#failed) return Promise.resolve();
    this.#flush();
    return new Promise((resolve) => this.#drained.push(resolve));
  }

  async close(): Promise<void> {
    this.#closing = true;
    await Promise.all(this.#workers.map((w) => w.terminate()));
  }
}
