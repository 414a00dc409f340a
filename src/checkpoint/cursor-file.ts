import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';

import { redactUrl } from '../telemetry/redact.ts';

/**
 * The relay cursor on disk: `{"seq": S, "relayHost": H}`, where every event
 * with seq <= S is in Kafka. Seqs belong to one relay, so the host is kept
 * with them and a mismatch refuses to resume instead of skipping or
 * replaying the wrong range.
 */
export interface SavedCursor {
  seq: number;
  relayHost: string;
  savedAt: string;
}

export class CursorFileError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CursorFileError';
  }
}

/**
 * The cursor file found at startup cannot be used: unreadable, corrupt, of
 * another relay, or in a place it cannot be written to. A configuration
 * error for the operator to fix (exit 2), unlike a save that fails while
 * running (a plain CursorFileError, exit 1).
 */
export class CursorFileInvalid extends CursorFileError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'CursorFileInvalid';
  }
}

/**
 * A cursor file's JSON, or undefined when there is none yet; every other
 * problem (a directory, no permission, not JSON) is CursorFileInvalid, for
 * the operator to fix. Each source checks the fields of its own position.
 */
export async function readCursorJson(path: string): Promise<unknown> {
  const text = await readCursorText(path);
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) ?? {};
  } catch (err) {
    throw new CursorFileInvalid(`cursor file ${path} is not JSON; fix or remove it`, { cause: err });
  }
}

/** A cursor file's text, or undefined when there is none yet (see readCursorJson). */
export async function readCursorText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'EISDIR') throw new CursorFileInvalid(`cursor file ${path} is a directory; point --cursor-file at a file`, { cause: err });
    throw new CursorFileInvalid(`cannot read cursor file ${path}: ${(err as Error).message}; fix the path or its permissions, or point --cursor-file elsewhere`, { cause: err });
  }
}

export async function loadCursor(path: string): Promise<SavedCursor | undefined> {
  const parsed = await readCursorJson(path);
  if (parsed === undefined) return undefined;
  const { seq, relayHost, savedAt } = parsed as Partial<SavedCursor>;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0 || typeof relayHost !== 'string') {
    throw new CursorFileInvalid(`cursor file ${path} has no valid "seq" (a whole number >= 0) and "relayHost"; fix or remove it`);
  }
  return { seq, relayHost, savedAt: typeof savedAt === 'string' ? savedAt : '' };
}

/**
 * The startup check of `--cursor-file`, before anything connects: loads it
 * (undefined when there is none yet), refuses one saved for another relay, and
 * makes sure the first save will not fail. Throws CursorFileInvalid.
 */
export async function checkCursorFile(path: string, relayHost: string): Promise<SavedCursor | undefined> {
  const saved = await loadCursor(path);
  if (saved !== undefined && !sameRelay(saved.relayHost, relayHost)) {
    throw new CursorFileInvalid(
      `cursor file ${path} holds seq ${saved.seq} of ${redactUrl(saved.relayHost)}, not of ${redactUrl(relayHost)}; seqs differ between relays: remove the file or point --cursor-file elsewhere`,
    );
  }
  await checkWritable(path);
  return saved;
}

/**
 * Makes sure a file can be created next to `path` (so the first save of a
 * cursor will not fail only after events were produced). Throws CursorFileInvalid.
 */
export async function checkWritable(path: string): Promise<void> {
  const probe = `${path}.probe-${process.pid}`;
  try {
    await mkdir(dirname(path), { recursive: true });
    await (await open(probe, 'wx')).close();
    await unlink(probe);
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new CursorFileInvalid(`cannot write cursor file ${path}: creating a file in ${dirname(path)} fails (${why}); fix the directory or its permissions, or point --cursor-file elsewhere`, {
      cause: err,
    });
  }
}

/** Whether two relay hosts name the same relay (so the same seqs): wss://h and https://h do. */
export function sameRelay(a: string, b: string): boolean {
  const norm = (host: string) => {
    try {
      const u = new URL(host);
      const proto = u.protocol === 'https:' ? 'wss:' : u.protocol === 'http:' ? 'ws:' : u.protocol;
      return `${proto}//${u.host}`;
    } catch {
      return host;
    }
  };
  return norm(a) === norm(b);
}

/**
 * Writes the cursor so that a crash at any moment leaves either the old or the
 * new file: write a temp file, fsync it, rename it over the old one.
 */
export async function saveCursor(path: string, cursor: Omit<SavedCursor, 'savedAt'>): Promise<void> {
  // The file sits on volumes and in backups: the relay's credentials do not belong in it (the host is what identifies the relay).
  await writeAtomically(path, `${JSON.stringify({ seq: cursor.seq, relayHost: redactUrl(cursor.relayHost), savedAt: new Date().toISOString() })}\n`);
}

/**
 * Writes a file so that a crash at any moment leaves either the old or the
 * new one: a temp file, fsync, rename over the old one.
 */
export async function writeAtomically(path: string, body: string): Promise<void> {
  const tmp = `${path}.tmp`;
  await mkdir(dirname(path), { recursive: true });
  const file = await open(tmp, 'w');
  try {
    await file.writeFile(body);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(tmp, path);
}
