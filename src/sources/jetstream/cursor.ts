import { CursorFileInvalid, readCursorJson, writeAtomically } from '../../checkpoint/cursor-file.ts';
import { redactUrl } from '../../telemetry/redact.ts';

/**
 * The Jetstream cursor on disk: every event up to `cursor` (a time_us of
 * `host`) is in Kafka. time_us is each host's own clock, so the host is kept
 * with it: resuming elsewhere rewinds (docs/jetstream-protocol.md).
 *
 * `seam`: the keys of the confirmed events with time_us == cursor. Jetstream
 * replays from a cursor inclusively and several events may share a time_us,
 * so these come again and are dropped, while one at the same time_us that
 * was not confirmed is not. `recent`: on a clean stop, the keys of the last
 * rewind window, so a restart on another host repeats nothing either.
 */
export interface JetstreamCursor {
  cursor: number;
  host: string;
  savedAt: string;
  seam: string[];
  recent: string[];
}

export async function loadJetstreamCursor(path: string): Promise<JetstreamCursor | undefined> {
  const parsed = await readCursorJson(path);
  if (parsed === undefined) return undefined;
  const v = parsed as Partial<JetstreamCursor>;
  if (typeof v.cursor !== 'number' || !Number.isSafeInteger(v.cursor) || v.cursor <= 0 || typeof v.host !== 'string') {
    if ('seq' in v || 'relayHost' in v) throw new CursorFileInvalid(`cursor file ${path} is a relay cursor (seq), not a Jetstream one (time_us); point --cursor-file elsewhere`);
    throw new CursorFileInvalid(`cursor file ${path} has no valid "cursor" (a time_us) and "host"; fix or remove it`);
  }
  const strings = (a: unknown) => (Array.isArray(a) ? a.filter((s): s is string => typeof s === 'string') : []);
  return { cursor: v.cursor, host: v.host, savedAt: typeof v.savedAt === 'string' ? v.savedAt : '', seam: strings(v.seam), recent: strings(v.recent) };
}

export async function saveJetstreamCursor(path: string, c: Omit<JetstreamCursor, 'savedAt'>): Promise<void> {
  const body = { cursor: c.cursor, host: redactUrl(c.host), savedAt: new Date().toISOString(), seam: c.seam, ...(c.recent.length > 0 ? { recent: c.recent } : {}) };
  await writeAtomically(path, `${JSON.stringify(body)}\n`);
}
