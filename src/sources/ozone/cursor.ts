import { dirname, join, resolve } from 'node:path';

import { checkWritable, CursorFileInvalid, readCursorJson, readCursorText, writeAtomically } from '../../checkpoint/cursor-file.ts';
import { redactUrl } from '../../telemetry/redact.ts';

/**
 * A position in an Ozone event log: Ozone's own keyset cursor
 * `<createdAt in unix ms>::<event id>`. queryEvents (ascending) returns the
 * events with (createdAt, id) strictly after it, so resuming from the cursor
 * of the last event in Kafka neither skips an event that shares its
 * millisecond nor repeats one (Ozone's `TimeIdKeyset`).
 */
export interface OzonePosition {
  /** The packed keyset cursor, as Ozone writes it. */
  cursor: string;
  /** Its time part, unix ms. */
  timeMs: number;
  /** Its id part; 0 for a position that is only a time (every event id is >= 1). */
  id: number;
}

/** What `--cursor-file` holds: every event up to `cursor` is in Kafka. */
export interface SavedOzoneCursor extends OzonePosition {
  labelerDid: string;
  pdsHost: string;
  savedAt: string;
}

const CURSOR = /^(0|[1-9][0-9]{0,15})::(0|[1-9][0-9]{0,15})$/;

export function parsePosition(cursor: string): OzonePosition | undefined {
  const m = CURSOR.exec(cursor);
  if (m === null) return undefined;
  const timeMs = Number(m[1]);
  const id = Number(m[2]);
  if (!Number.isSafeInteger(timeMs) || !Number.isSafeInteger(id)) return undefined;
  return { cursor, timeMs, id };
}

/** The position just before every event created at or after `timeMs`. */
export function positionAt(timeMs: number): OzonePosition {
  return { cursor: `${timeMs}::0`, timeMs, id: 0 };
}

/** The position of one event, as Ozone packs it from the event's row. */
export function positionOf(createdAt: string, id: number): OzonePosition | undefined {
  const timeMs = Date.parse(createdAt);
  if (!Number.isFinite(timeMs) || !Number.isSafeInteger(id) || id < 0) return undefined;
  return { cursor: `${timeMs}::${id}`, timeMs, id };
}

/** (time, id) order, Ozone's ascending order. */
export function comparePositions(a: OzonePosition, b: OzonePosition): number {
  return a.timeMs - b.timeMs || a.id - b.id;
}

/** The Go at-kafka's cursor file: a createdAt (plus 1 ms) in its working directory. */
export const GO_CURSOR_FILE = 'ozone-cursor.txt';

export interface LoadedOzoneCursor {
  position: OzonePosition;
  /** Where it came from: our file, or the Go version's. */
  from: 'cursor-file' | 'go-cursor';
  path: string;
  savedAt?: string;
}

/**
 * The startup check of the Ozone cursor file, before anything connects:
 * our own file if it exists (refused when it belongs to another labeler,
 * whose event ids are another sequence); else, once, the Go version's
 * `ozone-cursor.txt` next to it or in the working directory, so a
 * switch-over resumes where the Go version stopped. Makes sure the first
 * save will not fail. Throws CursorFileInvalid.
 */
export async function checkOzoneCursor(path: string, labelerDid: string): Promise<LoadedOzoneCursor | undefined> {
  const saved = await loadOzoneCursor(path);
  await checkWritable(path);
  if (saved !== undefined) {
    if (saved.labelerDid !== labelerDid) {
      throw new CursorFileInvalid(
        `cursor file ${path} holds a position in the event log of ${saved.labelerDid}, not of ${labelerDid}; event ids differ between moderation services: remove the file or point --cursor-file elsewhere`,
      );
    }
    return { position: saved, from: 'cursor-file', path, savedAt: saved.savedAt };
  }
  for (const goPath of new Set([join(dirname(resolve(path)), GO_CURSOR_FILE), resolve(GO_CURSOR_FILE)])) {
    const go = await loadGoCursor(goPath);
    if (go !== undefined) return { position: go, from: 'go-cursor', path: goPath };
  }
  return undefined;
}

export async function loadOzoneCursor(path: string): Promise<SavedOzoneCursor | undefined> {
  const parsed = await readCursorJson(path);
  if (parsed === undefined) return undefined;
  const { cursor, labelerDid, pdsHost, savedAt } = parsed as Partial<Record<string, unknown>>;
  const position = typeof cursor === 'string' ? parsePosition(cursor) : undefined;
  if (position === undefined || typeof labelerDid !== 'string') {
    throw new CursorFileInvalid(`cursor file ${path} has no valid "cursor" ("<unix ms>::<event id>") and "labelerDid"; fix or remove it`);
  }
  return { ...position, labelerDid, pdsHost: typeof pdsHost === 'string' ? pdsHost : '', savedAt: typeof savedAt === 'string' ? savedAt : '' };
}

/**
 * The Go version saves `createdAt + 1 ms` of the last event it sent and asks
 * for `createdAfter` (>=) that next time; the same position in keyset terms
 * is "before every event at that millisecond".
 */
async function loadGoCursor(path: string): Promise<OzonePosition | undefined> {
  const text = (await readCursorText(path))?.trim();
  if (text === undefined || text === '') return undefined;
  const timeMs = Date.parse(text);
  if (!Number.isFinite(timeMs) || !/^\d{4}-\d\d-\d\dT/.test(text)) {
    throw new CursorFileInvalid(`${path} (the Go version's Ozone cursor) holds ${JSON.stringify(text.slice(0, 40))}, not an RFC 3339 time; fix or remove it`);
  }
  return positionAt(timeMs);
}

export async function saveOzoneCursor(path: string, position: OzonePosition, labelerDid: string, pdsHost: string): Promise<void> {
  const body = {
    cursor: position.cursor,
    createdAt: new Date(position.timeMs).toISOString(),
    id: position.id,
    labelerDid,
    pdsHost: redactUrl(pdsHost),
    savedAt: new Date().toISOString(),
  };
  await writeAtomically(path, `${JSON.stringify(body)}\n`);
}
