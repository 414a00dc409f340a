import * as dagCbor from '@ipld/dag-cbor';
import { CID } from 'multiformats/cid';
import { sha256 } from 'multiformats/hashes/sha2';

/**
 * A second, independent reading of frames and records (the @ipld / multiformats
 * stack, not @atcute), so the tests do not check @atcute against itself.
 */

/**
 * Splits a frame into header and body without @atcute: @ipld/dag-cbor only
 * decodes a whole buffer, so the header ends where both halves decode.
 */
export function ipldDecodeFrame(frame: Uint8Array): { header: Record<string, unknown>; body: Record<string, unknown> } {
  for (let end = 1; end < Math.min(frame.length, 64); end++) {
    let header: unknown;
    let body: unknown;
    try {
      header = dagCbor.decode(frame.subarray(0, end));
      body = dagCbor.decode(frame.subarray(end));
    } catch {
      continue;
    }
    return { header: header as Record<string, unknown>, body: body as Record<string, unknown> };
  }
  throw new Error('no header/body split decodes with @ipld/dag-cbor');
}

/** The atproto data-model JSON of a DAG-CBOR value: links as {"$link"}, bytes as {"$bytes"} (base64, no padding). */
export function toDataModel(value: unknown): unknown {
  const cid = CID.asCID(value);
  if (cid !== null) return { $link: cid.toString() };
  if (value instanceof Uint8Array) return { $bytes: Buffer.from(value).toString('base64').replace(/=+$/, '') };
  if (Array.isArray(value)) return value.map(toDataModel);
  if (typeof value === 'object' && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = toDataModel(v);
    return out;
  }
  return value;
}

/** CIDv1, dag-cbor, sha2-256 of `bytes`, computed by multiformats. */
export async function dagCborCid(bytes: Uint8Array): Promise<CID> {
  return CID.create(1, dagCbor.code, await sha256.digest(bytes));
}

/** CIDv1, raw codec, sha2-256 of `bytes`. */
export async function rawCid(bytes: Uint8Array): Promise<CID> {
  return CID.create(1, 0x55, await sha256.digest(bytes));
}
