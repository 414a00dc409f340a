import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { BytesWrapper, CidLinkWrapper, encode } from '@atcute/cbor';
import { fromUint8Array, type CarBlock } from '@atcute/car';
import { CarBufferReader } from '@ipld/car';
import * as dagCbor from '@ipld/dag-cbor';
import { CID } from 'multiformats/cid';

import { commitOps, type OpResult, type RecordOp } from '../../src/atproto/commit-ops.ts';
import type { InputErrorReason } from '../../src/atproto/errors.ts';
import { decodeFrame, type CommitEvent } from '../../src/atproto/frame.ts';
import { formatOperation } from '../../src/format/atkafka.ts';
import { corpusFrames, joinFrame, manifest, splitFrame, writeCar as writeCarWith } from './corpus.ts';
import { dagCborCid, rawCid, toDataModel } from './ipld.ts';

const frames = corpusFrames();
const commits = frames.map((f) => decodeFrame(f)).filter((e): e is CommitEvent => e.kind === 'commit');

const NSID = /^[a-zA-Z]([a-zA-Z0-9-]{0,62})?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,62})?)+$/;
const RKEY = /^[a-zA-Z0-9._:~-]{1,512}$/;
const CID_V1_DAG_CBOR = /^bafyrei[a-z2-7]{52}$/;

function okOp(r: OpResult | undefined): RecordOp {
  assert.ok(r, 'result present');
  assert.ok(r.ok, r.ok ? '' : `${r.path}: ${r.error.reason}: ${r.error.message}`);
  return r.op;
}

function failed(r: OpResult | undefined, reason: InputErrorReason, path?: string): void {
  assert.ok(r, 'result present');
  assert.equal(r.ok, false, `expected ${reason}, got ok`);
  if (r.ok) return;
  assert.equal(r.error.reason, reason, r.error.message);
  if (path !== undefined) assert.equal(r.path, path);
}

/** The corpus commit with three creates, and its frame parts for mutation. */
const multiIndex = frames.findIndex((f) => {
  const e = decodeFrame(f);
  return e.kind === 'commit' && e.ops.length === 3;
});
const multi = splitFrame(frames[multiIndex]!);
const multiEvent = decodeFrame(frames[multiIndex]!) as CommitEvent;
const multiBlocks = Array.from(fromUint8Array(multiEvent.blocks));
const multiRoots = fromUint8Array(multiEvent.blocks).roots;

/** Re-encodes the three-op commit with other ops and/or CAR bytes, then decodes it like the pipeline does. */
function mutatedCommit(change: { ops?: unknown[]; blocks?: Uint8Array }): CommitEvent {
  const body = { ...multi.body };
  if (change.ops) body.ops = change.ops;
  if (change.blocks) body.blocks = new BytesWrapper(change.blocks);
  const evt = decodeFrame(joinFrame(multi.header, body));
  assert.equal(evt.kind, 'commit');
  return evt as CommitEvent;
}

const writeCar = (blocks: CarBlock[]): Promise<Uint8Array> => writeCarWith(multiRoots, blocks);

const carBlocks = (): CarBlock[] => multiBlocks.map((b) => ({ cid: b.cid.bytes, data: b.bytes }));
const multiOps = multi.body.ops as { action: string; path: string; cid: CidLinkWrapper | null }[];

