import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { decode, decodeFirst } from '@atcute/cbor';
import { WebSocket } from 'ws';
import { readFramesFile } from '../../src/replay/frames-file.ts';
import type { FramesFile } from '../../src/replay/frames-file.ts';

// The repo's own copy (test/fixtures/corpus, with provenance) lets a fresh clone run these; the shared corpus is the original.
const FIXTURE_FRAMES = fileURLToPath(new URL('../fixtures/corpus/frames.bin.zst', import.meta.url));
export const CORPUS_FRAMES = existsSync(FIXTURE_FRAMES) ? FIXTURE_FRAMES : '/work/shared/corpus/relay-2026-07-04/frames.bin.zst';
export const CORPUS_FIRST_SEQ = 31527015322;
export const CORPUS_LAST_SEQ = 31527015471;

let corpus: Promise<FramesFile> | undefined;
export function loadCorpus(): Promise<FramesFile> {
  corpus ??= readFramesFile(CORPUS_FRAMES);
  return corpus;
}

export interface Received {
  readonly frames: Buffer[];
  readonly closeCode: number | undefined;
  readonly ws: WebSocket;
}

/**
 * Collects frames until `count` arrive, the server closes, or nothing arrives
 * for `quietMs` (the replay going idle looks exactly like that). The socket is
 * left open unless the server closed it, so callers can check it stays up.
 */
export function collect(url: string, options: { count?: number; quietMs?: number; timeoutMs?: number } = {}): Promise<Received> {
  const { count = Infinity, quietMs = 300, timeoutMs = 10_000 } = options;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const frames: Buffer[] = [];
    let quiet: NodeJS.Timeout | undefined;
    let settled = false;
    const finish = (closeCode: number | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(quiet);
      clearTimeout(deadline);
      resolve({ frames, closeCode, ws });
    };
    const deadline = setTimeout(() => {
      settled = true;
      ws.terminate();
      reject(new Error(`timed out after ${frames.length} frames`));
    }, timeoutMs);
    const armQuiet = (): void => {
      clearTimeout(quiet);
      quiet = setTimeout(() => finish(undefined), quietMs);
    };
    ws.on('open', armQuiet);
    ws.on('message', (data: Buffer) => {
      // Frames decoded from the same TCP read still arrive after we have enough.
      if (settled) return;
      frames.push(data);
      if (frames.length >= count) finish(undefined);
      else armQuiet();
    });
    ws.on('close', (code) => finish(code));
    ws.on('unexpected-response', (_req, res) => {
      settled = true;
      clearTimeout(deadline);
      reject(Object.assign(new Error(`HTTP ${res.statusCode}`), { statusCode: res.statusCode }));
    });
    ws.on('error', (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      reject(err);
    });
  });
}

export function decodeFrame(bytes: Uint8Array): { header: Record<string, unknown>; body: Record<string, unknown>; bodyBytes: Uint8Array } {
  const [header, rest] = decodeFirst(bytes);
  return { header, body: decode(rest), bodyBytes: rest };
}

export function seqOf(bytes: Uint8Array): number {
  const seq = decodeFrame(bytes).body['seq'];
  if (typeof seq !== 'number') throw new Error('frame has no seq');
  return seq;
}

export function closeClient(ws: WebSocket): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
  return new Promise((resolve) => {
    ws.once('close', () => resolve());
    ws.terminate();
  });
}
