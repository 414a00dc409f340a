import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import { createPacer } from './pacer.ts';
import type { FrameIterator } from './replay-source.ts';

export type IdleReason = 'end-of-file' | 'limit';

export interface ClientStreamOptions {
  readonly ws: WebSocket;
  /** The TCP socket under `ws`: corked around a batch so many frames go out in one write, and watched for 'drain'. */
  readonly socket: Duplex;
  readonly frames: FrameIterator;
  /** Events per second; undefined = as fast as the socket drains. */
  readonly rate?: number | undefined;
  /** Stop after this many frames on this connection and stay connected. */
  readonly limit?: number | undefined;
  /** Pause once `ws.bufferedAmount` exceeds this many bytes; resume when the socket drains. */
  readonly highWaterMark: number;
  readonly onSent: (frames: number, bytes: number) => void;
  readonly onIdle?: ((reason: IdleReason, sent: number) => void) | undefined;
}

export interface ClientStream {
  readonly sent: number;
  stop(): void;
}

/** Bounds one event-loop turn so several clients (and the rest of the process) share the CPU. */
const MAX_FRAMES_PER_TURN = 512;

/**
 * Pushes frames to one client. Never queues more than about `highWaterMark`
 * bytes in user space: a slow reader fills the kernel buffer, then ours, then
 * the stream waits for 'drain', so the reader's pace becomes the server's pace.
 */
export function startClientStream(options: ClientStreamOptions): ClientStream {
  const { ws, socket, frames, limit, highWaterMark, onSent, onIdle } = options;
  const pacer = options.rate === undefined ? undefined : createPacer(options.rate);
  let sent = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let immediate: NodeJS.Immediate | undefined;
  let awaitingDrain = false;

  const onDrain = (): void => {
    awaitingDrain = false;
    pump();
  };

  function goIdle(reason: IdleReason): void {
    stopped = true;
    onIdle?.(reason, sent);
  }

  function pump(): void {
    timer = undefined;
    immediate = undefined;
    if (stopped) return;
    if (ws.readyState !== WebSocket.OPEN) return stop();

    let budget = MAX_FRAMES_PER_TURN;
    if (limit !== undefined) budget = Math.min(budget, limit - sent);
    if (pacer !== undefined) budget = Math.min(budget, pacer.available());

    let batchFrames = 0;
    let batchBytes = 0;
    let exhausted = false;
    let blocked = false;
    socket.cork();
    try {
      while (batchFrames < budget) {
        const bytes = frames.next();
        if (bytes === undefined) {
          exhausted = true;
          break;
        }
        ws.send(bytes);
        batchFrames++;
        batchBytes += bytes.byteLength;
        if (ws.bufferedAmount > highWaterMark) {
          blocked = true;
          break;
        }
      }
    } finally {
      socket.uncork();
    }
    sent += batchFrames;
    pacer?.consume(batchFrames);
    if (batchFrames > 0) onSent(batchFrames, batchBytes);

    if (exhausted) return goIdle('end-of-file');
    if (limit !== undefined && sent >= limit) return goIdle('limit');
    // 'drain' only fires after a write was refused; if none was, polling on the next turn is the safe fallback.
    if (blocked && socket.writableNeedDrain) {
      awaitingDrain = true;
      socket.once('drain', onDrain);
      return;
    }
    const wait = pacer?.msUntilNext() ?? 0;
    if (wait > 0) timer = setTimeout(pump, wait);
    else immediate = setImmediate(pump);
  }

  function stop(): void {
    stopped = true;
    if (timer !== undefined) clearTimeout(timer);
    if (immediate !== undefined) clearImmediate(immediate);
    if (awaitingDrain) socket.removeListener('drain', onDrain);
    timer = undefined;
    immediate = undefined;
    awaitingDrain = false;
  }

  if (limit !== undefined && limit <= 0) goIdle('limit');
  else immediate = setImmediate(pump);

  return {
    get sent() {
      return sent;
    },
    stop,
  };
}
