import { encode } from '@atcute/cbor';

/** An event-stream error frame: header `{op: -1}` then body `{error, message}`, as relays send before closing. */
export function encodeErrorFrame(error: string, message: string): Uint8Array {
  const header = encode({ op: -1 });
  const body = encode({ error, message });
  const out = new Uint8Array(header.byteLength + body.byteLength);
  out.set(header);
  out.set(body, header.byteLength);
  return out;
}
