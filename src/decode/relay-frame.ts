import { commitOps } from '../atproto/commit-ops.ts';
import { InputError, type InputErrorReason } from '../atproto/errors.ts';
import { decodeFrame } from '../atproto/frame.ts';
import { syncCommitCid } from '../atproto/sync-commit.ts';
import { formatAccount, formatIdentity, formatInfo, formatOperation, formatSync } from '../format/atkafka.ts';

/** One Kafka message of an event, with the labels `atkafka_handled_events` counts it under. */
export interface DecodedMessage {
  /** The JSON; as UTF-8 bytes when it comes from a decode thread. */
  value: string | Uint8Array;
  /** `operation#create`, `identity`, ... */
  action: string;
  /** The record collection; '' for non-record events. */
  collection: string;
}

/** Input that was skipped; `path` names the op when only one op of a commit was bad. */
export interface Skipped {
  reason: InputErrorReason;
  message: string;
  path?: string;
}

/**
 * A relay frame decoded, checked and formatted: everything the pipeline needs
 * and nothing more, as plain data so it can cross a thread boundary cheaply.
 */
export type DecodedFrame =
  /** An event with a seq: its messages (none for an empty commit) and the ops skipped as invalid. */
  | { kind: 'event'; seq: number; time: string; did: string; messages: DecodedMessage[]; skipped: Skipped[] }
  | { kind: 'info'; name: string; message: string | undefined; value: string | Uint8Array }
  | { kind: 'error'; error: string; message: string | undefined }
  | { kind: 'unknown'; type: string; seq: number | undefined }
  /** The whole frame was unusable. */
  | { kind: 'invalid'; skipped: Skipped; bytes: number };

const NONE: Skipped[] = [];

/**
 * Frame bytes -> Kafka-ready messages. Pure, and never throws on bad input:
 * every InputError becomes a `skipped` entry. Anything else thrown is a bug
 * and propagates.
 */
export function decodeRelayFrame(frame: Uint8Array, receivedAt: Date): DecodedFrame {
  let evt;
  try {
    evt = decodeFrame(frame);
  } catch (err) {
    return { kind: 'invalid', skipped: skippedFrom(err), bytes: frame.length };
  }
  switch (evt.kind) {
    case 'commit': {
      const messages: DecodedMessage[] = [];
      let skipped = NONE;
      for (const result of commitOps(evt)) {
        if (result.ok) {
          const op = result.op;
          messages.push({ value: formatOperation(evt.repo, evt.time, op), action: `operation#${op.action}`, collection: op.collection });
        } else {
          if (skipped === NONE) skipped = [];
          skipped.push({ reason: result.error.reason, message: result.error.message, path: result.path });
        }
      }
      return { kind: 'event', seq: evt.seq, time: evt.time, did: evt.repo, messages, skipped };
    }
    case 'identity':
      return single(evt.seq, evt.time, evt.did, formatIdentity(evt), 'identity');
    case 'account':
      return single(evt.seq, evt.time, evt.did, formatAccount(evt), 'account');
    case 'sync': {
      let value: string;
      try {
        value = formatSync(evt, syncCommitCid(evt));
      } catch (err) {
        return { kind: 'event', seq: evt.seq, time: evt.time, did: evt.did, messages: [], skipped: [skippedFrom(err)] };
      }
      return single(evt.seq, evt.time, evt.did, value, 'sync');
    }
    case 'info':
      return { kind: 'info', name: evt.name, message: evt.message, value: formatInfo(evt, receivedAt) };
    case 'error':
      return { kind: 'error', error: evt.error, message: evt.message };
    case 'unknown':
      return { kind: 'unknown', type: evt.type, seq: evt.seq };
    default: {
      const never: never = evt;
      throw new Error(`unhandled event ${JSON.stringify(never)}`);
    }
  }
}

function single(seq: number, time: string, did: string, value: string, action: string): DecodedFrame {
  return { kind: 'event', seq, time, did, messages: [{ value, action, collection: '' }], skipped: NONE };
}

function skippedFrom(err: unknown): Skipped {
  if (!(err instanceof InputError)) throw err;
  return { reason: err.reason, message: err.message };
}
