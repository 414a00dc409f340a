import { CommitOpReader } from '../atproto/commit-ops.ts';
import { InputError, type InputErrorReason } from '../atproto/errors.ts';
import { decodeFrame } from '../atproto/frame.ts';
import { syncCommitCid } from '../atproto/sync-commit.ts';
import type { RecordOp } from '../atproto/commit-ops.ts';
import type { AccountEvent, CommitEvent, IdentityEvent, InfoEvent, SyncEvent } from '../atproto/frame.ts';
import { formatAccount, formatIdentity, formatInfo, formatOperation, formatSync } from '../format/atkafka.ts';
import { jetstreamAccount, jetstreamCommit, jetstreamIdentity, MicrosClock } from '../format/jetstream.ts';

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
 * A relay frame decoded, checked and formatted (or a piece of one): everything
 * the pipeline needs and nothing more, as plain data so it can cross a thread
 * boundary cheaply.
 */
export type DecodedFrame =
  /**
   * An event with a seq: its messages (none for an empty commit) and the ops
   * skipped as invalid. A commit with many messages comes in several pieces,
   * so that memory is bounded by the piece, not by the frame: `first` on the
   * first, `last` on the last, both on a frame of one piece.
   */
  | {
      kind: 'event';
      seq: number;
      time: string;
      did: string;
      messages: DecodedMessage[];
      skipped: Skipped[];
      /** Ops left out by the collection filter (never decoded nor formatted). */
      filtered: number;
      first: boolean;
      last: boolean;
    }
  | { kind: 'info'; name: string; message: string | undefined; value: string | Uint8Array }
  | { kind: 'error'; error: string; message: string | undefined }
  | { kind: 'unknown'; type: string; seq: number | undefined }
  /** The whole frame was unusable. */
  | { kind: 'invalid'; skipped: Skipped; bytes: number };

export type DecodedEvent = Extract<DecodedFrame, { kind: 'event' }>;

/** How much one piece of a commit may hold (the JSON's UTF-16 length stands in for bytes). */
export interface PieceLimits {
  messages: number;
  chars: number;
}

export const PIECE_LIMITS: PieceLimits = { messages: 64, chars: 256 * 1024 };

const NONE: Skipped[] = [];

/** The JSON shape messages are written in (`--format`). */
export type OutputFormat = 'atkafka' | 'jetstream';

/**
 * How a frame's events become message values. `sync` and `info` may say ''
 * (this shape has no such message: Jetstream v1 sends neither); the event
 * still completes, with no message.
 */
export interface FrameFormatter {
  operation(evt: CommitEvent, op: RecordOp, receivedAt: Date): string;
  identity(evt: IdentityEvent, receivedAt: Date): string;
  account(evt: AccountEvent, receivedAt: Date): string;
  sync(evt: SyncEvent): string;
  info(evt: InfoEvent, receivedAt: Date): string;
}

export const ATKAFKA_FORMAT: FrameFormatter = {
  operation: (evt, op) => formatOperation(evt.repo, evt.time, op),
  identity: (evt) => formatIdentity(evt),
  account: (evt) => formatAccount(evt),
  sync: (evt) => formatSync(evt, syncCommitCid(evt)),
  info: (evt, receivedAt) => formatInfo(evt, receivedAt),
};

/** Jetstream's shape; time_us from `clock` (one per decode thread). */
export function jetstreamFormatter(clock: MicrosClock): FrameFormatter {
  const us = (receivedAt: Date) => clock.next(receivedAt.getTime() * 1000);
  return {
    operation: (evt, op, receivedAt) =>
      jetstreamCommit(evt.repo, us(receivedAt), { rev: evt.rev, operation: op.action, collection: op.collection, rkey: op.rkey, record: op.record, cid: op.cid }),
    identity: (evt, receivedAt) => jetstreamIdentity(evt.did, us(receivedAt), evt),
    account: (evt, receivedAt) => jetstreamAccount(evt.did, us(receivedAt), evt),
    sync: () => '',
    info: () => '',
  };
}

export function frameFormatter(format: OutputFormat | undefined, thread = 0, threads = 1): FrameFormatter {
  return format === 'jetstream' ? jetstreamFormatter(new MicrosClock(thread, threads)) : ATKAFKA_FORMAT;
}

/** The pieces of a frame, in order; the last piece of a frame is the only one with `last` (or not an event). */
export function isFrameEnd(piece: DecodedFrame): boolean {
  return piece.kind !== 'event' || piece.last;
}

/**
 * Frame bytes -> Kafka-ready messages, all at once. Pure, and never throws on
 * bad input: every InputError becomes a `skipped` entry. Anything else thrown
 * is a bug and propagates.
 */
