// Valid-but-hostile commit frames built from a real corpus commit: records that pass the CID check
// and still try to break the bridge (deep nesting, huge fan-out), and seq anomalies.
import { createHash } from 'node:crypto';

import { BytesWrapper, CidLinkWrapper } from '@atcute/cbor';
import type { CarBlock } from '@atcute/car';

import { joinFrame, splitFrame, writeCar } from '../atproto/corpus.ts';

/** CIDv1, dag-cbor, sha2-256 of `bytes`, as the raw bytes a CAR and a CID link carry. */
export function cidBytes(bytes: Uint8Array): Uint8Array {
  const digest = createHash('sha256').update(bytes).digest();
  return Uint8Array.from([0x01, 0x71, 0x12, 0x20, ...digest]);
}

/**
 * `{"a": {"a": ... null}, "$type": "x.y.z"}` with `depth` nested maps in all (the record itself
 * counts as one), written byte by byte: encoders recurse, and this must be deeper than they go.
 */
export function deepRecord(depth: number): Uint8Array {
  const type = Buffer.from('x.y.z');
  const chain = Buffer.alloc((depth - 1) * 3 + 1);
  for (let i = 0; i < depth - 1; i++) chain.set([0xa1, 0x61, 0x61], i * 3); // map(1) "a"
  chain[chain.length - 1] = 0xf6; // null
  // Canonical key order: shorter keys first, so "a" before "$type".
  return Buffer.concat([Buffer.from([0xa2, 0x61, 0x61]), chain, Buffer.from([0x65]), Buffer.from('$type'), Buffer.from([0x60 + type.length]), type]);
}

/** A commit of `base` (a real commit frame) with new ops over the given record blocks, and another seq. */
export async function commitWith(
  base: Uint8Array,
  opts: { seq?: number; ops: { action: 'create' | 'update' | 'delete'; path: string; record?: Uint8Array }[] },
): Promise<Uint8Array> {
  const parts = splitFrame(base);
  const commitCid = (parts.body.commit as CidLinkWrapper).bytes;
  const blocks = new Map<string, CarBlock>();
  const ops = opts.ops.map((op) => {
    if (op.record === undefined) return { action: op.action, path: op.path, cid: null };
    const cid = cidBytes(op.record);
    blocks.set(Buffer.from(cid).toString('hex'), { cid, data: op.record });
    return { action: op.action, path: op.path, cid: new CidLinkWrapper(cid) };
  });
  const body: Record<string, unknown> = { ...parts.body, ops, blocks: new BytesWrapper(await writeCar([new CidLinkWrapper(commitCid)], [...blocks.values()])) };
  if (opts.seq !== undefined) body.seq = opts.seq;
  return joinFrame(parts.header, body);
}

/** Any frame with its seq replaced. */
export function withSeq(frame: Uint8Array, seq: number): Uint8Array {
  const parts = splitFrame(frame);
  return joinFrame(parts.header, { ...parts.body, seq });
}

export function seqOf(frame: Uint8Array): number | undefined {
  const seq = splitFrame(frame).body.seq;
  return typeof seq === 'number' ? seq : undefined;
}
