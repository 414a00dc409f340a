/**
 * The Osprey envelope (`--osprey-compatible`), as the Go at-kafka builds it
 * (types.go `OspreyAtKafkaEvent` / `OspreyEventData`, fields in the order Go
 * marshals them):
 *
 *   {"data":{"action_name":..,"action_id":<int>,"data":<event>,"timestamp":..,
 *    "secret_data":{},"encoding":"UTF8"},"send_time":..}
 *
 * Built by concatenation around the already-formatted at-kafka JSON, so the
 * event is never parsed again. Osprey's worker reads `send_time`,
 * `data.action_id` (through int()), `data.action_name` and `data.data`
 * (roostorg/osprey, `AsyncKafkaInputStream.decode` in
 * osprey_async_worker/.../sinks/sink/input_stream.py).
 */

/**
 * Action names, as in the Go version: `operation#create|update|delete`,
 * `account`, `identity`, `info`; and `sync` (the Go version drops `#sync`).
 */
export type OspreyActionName = `operation#${'create' | 'update' | 'delete'}` | 'account' | 'identity' | 'info' | 'sync';

const INT64_MAX = '9223372036854775807';
const DIGITS = /^(?:0|[1-9][0-9]{0,18})$/;

const TAIL_SECRET = ',"secret_data":{},"encoding":"UTF8"},"send_time":"';

/**
 * Wraps one at-kafka event in the Osprey envelope. `actionId` is a snowflake
 * in decimal digits, written as a JSON integer (Osprey's ids are 64-bit; a
 * JS number would round them). `timestamp` is the event's time. Bytes in,
 * Buffer out (it may be a slice of Node's shared pool, like Buffer.concat's);
 * string in, string out.
 */
export function ospreyEnvelope(event: Uint8Array, actionName: string, actionId: string, timestamp: string, sendTime: Date): Buffer;
export function ospreyEnvelope(event: string, actionName: string, actionId: string, timestamp: string, sendTime: Date): string;
export function ospreyEnvelope(event: string | Uint8Array, actionName: string, actionId: string, timestamp: string, sendTime: Date): string | Buffer;
export function ospreyEnvelope(event: string | Uint8Array, actionName: string, actionId: string, timestamp: string, sendTime: Date): string | Buffer {
  if (!DIGITS.test(actionId) || (actionId.length === 19 && actionId > INT64_MAX)) {
    throw new RangeError(`Osprey action_id must be the decimal digits of a non-negative int64, got ${JSON.stringify(actionId)}`);
  }
  const head = `{"data":{"action_name":${JSON.stringify(actionName)},"action_id":${actionId},"data":`;
  const tail = `,"timestamp":${JSON.stringify(timestamp)}${TAIL_SECRET}${sendTimeString(sendTime)}"}`;
  if (typeof event === 'string') return head + event + tail;
  const headLen = Buffer.byteLength(head);
  const out = Buffer.allocUnsafe(headLen + event.length + Buffer.byteLength(tail));
  out.write(head, 0, 'utf8');
  out.set(event, headLen);
  out.write(tail, headLen + event.length, 'utf8');
  return out;
}

let memoSecond = Number.NaN;
let memoString = '';

/**
 * `send_time`: RFC 3339 in UTC, whole seconds, `Z` (`2026-12-01T17:35:00Z`).
 * The Go version writes `time.Now().Format(time.RFC3339)`: seconds (cut, not
 * rounded) in the process's local zone, `Z` only when that is UTC (its
 * Alpine image). Always UTC here. No fraction, as in Go: the action's
 * millisecond is in its snowflake `action_id` already, and a consumer that
 * parses Go's form strictly keeps working. Osprey parses it with dateutil.
 */
export function sendTimeString(d: Date): string {
  const ms = d.getTime();
  const second = Math.floor(ms / 1000);
  if (second === memoSecond) return memoString;
  if (!Number.isFinite(ms)) throw new RangeError('send_time of an invalid Date');
  const iso = new Date(second * 1000).toISOString(); // 2026-12-01T17:35:00.000Z
  memoString = `${iso.slice(0, -5)}Z`;
  memoSecond = second;
  return memoString;
}
