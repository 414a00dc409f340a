/**
 * eventMetadata into an already formatted at-kafka message, without parsing
 * it again: every formatter writes `"eventMetadata":null` right after `did`
 * and `timestamp`, and the first occurrence is always that field (inside a
 * JSON string a `"` is escaped, so no value can contain the sequence).
 */
const FIELD = '"eventMetadata":';
const NEEDLE = `${FIELD}null`;
const NEEDLE_BYTES = Buffer.from(NEEDLE);

export function withMetadata(value: string | Uint8Array, metadataJson: string): string | Buffer {
  if (typeof value === 'string') {
    const at = value.indexOf(NEEDLE);
    if (at < 0) throw new Error('message has no eventMetadata field');
    const from = at + FIELD.length;
    return value.slice(0, from) + metadataJson + value.slice(from + 4);
  }
  const bytes = Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  const at = bytes.indexOf(NEEDLE_BYTES);
  if (at < 0) throw new Error('message has no eventMetadata field');
  const from = at + FIELD.length;
  const meta = Buffer.from(metadataJson);
  const out = Buffer.allocUnsafe(bytes.length - 4 + meta.length);
  bytes.copy(out, 0, 0, from);
  meta.copy(out, from);
  bytes.copy(out, from + meta.length, from + 4);
  return out;
}
