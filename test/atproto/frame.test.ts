import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { BytesWrapper, CidLinkWrapper, decode, encode } from '@atcute/cbor';
import { fromUint8Array } from '@atcute/car';
import { CarBufferReader } from '@ipld/car';
import { CID } from 'multiformats/cid';

import { InputError, type InputErrorReason } from '../../src/atproto/errors.ts';
import { decodeFrame, MAX_FRAME_BYTES, type CommitEvent, type FirehoseEvent } from '../../src/atproto/frame.ts';
import { syncCommitCid } from '../../src/atproto/sync-commit.ts';
import { corpusFrames, joinFrame, manifest, splitFrame, writeCar } from './corpus.ts';
import { ipldDecodeFrame } from './ipld.ts';
import { prng } from '../support/prng.ts';

const frames = corpusFrames();
const events = frames.map((f) => decodeFrame(f));

function commitAt(i: number): CommitEvent {
  const evt = events[i]!;
  assert.equal(evt.kind, 'commit');
  return evt as CommitEvent;
}

/** JSON view of an event: CID wrappers cache their string form, so compare them as JSON. */
const plain = (e: FirehoseEvent): unknown => JSON.parse(JSON.stringify(e));

/** Index of the corpus frame holding three creates in one commit. */
const multiOp = events.findIndex((e) => e.kind === 'commit' && e.ops.length === 3);

function assertRejects(bytes: Uint8Array, reason: InputErrorReason, message?: RegExp): void {
  assert.throws(
    () => decodeFrame(bytes),
    (err: unknown) => {
      assert.ok(err instanceof InputError, `expected InputError, got ${String(err)}`);
      assert.equal(err.reason, reason, err.message);
      if (message) assert.match(err.message, message);
      return true;
    },
  );
}


describe('decodeFrame on the real relay capture', () => {
  test('decodes all 150 frames; kinds, seqs and op counts equal the manifest', () => {
    assert.equal(frames.length, manifest.frames);
    const kinds = new Map<string, number>();
    for (const e of events) kinds.set(e.kind, (kinds.get(e.kind) ?? 0) + 1);
    assert.deepEqual(Object.fromEntries(kinds), { commit: manifest.commit_frames, identity: manifest.identity, account: manifest.account });

    // 150 contiguous frames: seq_first, seq_first + 1, ..., seq_last.
    const seqs = events.map((e) => ('seq' in e ? e.seq : undefined));
    assert.deepEqual(
      seqs,
      Array.from({ length: manifest.frames }, (_, i) => manifest.seq_first + i),
    );
    assert.equal(seqs.at(-1), manifest.seq_last);

    const actions = { create: 0, update: 0, delete: 0 };
    const repos = new Set<string>();
    for (const e of events) {
      if (e.kind !== 'commit') continue;
      repos.add(e.repo);
      for (const op of e.ops) actions[op.action]++;
    }
    assert.deepEqual(actions, { create: manifest.creates, update: manifest.updates, delete: manifest.deletes });
    assert.deepEqual([...repos].sort(), [...manifest.commit_dids].sort());
  });

  test('commit fields are well formed', () => {
    for (const e of events) {
      if (e.kind !== 'commit') continue;
      assert.match(e.repo, /^did:plc:[a-z2-7]{24}$/);
      assert.match(e.rev, /^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$/, 'rev is a TID');
      assert.match(e.time, /^2026-07-04T\d\d:\d\d:\d\d(\.\d+)?Z$/);
      assert.match(e.commit.$link, /^bafyrei[a-z2-7]{52}$/);
      assert.ok(e.blocks.length > 0);
      for (const op of e.ops) {
        assert.equal(op.cid === null, op.action === 'delete', `${op.action} ${op.path}`);
        if (op.cid !== null) assert.match(op.cid.$link, /^bafyrei[a-z2-7]{52}$/);
      }
    }
  });

  test('agrees field by field with an independent decoder (@ipld/dag-cbor)', () => {
    for (let i = 0; i < frames.length; i++) {
      const { header, body } = ipldDecodeFrame(frames[i]!);
      const e = events[i]!;
      assert.equal(header.op, 1);
      assert.equal(header.t, `#${e.kind}`);
      assert.equal(body.seq, 'seq' in e ? e.seq : undefined);
      assert.equal(body.time, 'time' in e ? e.time : undefined);
      switch (e.kind) {
        case 'commit': {
          assert.equal(body.repo, e.repo);
          assert.equal(body.rev, e.rev);
          assert.equal(String(CID.asCID(body.commit)), e.commit.$link);
          assert.deepEqual(new Uint8Array(body.blocks as Uint8Array), new Uint8Array(e.blocks));
          const ops = (body.ops as { action: string; path: string; cid: unknown }[]).map((op) => ({
            action: op.action,
            path: op.path,
            cid: op.cid === null ? null : String(CID.asCID(op.cid)),
          }));
          assert.deepEqual(
            ops,
            e.ops.map((op) => ({ action: op.action, path: op.path, cid: op.cid === null ? null : op.cid.$link })),
          );
          // The commit block is the CAR's root, read by a second CAR reader.
          const roots = CarBufferReader.fromBytes(e.blocks).getRoots().map(String);
          assert.deepEqual(roots, [e.commit.$link]);
          break;
        }
        case 'identity':
          assert.equal(body.did, e.did);
          assert.equal(body.handle ?? undefined, e.handle);
          break;
        case 'account':
          assert.equal(body.did, e.did);
          assert.equal(body.active, e.active);
          assert.equal(e.active, true);
          assert.equal(body.status ?? undefined, e.status);
          break;
        default:
          assert.fail(`unexpected kind ${e.kind} at frame ${i}`);
      }
    }
  });

  test('re-encoding a decoded frame with @atcute/cbor gives the same bytes (so mutated frames differ only where changed)', () => {
    for (const f of frames) {
      const { header, body } = splitFrame(f);
      assert.deepEqual(joinFrame(header, body), Buffer.from(f));
    }
  });

  test('unknown body fields are ignored', () => {
    const { header, body } = splitFrame(frames[0]!);
    const withExtra = decodeFrame(joinFrame(header, { ...body, zzFutureField: { nested: [1, 2] } }));
    assert.deepEqual(plain(withExtra), plain(events[0]!));
  });
});

