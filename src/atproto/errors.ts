/**
 * Why a piece of upstream input was skipped. A closed list: each value is a
 * metric label, so dashboards can tell corrupt upstream data from our bugs.
 */
export type InputErrorReason =
  | 'frame-too-large'
  | 'invalid-frame'
  | 'invalid-body'
  | 'invalid-car'
  | 'missing-block'
  | 'cid-mismatch'
  | 'invalid-record'
  | 'invalid-event';

/** Bad upstream data. The position moves past it: waiting would not make it valid. */
export class InputError extends Error {
  readonly reason: InputErrorReason;

  constructor(reason: InputErrorReason, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InputError';
    this.reason = reason;
  }
}