export function decodeRelayFrame(frame: Uint8Array, receivedAt: Date, format: FrameFormatter = ATKAFKA_FORMAT): DecodedFrame {
  let whole: DecodedFrame | undefined;
  for (const piece of decodeRelayPieces(frame, receivedAt, { messages: Infinity, chars: Infinity }, undefined, format)) whole = piece;
  return whole!;
}

/**
 * Frame bytes -> Kafka-ready messages, in pieces of at most `limits`, formatted
 * only as they are asked for: whoever pulls the pieces bounds the memory,
 * whatever the frame holds (a hostile commit may fan out into thousands of
 * messages, each repeating a large record).
 */
export function* decodeRelayPieces(
  frame: Uint8Array,
  receivedAt: Date,
  limits: PieceLimits = PIECE_LIMITS,
  keepCollection?: (collection: string) => boolean,
  format: FrameFormatter = ATKAFKA_FORMAT,
): Generator<DecodedFrame, void, undefined> {
  let evt;
  try {
    evt = decodeFrame(frame);
  } catch (err) {
    yield { kind: 'invalid', skipped: skippedFrom(err), bytes: frame.length };
    return;
  }
  switch (evt.kind) {
    case 'commit': {
      let piece = eventPiece(evt.seq, evt.time, evt.repo, true);
      let chars = 0;
      const reader = new CommitOpReader(evt);
      for (let i = 0; i < evt.ops.length; i++) {
        if (keepCollection !== undefined) {
          // Before the record is read: a filtered op costs a string compare, not a decode and a JSON.
          const path = evt.ops[i]!.path;
          const slash = path.indexOf('/');
          if (slash > 0 && !keepCollection(path.slice(0, slash))) {
            piece.filtered++;
            continue;
          }
        }
        const result = reader.read(i);
        if (result.ok) {
          const op = result.op;
          let value: string;
          try {
            value = format.operation(evt, op, receivedAt);
          } catch (err) {
            // Hostile records reach here only past the decoder's checks; whatever they make JSON do, skip the op.
            addSkipped(piece, { reason: 'invalid-record', message: `cannot format record: ${(err as Error).message}`, path: op.path });
            continue;
          }
          if (piece.messages.length >= limits.messages || (chars > 0 && chars + value.length > limits.chars)) {
            yield piece;
            piece = eventPiece(evt.seq, evt.time, evt.repo, false);
            chars = 0;
          }
          piece.messages.push({ value, action: `operation#${op.action}`, collection: op.collection });
          chars += value.length;
        } else {
          addSkipped(piece, { reason: result.error.reason, message: result.error.message, path: result.path });
        }
      }
      piece.last = true;
      yield piece;
      return;
    }
    case 'identity':
      yield single(evt.seq, evt.time, evt.did, format.identity(evt, receivedAt), 'identity');
      return;
    case 'account':
      yield single(evt.seq, evt.time, evt.did, format.account(evt, receivedAt), 'account');
      return;
    case 'sync': {
      let value: string;
      try {
        value = format.sync(evt);
      } catch (err) {
        yield { kind: 'event', seq: evt.seq, time: evt.time, did: evt.did, messages: [], skipped: [skippedFrom(err)], filtered: 0, first: true, last: true };
        return;
      }
      yield single(evt.seq, evt.time, evt.did, value, 'sync');
      return;
    }
    case 'info':
      yield { kind: 'info', name: evt.name, message: evt.message, value: format.info(evt, receivedAt) };
      return;
    case 'error':
      yield { kind: 'error', error: evt.error, message: evt.message };
      return;
    case 'unknown':
      yield { kind: 'unknown', type: evt.type, seq: evt.seq };
      return;
    default: {
      const never: never = evt;
      throw new Error(`unhandled event ${JSON.stringify(never)}`);
    }
  }
}

function eventPiece(seq: number, time: string, did: string, first: boolean): DecodedEvent {
  return { kind: 'event', seq, time, did, messages: [], skipped: NONE, filtered: 0, first, last: false };
}

function addSkipped(piece: DecodedEvent, skipped: Skipped): void {
  if (piece.skipped === NONE) piece.skipped = [];
  piece.skipped.push(skipped);
}

function single(seq: number, time: string, did: string, value: string, action: string): DecodedFrame {
  const messages = value === '' ? [] : [{ value, action, collection: '' }];
  return { kind: 'event', seq, time, did, messages, skipped: NONE, filtered: 0, first: true, last: true };
}

function skippedFrom(err: unknown): Skipped {
  if (!(err instanceof InputError)) throw err;
  return { reason: err.reason, message: err.message };
}
