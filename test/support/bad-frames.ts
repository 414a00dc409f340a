// Malformed variants of real frames, built by re-encoding real ones.
import { fromUint8Array } from '@atcute/car';
import { decode, decodeFirst, encode, toBytes, BytesWrapper, CidLinkWrapper } from '@atcute/cbor';

function split(frame: Uint8Array): [Record<string, unknown>, Record<string, unknown>] {
  const [header, rest] = decodeFirst(frame);
  return [header, decode(rest)];
}

function join(header: unknown, body: unknown): Uint8Array {
  return Buffer.concat([encode(header), encode(body)]);
}

/** A commit frame whose CAR is not a CAR. */
export function badCar(commitFrame: Uint8Array): Uint8Array {
  const [h, b] = split(commitFrame);
  return join(h, { ...b, blocks: toBytes(new Uint8Array([1, 2, 3, 4, 5])) });
}

/** A commit frame with one byte of its first op's record block flipped: the block no longer hashes to the op CID. */
export function cidMismatch(commitFrame: Uint8Array): Uint8Array {
  const [h, b] = split(commitFrame);
  const car = new Uint8Array((b.blocks as BytesWrapper).buf);
  const opCid = ((b.ops as { cid: CidLinkWrapper | null }[])[0]!.cid!).bytes;
  const entry = [...fromUint8Array(car)].find((e) => Buffer.from(e.cid.bytes).equals(opCid))!;
  car[entry.bytesEnd - 1]! ^= 0x01;
  return join(h, { ...b, blocks: toBytes(car) });
}

/** A syntactically fine frame over the 5 MB limit. */
export function huge(commitFrame: Uint8Array): Uint8Array {
  const [h, b] = split(commitFrame);
  return join(h, { ...b, padding: toBytes(new Uint8Array(5_100_000)) });
}

export function truncated(frame: Uint8Array): Uint8Array {
  return frame.subarray(0, Math.floor(frame.length / 2));
}

export function garbage(): Uint8Array {
  return new Uint8Array([0xff, 0x00, 0x13, 0x37, 0xde, 0xad, 0xbe, 0xef]);
}

export function seqOf(frame: Uint8Array): number {
  return split(frame)[1].seq as number;
}