describe('commitOps on the real relay capture', () => {
  const results = commits.map((c) => ({ commit: c, results: commitOps(c) }));

  test('every op of every commit succeeds; counts equal the manifest', () => {
    const counts = { create: 0, update: 0, delete: 0 };
    for (const { commit, results: rs } of results) {
      assert.equal(rs.length, commit.ops.length);
      for (const r of rs) counts[okOp(r).action]++;
    }
    assert.deepEqual(counts, { create: manifest.creates, update: manifest.updates, delete: manifest.deletes });
  });

  test('creates and updates carry a record whose $type is the collection; deletes have cid "" and record null', () => {
    let withRecord = 0;
    for (const { commit, results: rs } of results) {
      rs.forEach((r, i) => {
        const op = okOp(r);
        assert.equal(op.action, commit.ops[i]!.action);
        assert.equal(op.path, commit.ops[i]!.path);
        if (op.action === 'delete') {
          assert.equal(op.cid, '');
          assert.equal(op.record, null);
          return;
        }
        assert.ok(op.record);
        const json = JSON.parse(JSON.stringify(op.record)) as Record<string, unknown>;
        assert.equal(json.$type, op.collection, op.path);
        assert.equal(op.cid, commit.ops[i]!.cid!.$link);
        withRecord++;
      });
    }
    assert.equal(withRecord, manifest.creates + manifest.updates);
  });

  test('paths split into an NSID and a record key; CIDs and at:// URIs look right', () => {
    for (const { commit, results: rs } of results) {
      for (const r of rs) {
        const op = okOp(r);
        assert.match(op.collection, NSID);
        assert.match(op.rkey, RKEY);
        assert.equal(op.path, `${op.collection}/${op.rkey}`);
        if (op.action !== 'delete') assert.match(op.cid, CID_V1_DAG_CBOR);
        const out = JSON.parse(formatOperation(commit.repo, commit.time, op)) as { operation: { uri: string } };
        assert.equal(out.operation.uri, `at://${commit.repo}/${op.collection}/${op.rkey}`);
        assert.match(out.operation.uri, /^at:\/\/did:plc:[a-z2-7]{24}\/[a-zA-Z0-9.-]+\/[a-zA-Z0-9._:~-]+$/);
      }
    }
  });

  test('every record and CID agrees with @ipld/car + @ipld/dag-cbor + multiformats reading the same CAR', async () => {
    let compared = 0;
    const withLinks = new Set<string>();
    for (const { commit, results: rs } of results) {
      const car = CarBufferReader.fromBytes(commit.blocks);
      for (const r of rs) {
        const op = okOp(r);
        if (op.action === 'delete') continue;
        const cid = CID.parse(op.cid);
        assert.equal(cid.version, 1);
        assert.equal(cid.code, dagCbor.code);
        const block = car.get(cid);
        assert.ok(block, `${op.path}: block ${op.cid} in the CAR`);
        // The block's bytes hash to the op CID (sha2-256 by multiformats).
        assert.equal((await dagCborCid(block.bytes)).toString(), op.cid);
        // The record, as data-model JSON, is what @ipld/dag-cbor reads; key order included.
        const expected = toDataModel(dagCbor.decode(block.bytes));
        const actual: unknown = JSON.parse(JSON.stringify(op.record));
        assert.deepEqual(actual, expected, op.path);
        assert.equal(JSON.stringify(op.record), JSON.stringify(expected), op.path);
        if (JSON.stringify(expected).includes('"$link"')) withLinks.add(op.path);
        compared++;
      }
    }
    assert.equal(compared, manifest.creates + manifest.updates);
    // Some records hold links (blob refs, strong refs), so $link rendering is covered by real data.
    assert.ok(withLinks.size >= 5, `records with links: ${withLinks.size}`);
  });

  test('a commit of only deletes never reads its CAR', () => {
    const del = commits.find((c) => c.ops.length > 0 && c.ops.every((op) => op.action === 'delete'));
    assert.ok(del);
    const rs = commitOps({ ...del, blocks: new Uint8Array([0xde, 0xad]) });
    assert.deepEqual(
      rs.map((r) => okOp(r)),
      del.ops.map((op) => {
        const [collection, rkey] = op.path.split('/');
        return { action: 'delete', collection, rkey, path: op.path, cid: '', record: null };
      }),
    );
  });

  test('an empty commit yields no ops', () => {
    assert.deepEqual(commitOps(mutatedCommit({ ops: [] })), []);
  });
});

