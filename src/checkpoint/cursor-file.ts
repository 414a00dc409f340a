import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';

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

export async function loadCursor(path: string): Promise<SavedCursor | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CursorFileError(`cannot read cursor file ${path}: ${(err as Error).message}`, { cause: err });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new CursorFileError(`cursor file ${path} is not JSON; fix or remove it`, { cause: err });
  }
  const { seq, relayHost, savedAt } = (parsed ?? {}) as Partial<SavedCursor>;
  if (typeof seq !== 'number' || !Number.isSafeInteger(seq) || seq < 0 || typeof relayHost !== 'string') {
    throw new CursorFileError(`cursor file ${path} has no valid "seq" and "relayHost"; fix or remove it`);
  }
  return { seq, relayHost, savedAt: typeof savedAt === 'string' ? savedAt : '' };
}

/**
 * Writes the cursor so that a crash at any moment leaves either the old or the
 * new file: write a temp file, fsync it, rename it over the old one.
 */
export async function saveCursor(path: string, cursor: Omit<SavedCursor, 'savedAt'>): Promise<void> {
  const tmp = `${path}.tmp`;
  const body = `${JSON.stringify({ seq: cursor.seq, relayHost: cursor.relayHost, savedAt: new Date().toISOString() })}\n`;
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
