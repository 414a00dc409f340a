import { InputError } from '../../atproto/errors.ts';
import { positionOf, type OzonePosition } from './cursor.ts';

/** One moderation event view (tools.ozone.moderation.defs#modEventView), as much as atkafka reads of it. */
export interface OzoneEvent {
  id: number;
  createdAt: string;
  /** event.$type, e.g. tools.ozone.moderation.defs#modEventTakedown */
  type: string;
  /** The subject's DID (the account, the record's repo, the message's sender); '' when the subject names none. */
  subjectDid: string;
  /** The subject record's collection; '' for account and other subjects. */
  collection: string;
  position: OzonePosition;
  /** The event view as Ozone returned it, serialized again (same members, same order). */
  json: string;
}

/**
 * Reads what atkafka needs from one event of a queryEvents page. Throws
 * InputError for an event that has no usable id, createdAt or event type:
 * it cannot be placed in the log, so it is logged and counted, never guessed.
 */
export function parseOzoneEvent(raw: unknown): OzoneEvent {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new InputError('invalid-event', 'event is not an object');
  const view = raw as Record<string, unknown>;
  const { id, createdAt, event, subject } = view;
  if (typeof id !== 'number' || !Number.isSafeInteger(id) || id < 1) throw new InputError('invalid-event', 'event has no "id" (a whole number >= 1)');
  if (typeof createdAt !== 'string') throw new InputError('invalid-event', 'event has no "createdAt"');
  const position = positionOf(createdAt, id);
  if (position === undefined) throw new InputError('invalid-event', `event "createdAt" ${JSON.stringify(createdAt.slice(0, 40))} is not a datetime`);
  const type = event !== null && typeof event === 'object' ? (event as { $type?: unknown }).$type : undefined;
  if (typeof type !== 'string' || type === '') throw new InputError('invalid-event', 'event has no "event.$type"');
  const { did, collection } = subjectOf(subject);
  return { id, createdAt, type, subjectDid: did, collection, position, json: JSON.stringify(view) };
}

const AT_URI = /^at:\/\/(did:[a-z]+:[a-zA-Z0-9._:%-]+)(?:\/([a-zA-Z0-9.-]+)(?:\/|$))?/;

/** repoRef {did}, strongRef {uri: at://did/collection/rkey}, messageRef {did, ...}. */
export function subjectOf(subject: unknown): { did: string; collection: string } {
  if (subject === null || typeof subject !== 'object') return { did: '', collection: '' };
  const { did, uri } = subject as { did?: unknown; uri?: unknown };
  if (typeof uri === 'string') {
    const m = AT_URI.exec(uri);
    if (m !== null) return { did: m[1]!, collection: m[2] ?? '' };
  }
  if (typeof did === 'string' && did.startsWith('did:')) return { did, collection: '' };
  return { did: '', collection: '' };
}

/** The id of an event that failed to parse, for the log line, when it has one. */
export function ozoneEventId(raw: unknown): number | undefined {
  const id = raw !== null && typeof raw === 'object' ? (raw as { id?: unknown }).id : undefined;
  return typeof id === 'number' ? id : undefined;
}
