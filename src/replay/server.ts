import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';
import { startClientStream } from './client-stream.ts';
import type { ClientStream } from './client-stream.ts';
import { encodeErrorFrame } from './error-frame.ts';
import { indexFrames, readFramesFile } from './frames-file.ts';
import type { FramesFile } from './frames-file.ts';
import { createReplaySource } from './replay-source.ts';

/**
 * A stand-in relay that serves a recorded frames file on
 * `GET /xrpc/com.atproto.sync.subscribeRepos[?cursor=N]`, for tests, demos and
 * benchmarks of firehose consumers.
 *
 * Behaviour, per connection (each client gets its own independent stream):
 * - no cursor: starts at the beginning of the file. A real relay starts at its
 *   live tip, but a replay exists to deliver the recording.
 * - `cursor=N`: frames after the last one with seq <= N (for a file in seq order:
 *   exactly the frames with seq > N). Loop mode maps N straight to a pass and offset.
 * - non-loop cursor beyond the file's last seq: error frame `FutureCursor`, then
 *   close 1008, as a relay does. A malformed cursor is refused with HTTP 400.
 * - end of file (non-loop) or `limit` reached: the connection stays open and
 *   idle, like a live relay with nothing new.
 * - `loop`: pass k adds k * (lastSeq - firstSeq + 1) to every seq; frames without
 *   a seq (#info, malformed) are repeated unchanged.
 */
export const SUBSCRIBE_REPOS_PATH = '/xrpc/com.atproto.sync.subscribeRepos';

export interface ReplayServerOptions {
  /** A frames file path (plain or zstd), raw frames (served as given, malformed ones included), or an already loaded file. */
  readonly frames: string | readonly Uint8Array[] | FramesFile;
  /** Default 127.0.0.1. */
  readonly host?: string | undefined;
  /** Default 0: any free port. */
  readonly port?: number | undefined;
  /** Events per second per connection; undefined = as fast as the client reads. */
  readonly rate?: number | undefined;
  /** Repeat the file forever, shifting seqs by (lastSeq - firstSeq + 1) per pass. */
  readonly loop?: boolean | undefined;
  /** Frames to send per connection, after which the connection stays open and idle. */
  readonly limit?: number | undefined;
  /** Bytes queued in the process per connection before pausing for the socket to drain. Default 4 MiB. */
  readonly highWaterMark?: number | undefined;
  readonly logger?: Logger | undefined;
}

export interface ReplayServerStats {
  /** Currently open websocket connections. */
  readonly connections: number;
  readonly connectionsTotal: number;
  /** Frames handed to sockets across all connections (error frames excluded). */
  readonly framesSent: number;
  readonly bytesSent: number;
}

export interface ReplayServer extends AsyncDisposable {
  /** Base URL, e.g. ws://127.0.0.1:PORT (what a consumer configured with a relay host wants). */
  readonly url: string;
  /** Full subscribeRepos endpoint URL. */
  readonly subscribeUrl: string;
  readonly port: number;
  readonly file: FramesFile;
  /** Live counters (a view, not a snapshot). */
  readonly stats: ReplayServerStats;
  /** Closes every connection (code 1001) and stops listening. Idempotent. */
  close(): Promise<void>;
}

export const DEFAULT_HIGH_WATER_MARK = 4 * 1024 * 1024;
/** How long close() lets clients answer the close handshake before cutting them off. */
const CLOSE_GRACE_MS = 500;