describe('decodeFrame on malformed input', () => {
  test('every truncation of a commit, identity and account frame is invalid-frame', () => {
    const picks = [0, multiOp, 148, 149];
    let checked = 0;
    for (const i of picks) {
      const f = frames[i]!;
      for (let n = 0; n < f.length; n++) {
        assertRejects(f.subarray(0, n), 'invalid-frame');
        checked++;
      }
    }
    assert.ok(checked > 5000, `checked ${checked} prefixes`);
  });

  test('truncations of every corpus frame at several offsets are invalid-frame', () => {
    for (const f of frames) {
      for (const n of [1, 5, 20, Math.floor(f.length / 3), Math.floor(f.length / 2), f.length - 37, f.length - 1]) {
        assertRejects(f.subarray(0, n), 'invalid-frame');
      }
    }
  });

  test('garbage bytes are invalid-frame, never a crash', () => {
    const rand = prng(0xa7ca);
    for (let i = 0; i < 2000; i++) {
      const len = 1 + Math.floor(rand() * 300);
      const bytes = new Uint8Array(len);
      for (let j = 0; j < len; j++) bytes[j] = Math.floor(rand() * 256);
      assertRejects(bytes, 'invalid-frame');
    }
    assertRejects(new Uint8Array(0), 'invalid-frame');
    assertRejects(new Uint8Array(1000), 'invalid-frame'); // zeros: two integers, not maps
    assertRejects(new TextEncoder().encode('{"op":1,"t":"#commit"}'), 'invalid-frame');
  });

  test('corrupted bytes inside a real frame fail with an InputError or decode, never crash', () => {
    const rand = prng(7);
    const outcomes = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      const f = Uint8Array.prototype.slice.call(frames[i % frames.length]!);
      const at = Math.floor(rand() * f.length);
      f[at] = f[at]! ^ (1 << Math.floor(rand() * 8));
      try {
        decodeFrame(f);
        outcomes.add('decoded');
      } catch (err) {
        assert.ok(err instanceof InputError, `not an InputError: ${String(err)}`);
        outcomes.add(err.reason);
      }
    }
    // Most flips land in CAR bytes (still a valid frame); some break the CBOR.
    assert.ok(outcomes.has('decoded'));
    assert.ok(outcomes.has('invalid-frame'));
  });

  test('a header that is not a map is invalid-frame', () => {
    const { body } = splitFrame(frames[0]!);
    for (const header of [1, 'x', null, [1, '#commit']]) {
      assertRejects(joinFrame(header, body), 'invalid-frame', /not a map/);
    }
    // Bytes and links decode to wrapper objects: no op, so still refused.
    assertRejects(joinFrame(new BytesWrapper(new Uint8Array([1])), body), 'invalid-frame');
    assertRejects(joinFrame(commitAt(0).commit, body), 'invalid-frame');
  });

  test('a body that is not a map is invalid-frame', () => {
    const { header } = splitFrame(frames[0]!);
    for (const body of [1, 'x', null, [1, 2]]) assertRejects(joinFrame(header, body), 'invalid-frame', /not a map/);
  });

  test('trailing bytes after the body are invalid-frame', () => {
    assertRejects(Buffer.concat([frames[0]!, encode(0)]), 'invalid-frame');
  });

  test('an unknown op is ignored like an unknown type (the spec says so); op 1 without a type, or no op, is invalid-frame', () => {
    const { body } = splitFrame(frames[0]!);
    assert.deepEqual(decodeFrame(joinFrame({ op: 2, t: '#commit' }, body)), { kind: 'unknown', type: 'op 2', seq: undefined } satisfies FirehoseEvent);
    assert.deepEqual(decodeFrame(joinFrame({ op: 0, t: '#commit' }, body)), { kind: 'unknown', type: 'op 0', seq: undefined } satisfies FirehoseEvent);
    assertRejects(joinFrame({ t: '#commit' }, body), 'invalid-frame', /no op/);
    assertRejects(joinFrame({ op: 1 }, body), 'invalid-frame');
    assertRejects(joinFrame({ op: 1, t: 7 }, body), 'invalid-frame');
  });

  test('a body without a valid seq is invalid-body, for every kind that has one', () => {
    for (const i of [0, 148, 149]) {
      const { header, body } = splitFrame(frames[i]!);
      const { seq: _seq, ...noSeq } = body;
      assertRejects(joinFrame(header, noSeq), 'invalid-body', /"seq"/);
      for (const seq of [-1, 1.5, 'x', null]) assertRejects(joinFrame(header, { ...body, seq }), 'invalid-body', /"seq"/);
    }
    // A seq of 2^53 cannot be encoded by @atcute, so patch the CBOR integer by hand: 2^52 -> 2^53.
    const { header, body } = splitFrame(frames[0]!);
    const hex = Buffer.from(joinFrame(header, { ...body, seq: 2 ** 52 })).toString('hex');
    assert.ok(hex.includes('63736571' + '1b0010000000000000'));
    assertRejects(Buffer.from(hex.replace('63736571' + '1b0010000000000000', '63736571' + '1b0020000000000000'), 'hex'), 'invalid-frame');
  });

  test('other missing or mistyped commit fields are invalid-body, naming the field and the seq', () => {
    const { header, body } = splitFrame(frames[0]!);
    const seq = body.seq as number;
    const ops = body.ops as Record<string, unknown>[];
    const cases: [Record<string, unknown>, string][] = [
      [{ ...body, repo: 'not-a-did' }, 'repo'],
      [{ ...body, repo: undefined }, 'repo'],
      [{ ...body, rev: 5 }, 'rev'],
      [{ ...body, time: undefined }, 'time'],
      [{ ...body, commit: 'bafyrei' }, 'commit'],
      [{ ...body, blocks: 'car' }, 'blocks'],
      [{ ...body, ops: 'none' }, 'ops'],
      [{ ...body, ops: [1] }, 'ops'],
      [{ ...body, ops: [{ ...ops[0], action: 7 }] }, 'ops.action'],
      [{ ...body, ops: [{ ...ops[0], path: 3 }] }, 'ops.path'],
      [{ ...body, ops: [{ ...ops[0], cid: 'bafyrei' }] }, 'ops.cid'],
    ];
    for (const [b, field] of cases) {
      assertRejects(joinFrame(header, b), 'invalid-body', new RegExp(`"${field.replace('.', '\\.')}" \\(seq ${seq}\\)`));
    }
  });

  test('a well-typed op with a wrong value spoils only itself: unknown action, create without a CID, delete with one', () => {
    const { header, body } = splitFrame(frames[0]!);
    const ops = body.ops as Record<string, unknown>[];
    const good = ops[0]!;
    const bad = [
      [{ ...good, action: 'upsert' }, /unknown op action "upsert"/],
      [{ ...good, cid: null }, /create op without a CID/],
      [{ ...good, action: 'delete' }, /delete op with a CID/],
    ] as const;
    for (const [op, why] of bad) {
      const evt = decodeFrame(joinFrame(header, { ...body, ops: [op, good] })) as CommitEvent;
      assert.equal(evt.kind, 'commit');
      assert.match(evt.ops[0]!.invalid ?? '', why);
      assert.equal(evt.ops[1]!.invalid, undefined);
    }
  });

  test('a delete may carry a null cid or none at all', () => {
    const { header, body } = splitFrame(frames[0]!);
    const path = 'app.bsky.feed.like/3mptbyplj5d2a';
    for (const op of [{ action: 'delete', path, cid: null }, { action: 'delete', path }]) {
      const evt = decodeFrame(joinFrame(header, { ...body, ops: [op] }));
      assert.equal(evt.kind, 'commit');
      assert.deepEqual((evt as CommitEvent).ops, [{ action: 'delete', path, cid: null }]);
    }
  });

  test('account without a boolean active, identity with a non-string handle: invalid-body', () => {
    const acct = splitFrame(frames[149]!);
    assertRejects(joinFrame(acct.header, { ...acct.body, active: 'yes' }), 'invalid-body', /"active"/);
    const { active: _a, ...noActive } = acct.body;
    assertRejects(joinFrame(acct.header, noActive), 'invalid-body', /"active"/);
    assertRejects(joinFrame(acct.header, { ...acct.body, status: 1 }), 'invalid-body', /"status"/);
    const ident = splitFrame(frames[148]!);
    assertRejects(joinFrame(ident.header, { ...ident.body, handle: 42 }), 'invalid-body', /"handle"/);
    assertRejects(joinFrame(ident.header, { ...ident.body, did: 'alice' }), 'invalid-body', /"did"/);
  });

  test('account status and identity handle are kept when present', () => {
    const acct = splitFrame(frames[149]!);
    const taken = decodeFrame(joinFrame(acct.header, { ...acct.body, active: false, status: 'takendown' }));
    assert.deepEqual(taken, { ...events[149]!, active: false, status: 'takendown' });
    const ident = splitFrame(frames[148]!);
    const named = decodeFrame(joinFrame(ident.header, { ...ident.body, handle: 'alice.example.com' }));
    assert.deepEqual(named, { ...events[148]!, handle: 'alice.example.com' });
  });

  test('a frame over 5,000,000 bytes is frame-too-large before any decoding; exactly 5,000,000 decodes', () => {
    assert.equal(MAX_FRAME_BYTES, 5_000_000);
    const { header, body } = splitFrame(frames[0]!);
    // Grow the blocks field until the frame is exactly the limit.
    const sized = (total: number): Uint8Array => {
      let n = total - frames[0]!.length;
      for (;;) {
        const f = joinFrame(header, { ...body, blocks: new BytesWrapper(new Uint8Array(n)) });
        if (f.length === total) return f;
        n += total - f.length;
      }
    };
    const atLimit = sized(5_000_000);
    assert.equal(atLimit.length, 5_000_000);
    const evt = decodeFrame(atLimit) as CommitEvent;
    assert.equal(evt.kind, 'commit');
    assert.equal(evt.blocks.length, atLimit.length - (frames[0]!.length - commitAt(0).blocks.length) - 2);

    const over = sized(5_000_001);
    assertRejects(over, 'frame-too-large', /5000001 bytes/);
    // Garbage of that size too: the size is checked first.
    assertRejects(new Uint8Array(5_000_001).fill(0xff), 'frame-too-large');
  });
});

