import { Worker } from 'node:worker_threads';

import { decodeRelayFrame, type DecodedFrame } from './relay-frame.ts';
import type { DecodeBatch, DecodeResult } from './worker.ts';

/**
 * Frames in, decoded frames out, in the order they went in. `receivedAt`
 * rides along untouched (the pipeline measures latency from it).
 */
export interface FrameDecoder {
  push(frame: Uint8Array, receivedAt: number): void;
  /** Frames pushed and not yet handed back. */
  readonly pending: number;
  /** Their size in bytes. */
  readonly pendingBytes: number;
  /** Resolves once every frame pushed so far has been handed back. */
  drained(): Promise<void>;
  close(): Promise<void>;
}

export type DecodedHandler = (frame: DecodedFrame, receivedAt: number) => void;

export interface DecoderOptions {
  /** 0: decode on the calling thread; N: on N worker threads. */
  threads: number;
  onDecoded: DecodedHandler;
  /** A worker thread died: a bug, not bad input (that comes back as a result). */
  onFatal: (err: Error) => void;
}

export function createFrameDecoder(opts: DecoderOptions): FrameDecoder {
  return opts.threads > 0 ? new ThreadDecoder(opts) : new InlineDecoder(opts.onDecoded);
}

/** Decodes synchronously inside push(). */
export class InlineDecoder implements FrameDecoder {
  readonly #onDecoded: DecodedHandler;

  constructor(onDecoded: DecodedHandler) {
    this.#onDecoded = onDecoded;
  }

  get pending(): number {
    return 0;
  }

  get pendingBytes(): number {
    return 0;
  }

  push(frame: Uint8Array, receivedAt: number): void {
    this.#onDecoded(decodeRelayFrame(frame, new Date()), receivedAt);
  }

  drained(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Flush a batch once it holds this much, even within one event-loop turn. */
const BATCH_FRAMES = 256;
const BATCH_BYTES = 1 << 20;

interface Batch {
  id: number;
  frames: Uint8Array[];
  bytes: number;
  receivedAt: number[];
  results: DecodedFrame[] | undefined;
}

/**
 * Decodes on worker threads, so the thread holding the socket and the Kafka
 * client does little more than move bytes. Frames are gathered for one
 * event-loop turn (a socket read usually carries many), copied into one
 * buffer that is transferred, not cloned, and decoded in batches; results
 * come back as plain data and are handed out strictly in push order, also
 * with several threads.
 */
export class ThreadDecoder implements FrameDecoder {
  readonly #opts: DecoderOptions;
  readonly #workers: Worker[] = [];
  #next = 0;
  #nextId = 0;
  #open: Batch | undefined;
  #flushScheduled = false;
  /** Batches sent, oldest first; handed out from the head as their results arrive. */
  readonly #inOrder: Batch[] = [];
  readonly #byId = new Map<number, Batch>();
  #pending = 0;
  #pendingBytes = 0;
  #drained: (() => void)[] = [];
  #closing = false;
  #failed = false;

  constructor(opts: DecoderOptions) {
    this.#opts = opts;
    for (let i = 0; i < opts.threads; i++) {
      const worker = new Worker(new URL('./worker.ts', import.meta.url), { name: `atkafka-decode-${i}` });
      worker.on('message', (msg: DecodeResult) => this.#onResult(msg));
      worker.on('error', (err) => this.#fail(err));
      worker.on('exit', (code) => {
        if (!this.#closing) this.#fail(new Error(`decode thread exited with code ${code}`));
      });
      this.#workers.push(worker);
    }
  }

  get pending(): number {
    return this.#pending;
  }

  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  push(frame: Uint8Array, receivedAt: number): void {
    this.#pending++;
    this.#pendingBytes += frame.byteLength;
    let batch = this.#open;
    if (batch === undefined) {
      batch = { id: this.#nextId++, frames: [], bytes: 0, receivedAt: [], results: undefined };
      this.#open = batch;
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        setImmediate(() => {
          this.#flushScheduled = false;
          this.#flush();
        });
      }
    }
    batch.frames.push(frame);
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
    this.#inOrder.push(batch);
    this.#byId.set(batch.id, batch);
    const worker = this.#workers[this.#next]!;
    this.#next = (this.#next + 1) % this.#workers.length;
    worker.postMessage(msg, [buf, offsets.buffer]);
  }

  #onResult(msg: DecodeResult): void {
    const batch = this.#byId.get(msg.id);
    if (batch === undefined) return;
    this.#byId.delete(msg.id);
    // Put the values back as views of the transferred buffer (see DecodeResult).
    const { out, bounds } = msg;
    let k = 0;
    for (const r of msg.results) {
      if (r.kind === 'event') {
        for (const m of r.messages) {
          m.value = Buffer.from(out, bounds[k]!, bounds[k + 1]! - bounds[k]!);
          k++;
        }
      } else if (r.kind === 'info') {
        r.value = Buffer.from(out, bounds[k]!, bounds[k + 1]! - bounds[k]!);
        k++;
      }
    }
    batch.results = msg.results;
    const onDecoded = this.#opts.onDecoded;
    while (this.#inOrder.length > 0 && this.#inOrder[0]!.results !== undefined) {
      const done = this.#inOrder.shift()!;
      this.#pendingBytes -= done.bytes;
      const results = done.results!;
      for (let i = 0; i < results.length; i++) {
        this.#pending--;
        onDecoded(results[i]!, done.receivedAt[i]!);
      }
    }
    if (this.#pending === 0) {
      const drained = this.#drained;
      this.#drained = [];
      for (const resolve of drained) resolve();
    }
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