export async function startReplayServer(options: ReplayServerOptions): Promise<ReplayServer> {
  const highWaterMark = options.highWaterMark ?? DEFAULT_HIGH_WATER_MARK;
  const { rate, limit, logger } = options;
  validate(rate, limit, highWaterMark);
  const file = await loadFrames(options.frames);
  const loop = options.loop ?? false;
  const source = createReplaySource(file, loop);

  const counters = { connections: 0, connectionsTotal: 0, framesSent: 0, bytesSent: 0 };
  const stats: ReplayServerStats = {
    get connections() { return counters.connections; },
    get connectionsTotal() { return counters.connectionsTotal; },
    get framesSent() { return counters.framesSent; },
    get bytesSent() { return counters.bytesSent; },
  };
  const clients = new Set<WebSocket>();
  let closing: Promise<void> | undefined;

  const http = createServer(handleHttpRequest);
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: 64 * 1024 });

  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    // A client resetting during the handshake must not crash the process; ws reports later errors itself.
    socket.on('error', () => {});
    const url = new URL(req.url ?? '/', 'http://replay');
    if (url.pathname !== SUBSCRIBE_REPOS_PATH) return rejectUpgrade(socket, 404, 'NotFound', 'no such xrpc method');
    const cursor = parseCursor(url.searchParams.get('cursor'));
    if (cursor === 'invalid') return rejectUpgrade(socket, 400, 'InvalidRequest', 'cursor must be a non-negative integer');
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, socket, cursor));
  });

  function onConnection(ws: WebSocket, socket: Duplex, cursor: number | undefined): void {
    // A handshake that completes while close() runs would otherwise outlive the server.
    if (closing !== undefined) return ws.terminate();
    counters.connections++;
    counters.connectionsTotal++;
    clients.add(ws);
    const id = counters.connectionsTotal;
    const log = logger?.child({ connection: id, cursor });
    let stream: ClientStream | undefined;

    ws.on('error', (err) => log?.debug({ err }, 'replay client socket error'));
    ws.on('close', (code) => {
      stream?.stop();
      clients.delete(ws);
      counters.connections--;
      log?.debug({ code, sent: stream?.sent ?? 0 }, 'replay client disconnected');
    });

    const plan = source.planStart(cursor);
    if (plan.kind === 'future-cursor') {
      log?.info({ lastSeq: plan.lastSeq }, 'replay cursor is in the future');
      ws.send(encodeErrorFrame('FutureCursor', `Cursor ${cursor} is in the future (last seq ${plan.lastSeq})`));
      ws.close(1008, 'FutureCursor');
      return;
    }
    log?.debug({ start: plan.position }, 'replay client connected');
    stream = startClientStream({
      ws,
      socket,
      frames: source.open(plan.position),
      rate,
      limit,
      highWaterMark,
      onSent(frames, bytes) {
        counters.framesSent += frames;
        counters.bytesSent += bytes;
      },
      onIdle(reason, sent) {
        log?.info({ reason, sent }, 'replay stream idle, connection kept open');
      },
    });
  }

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      http.off('error', reject);
      resolve();
    });
  });
  http.on('error', (err) => logger?.error({ err }, 'replay server error'));

  const address = http.address() as AddressInfo;
  const hostForUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `ws://${hostForUrl}:${address.port}`;
  logger?.info({ url, frames: file.frames.length, firstSeq: file.firstSeq, lastSeq: file.lastSeq, loop, rate, limit }, 'replay relay listening');

  function close(): Promise<void> {
    closing ??= new Promise<void>((resolve) => {
      const cutoff = setTimeout(() => {
        for (const ws of clients) ws.terminate();
      }, CLOSE_GRACE_MS);
      http.close(() => {
        clearTimeout(cutoff);
        wss.close();
        resolve();
      });
      for (const ws of clients) ws.close(1001, 'replay server shutting down');
    });
    return closing;
  }

  return {
    url,
    subscribeUrl: `${url}${SUBSCRIBE_REPOS_PATH}`,
    port: address.port,
    file,
    stats,
    close,
    [Symbol.asyncDispose]: close,
  };
}

async function loadFrames(frames: ReplayServerOptions['frames']): Promise<FramesFile> {
  if (typeof frames === 'string') return readFramesFile(frames);
  if (isFramesFile(frames)) return frames;
  return indexFrames(frames);
}

function isFramesFile(frames: readonly Uint8Array[] | FramesFile): frames is FramesFile {
  return !Array.isArray(frames);
}

function validate(rate: number | undefined, limit: number | undefined, highWaterMark: number): void {
  if (rate !== undefined && !(rate > 0 && Number.isFinite(rate))) throw new RangeError(`rate must be a positive number, got ${rate}`);
  if (limit !== undefined && !(Number.isSafeInteger(limit) && limit >= 0)) throw new RangeError(`limit must be a non-negative integer, got ${limit}`);
  if (!(highWaterMark > 0)) throw new RangeError(`highWaterMark must be positive, got ${highWaterMark}`);
}

function parseCursor(raw: string | null): number | undefined | 'invalid' {
  if (raw === null || raw === '') return undefined;
  if (!/^\d+$/.test(raw)) return 'invalid';
  const cursor = Number(raw);
  return Number.isSafeInteger(cursor) ? cursor : 'invalid';
}

function handleHttpRequest(req: IncomingMessage, res: ServerResponse): void {
  const path = new URL(req.url ?? '/', 'http://replay').pathname;
  if (path === '/xrpc/_health') return sendJson(res, 200, { version: 'atkafka-replay' });
  if (path === SUBSCRIBE_REPOS_PATH) return sendJson(res, 426, { error: 'InvalidRequest', message: 'websocket upgrade required' });
  sendJson(res, 404, { error: 'NotFound', message: 'no such xrpc method' });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function rejectUpgrade(socket: Duplex, status: number, error: string, message: string): void {
  const body = JSON.stringify({ error, message });
  const reason = status === 404 ? 'Not Found' : 'Bad Request';
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}