describe('decodeFrame on the other message types', () => {
  test('an error frame (op -1)', () => {
    const evt = decodeFrame(joinFrame({ op: -1 }, { error: 'FutureCursor', message: 'Cursor in the future.' }));
    assert.deepEqual(evt, { kind: 'error', error: 'FutureCursor', message: 'Cursor in the future.' } satisfies FirehoseEvent);
    assert.deepEqual(decodeFrame(joinFrame({ op: -1 }, { error: 'ConsumerTooSlow' })), {
      kind: 'error',
      error: 'ConsumerTooSlow',
      message: undefined,
    });
    assertRejects(joinFrame({ op: -1 }, { message: 'no name' }), 'invalid-body', /"error"/);
  });

  test('#info OutdatedCursor', () => {
    const evt = decodeFrame(
      joinFrame({ op: 1, t: '#info' }, { name: 'OutdatedCursor', message: 'Requested cursor exceeded limit. Possibly missing events' }),
    );
    assert.deepEqual(evt, { kind: 'info', name: 'OutdatedCursor', message: 'Requested cursor exceeded limit. Possibly missing events' });
    assert.deepEqual(decodeFrame(joinFrame({ op: 1, t: '#info' }, { name: 'OutdatedCursor' })), {
      kind: 'info',
      name: 'OutdatedCursor',
      message: undefined,
    });
    assertRejects(joinFrame({ op: 1, t: '#info' }, { message: 'x' }), 'invalid-body', /"name"/);
  });

  test('an unknown type is kind unknown, its seq kept', () => {
    assert.deepEqual(decodeFrame(joinFrame({ op: 1, t: '#foo' }, { seq: 31527015500, anything: [1, 'two'] })), {
      kind: 'unknown',
      type: '#foo',
      seq: 31527015500,
    });
    assert.deepEqual(decodeFrame(joinFrame({ op: 1, t: '#foo' }, {})), { kind: 'unknown', type: '#foo', seq: undefined });
    assert.deepEqual(decodeFrame(joinFrame({ op: 1, t: '#foo' }, { seq: 'x' })), { kind: 'unknown', type: '#foo', seq: undefined });
    // The body still has to be a map.
    assertRejects(joinFrame({ op: 1, t: '#foo' }, 5), 'invalid-frame');
  });

  test('#sync built from a real commit block: decoded, and its CAR root is the commit CID', async () => {
    const commit = commitAt(0);
    const block = Array.from(fromUint8Array(commit.blocks)).find((b) => b.cid.bytes.length === commit.commit.bytes.length && Buffer.from(b.cid.bytes).equals(commit.commit.bytes));
    assert.ok(block, 'commit block is in the CAR');
    const car = await writeCar([commit.commit], [{ cid: commit.commit.bytes, data: block.bytes }]);
    const body = { seq: commit.seq + 1000, did: commit.repo, rev: commit.rev, time: commit.time, blocks: new BytesWrapper(car) };
    const evt = decodeFrame(joinFrame({ op: 1, t: '#sync' }, body));
    assert.equal(evt.kind, 'sync');
    assert.deepEqual({ ...evt, blocks: undefined }, { kind: 'sync', seq: commit.seq + 1000, did: commit.repo, rev: commit.rev, time: commit.time, blocks: undefined });
    assert.equal(syncCommitCid(evt), commit.commit.$link);
    // The signed commit block names the repo and rev the event claims.
    const signed = decode(block.bytes) as { did: string; rev: string; sig: BytesWrapper; data: CidLinkWrapper };
    assert.equal(signed.did, commit.repo);
    assert.equal(signed.rev, commit.rev);

    assertRejects(joinFrame({ op: 1, t: '#sync' }, { ...body, blocks: undefined }), 'invalid-body', /"blocks"/);
    const garbage = decodeFrame(joinFrame({ op: 1, t: '#sync' }, { ...body, blocks: new BytesWrapper(new Uint8Array([1, 2, 3])) }));
    assert.equal(garbage.kind, 'sync');
    assert.throws(
      () => syncCommitCid(garbage),
      (err: unknown) => err instanceof InputError && err.reason === 'invalid-car',
    );
  });
});