describe('commitOps on malformed commits', () => {
  test('sanity: the three-op commit re-encoded unchanged succeeds', async () => {
    const rs = commitOps(mutatedCommit({ blocks: await writeCar(carBlocks()) }));
    assert.equal(rs.length, 3);
    rs.forEach((r, i) => assert.equal(okOp(r).cid, multiOps[i]!.cid!.$link));
  });

  test('garbage CAR bytes: invalid-car for each create, deletes of the same commit still succeed', () => {
    const deletePath = 'app.bsky.feed.post/3mptbyaaaaaaa';
    const ops = [...multiOps, { action: 'delete', path: deletePath, cid: null }];
    const garbage = [
      new Uint8Array([0xff, 0xff, 0xff]),
      new Uint8Array(0),
      new TextEncoder().encode('not a CAR file at all'),
      multiEvent.blocks.subarray(0, multiEvent.blocks.length - 10), // truncated inside the last block
      multiEvent.blocks.subarray(5), // header cut
    ];
    for (const blocks of garbage) {
      const rs = commitOps(mutatedCommit({ ops, blocks }));
      assert.equal(rs.length, 4);
      for (let i = 0; i < 3; i++) failed(rs[i], 'invalid-car', multiOps[i]!.path);
      const del = okOp(rs[3]);
      assert.deepEqual(del, { action: 'delete', collection: 'app.bsky.feed.post', rkey: '3mptbyaaaaaaa', path: deletePath, cid: '', record: null });
    }
  });

  test('one record byte flipped in the CAR: cid-mismatch for that op only', () => {
    for (let target = 0; target < 3; target++) {
      const cid = multiOps[target]!.cid!.bytes;
      const entry = multiBlocks.find((b) => Buffer.from(b.cid.bytes).equals(cid));
      assert.ok(entry);
      const car = Uint8Array.prototype.slice.call(multiEvent.blocks);
      const at = entry.bytesStart + Math.floor(entry.bytes.length / 2);
      car[at] = car[at]! ^ 0x01;
      const rs = commitOps(mutatedCommit({ blocks: car }));
      for (let i = 0; i < 3; i++) {
        if (i === target) failed(rs[i], 'cid-mismatch', multiOps[i]!.path);
        else assert.equal(okOp(rs[i]).cid, multiOps[i]!.cid!.$link);
      }
    }
  });

  test('a record block left out of the CAR: missing-block for that op only', async () => {
    const missing = multiOps[1]!.cid!.bytes;
    const car = await writeCar(carBlocks().filter((b) => !Buffer.from(b.cid).equals(missing)));
    const rs = commitOps(mutatedCommit({ blocks: car }));
    okOp(rs[0]);
    failed(rs[1], 'missing-block', multiOps[1]!.path);
    okOp(rs[2]);
  });

  test('an op CID that names no block of the CAR: missing-block', async () => {
    const elsewhere = await dagCborCid(encode({ $type: 'app.bsky.feed.post', text: 'not in this CAR' }));
    const ops = [{ ...multiOps[0]!, cid: new CidLinkWrapper(elsewhere.bytes) }, multiOps[1], multiOps[2]];
    const rs = commitOps(mutatedCommit({ ops }));
    failed(rs[0], 'missing-block', multiOps[0]!.path);
    okOp(rs[1]);
    okOp(rs[2]);
  });

  test('a block whose CID matches but which is not DAG-CBOR, or not a map: invalid-record', async () => {
    const garbage = new TextEncoder().encode('\xff this is not CBOR \x00\x01');
    const notCbor = new Uint8Array([0xff, 0xfe, 0x00, 0x1f, 0x5b, 0x99]);
    const notMap = encode(['$type', 'app.bsky.feed.post']);
    const str = encode('just a string');
    for (const bytes of [garbage, notCbor, notMap, str]) {
      const cid = await dagCborCid(bytes);
      const ops = [multiOps[0], { ...multiOps[1]!, cid: new CidLinkWrapper(cid.bytes) }, multiOps[2]];
      const car = await writeCar([...carBlocks(), { cid: cid.bytes, data: bytes }]);
      const rs = commitOps(mutatedCommit({ ops, blocks: car }));
      okOp(rs[0]);
      failed(rs[1], 'invalid-record', multiOps[1]!.path);
      okOp(rs[2]);
    }
  });

  test('a CID with the raw codec is refused even when the hash matches: cid-mismatch', async () => {
    const entry = multiBlocks.find((b) => Buffer.from(b.cid.bytes).equals(multiOps[0]!.cid!.bytes))!;
    const cid = await rawCid(entry.bytes);
    const ops = [{ ...multiOps[0]!, cid: new CidLinkWrapper(cid.bytes) }, multiOps[1], multiOps[2]];
    const car = await writeCar([...carBlocks(), { cid: cid.bytes, data: entry.bytes }]);
    const rs = commitOps(mutatedCommit({ ops, blocks: car }));
    failed(rs[0], 'cid-mismatch', multiOps[0]!.path);
    okOp(rs[1]);
    okOp(rs[2]);
  });

  test('a path that is not collection/rkey: invalid-body for that op only', () => {
    for (const path of ['app.bsky.feed.post', 'app.bsky.feed.post/', '/3mptbyospqk2i', 'a/b/c', '']) {
      const ops = [{ ...multiOps[0]!, path }, multiOps[1], multiOps[2]];
      const rs = commitOps(mutatedCommit({ ops }));
      failed(rs[0], 'invalid-body', path);
      okOp(rs[1]);
      okOp(rs[2]);
    }
  });
});
