import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { BytesWrapper, CidLinkWrapper, decode, encode } from '@atcute/cbor';
import { fromString } from '@atcute/cid';

import { commitOps, type RecordOp } from '../../src/atproto/commit-ops.ts';
import { decodeFrame, type AccountEvent, type CommitEvent, type IdentityEvent, type SyncEvent } from '../../src/atproto/frame.ts';
import { formatAccount, formatIdentity, formatInfo, formatOperation, formatSync, UNKNOWN_KEY } from '../../src/format/atkafka.ts';
import { corpusFrames } from '../atproto/corpus.ts';

const DID = 'did:plc:wq4aajammjtxdomz3e23667t';
const TIME = '2026-07-04T14:38:07.517Z';
const CID = 'bafyreiguce4jh7kcbmof3pmcvasifqtw24b6isakj5ve5ga2b4z4alpc4i';

/** The first op of corpus frame `i`, as the pipeline would format it. */
function corpusOp(i: number): { commit: CommitEvent; op: RecordOp } {
  const evt = decodeFrame(corpusFrames()[i]!);
  assert.equal(evt.kind, 'commit');
  const [r] = commitOps(evt as CommitEvent);
  assert.ok(r?.ok);
  return { commit: evt as CommitEvent, op: r.op };
}

describe('at-kafka JSON', () => {
  test('an operation: fields in the Go order, uri built from did/collection/rkey', () => {
    const op: RecordOp = {
      action: 'create',
      collection: 'app.bsky.feed.like',
      rkey: '3mptbyplj5d2a',
      path: 'app.bsky.feed.like/3mptbyplj5d2a',
      cid: CID,
      record: { $type: 'app.bsky.feed.like', createdAt: '2026-07-04T14:38:08.999Z', n: 3 },
    };
    assert.equal(
      formatOperation(DID, TIME, op),
      '{"did":"did:plc:wq4aajammjtxdomz3e23667t","timestamp":"2026-07-04T14:38:07.517Z","eventMetadata":null,' +
        '"operation":{"action":"create","collection":"app.bsky.feed.like","rkey":"3mptbyplj5d2a",' +
        '"uri":"at://did:plc:wq4aajammjtxdomz3e23667t/app.bsky.feed.like/3mptbyplj5d2a",' +
        '"cid":"bafyreiguce4jh7kcbmof3pmcvasifqtw24b6isakj5ve5ga2b4z4alpc4i","path":"app.bsky.feed.like/3mptbyplj5d2a",' +
        '"record":{"$type":"app.bsky.feed.like","createdAt":"2026-07-04T14:38:08.999Z","n":3}}}',
    );
  });

  test('a real corpus create (a like, with a strong ref), pinned', () => {
    const { commit, op } = corpusOp(0);
    assert.equal(
      formatOperation(commit.repo, commit.time, op),
      '{"did":"did:plc:wq4aajammjtxdomz3e23667t","timestamp":"2026-07-04T14:38:07.517Z","eventMetadata":null,' +
        '"operation":{"action":"create","collection":"app.bsky.feed.like","rkey":"3mptbyplj5d2a",' +
        '"uri":"at://did:plc:wq4aajammjtxdomz3e23667t/app.bsky.feed.like/3mptbyplj5d2a",' +
        '"cid":"bafyreiguce4jh7kcbmof3pmcvasifqtw24b6isakj5ve5ga2b4z4alpc4i","path":"app.bsky.feed.like/3mptbyplj5d2a",' +
        '"record":{"$type":"app.bsky.feed.like","subject":{"cid":"bafyreiftot7eltsc3f6g4qktykmbv6jcmdmhcx5osscan6jpdxkpqcmcza",' +
        '"uri":"at://did:plc:r2zybk6op3ymzpz6jhqpkoy5/app.bsky.feed.post/3mpsjbtci2c2o"},"createdAt":"2026-07-04T14:38:08.999Z"}}}',
    );
  });

  test('a real corpus update whose record holds a blob link: {"$link": ...}, non-ASCII text intact', () => {
    const { commit, op } = corpusOp(98);
    assert.equal(op.action, 'update');
    assert.equal(
      formatOperation(commit.repo, commit.time, op),
      '{"did":"did:plc:mb6o6ohnafbk33xaw5jpn63c","timestamp":"2026-07-04T14:38:07.623Z","eventMetadata":null,' +
        '"operation":{"action":"update","collection":"app.bsky.actor.status","rkey":"self",' +
        '"uri":"at://did:plc:mb6o6ohnafbk33xaw5jpn63c/app.bsky.actor.status/self",' +
        '"cid":"bafyreigoaona7k6tazp6q4jleukqbxrlwh7qpdajs6pk6oatc5rwicc6pi","path":"app.bsky.actor.status/self",' +
        '"record":{"$type":"app.bsky.actor.status","embed":{"$type":"app.bsky.embed.external","external":{' +
        '"uri":"https://www.twitch.tv/Zarynos_VT","$type":"app.bsky.embed.external#external",' +
        '"thumb":{"ref":{"$link":"bafkreihixfjkjnefxi7gxno7wtrcfr5glyvlludu42d5giftpowg4ojvzm"},"size":133601,"$type":"blob","mimeType":"image/jpeg"},' +
        '"title":"Zarynos_VT - Twitch",' +
        '"description":"○⟡★ ~ SPACE CATBUG LOOKING TO MAKE FRIENDS! ~ ★⟡○~ [18+ Stream] !DUBBY  !ZORBS !OPEN LOBBIES DROPS ENABLED !tip !vgen !discord"}},' +
        '"status":"app.bsky.actor.status#live","createdAt":"2026-07-04T14:38:06.730Z","durationMinutes":240}}}',
    );
  });

  test('a delete: cid "" and record null', () => {
    const op: RecordOp = {
      action: 'delete',
      collection: 'app.bsky.graph.follow',
      rkey: '3m3q3ut7jsm2m',
      path: 'app.bsky.graph.follow/3m3q3ut7jsm2m',
      cid: '',
      record: null,
    };
    assert.equal(
      formatOperation('did:plc:ux2eeflheratfrvp3xfbp4zi', '2026-07-04T14:38:07.069Z', op),
      '{"did":"did:plc:ux2eeflheratfrvp3xfbp4zi","timestamp":"2026-07-04T14:38:07.069Z","eventMetadata":null,' +
        '"operation":{"action":"delete","collection":"app.bsky.graph.follow","rkey":"3m3q3ut7jsm2m",' +
        '"uri":"at://did:plc:ux2eeflheratfrvp3xfbp4zi/app.bsky.graph.follow/3m3q3ut7jsm2m",' +
        '"cid":"","path":"app.bsky.graph.follow/3m3q3ut7jsm2m","record":null}}',
    );
    // The real delete of the corpus formats the same way.
    const { commit, op: real } = corpusOp(11);
    assert.equal(formatOperation(commit.repo, commit.time, real), formatOperation('did:plc:ux2eeflheratfrvp3xfbp4zi', '2026-07-04T14:38:07.069Z', op));
  });

  test('a record with a CID link and bytes renders {"$link"} and {"$bytes"} (base64, no padding)', () => {
    const link = new CidLinkWrapper(fromString(CID).bytes);
    // Through CBOR, as records arrive: the decoder yields the wrapper types.
    const record = decode(
      encode({
        $type: 'com.example.thing',
        ref: link,
        b0: new BytesWrapper(new Uint8Array([])),
        b1: new BytesWrapper(new Uint8Array([0xff])),
        b2: new BytesWrapper(new Uint8Array([0xff, 0xfe])),
        b3: new BytesWrapper(new Uint8Array([0xff, 0xfe, 0xfd])),
        list: [link, new BytesWrapper(new TextEncoder().encode('hello'))],
        big: 9007199254740991,
        neg: -42,
      }),
    ) as Record<string, unknown>;
    assert.ok(record.ref instanceof CidLinkWrapper);
    assert.ok(record.b1 instanceof BytesWrapper);
    const op: RecordOp = { action: 'create', collection: 'com.example.thing', rkey: 'k', path: 'com.example.thing/k', cid: CID, record };
    assert.equal(
      formatOperation(DID, TIME, op),
      '{"did":"did:plc:wq4aajammjtxdomz3e23667t","timestamp":"2026-07-04T14:38:07.517Z","eventMetadata":null,' +
        '"operation":{"action":"create","collection":"com.example.thing","rkey":"k",' +
        '"uri":"at://did:plc:wq4aajammjtxdomz3e23667t/com.example.thing/k",' +
        `"cid":"${CID}","path":"com.example.thing/k",` +
        // DAG-CBOR key order: shorter keys first, then bytewise.
        `"record":{"b0":{"$bytes":""},"b1":{"$bytes":"/w"},"b2":{"$bytes":"//4"},"b3":{"$bytes":"//79"},"big":9007199254740991,"neg":-42,` +
        `"ref":{"$link":"${CID}"},"list":[{"$link":"${CID}"},{"$bytes":"aGVsbG8"}],"$type":"com.example.thing"}}}`,
    );
  });

  test('account: status present, and absent (the key is left out)', () => {
    const evt: AccountEvent = { kind: 'account', seq: 31527015471, did: DID, time: TIME, active: false, status: 'takendown' };
    assert.equal(
      formatAccount(evt),
      '{"did":"did:plc:wq4aajammjtxdomz3e23667t","timestamp":"2026-07-04T14:38:07.517Z","eventMetadata":null,' +
        '"account":{"active":false,"seq":31527015471,"status":"takendown"}}',
    );
    assert.equal(
      formatAccount({ ...evt, active: true, status: undefined }),
      '{"did":"did:plc:wq4aajammjtxdomz3e23667t","timestamp":"2026-07-04T14:38:07.517Z","eventMetadata":null,' +
        '"account":{"active":true,"seq":31527015471}}',
    );
    // The corpus #account event.
    const real = decodeFrame(corpusFrames()[149]!);
    assert.equal(real.kind, 'account');
    assert.equal(
      formatAccount(real as AccountEvent),
      '{"did":"did:plc:hqvhxrowqbemo5e4wjnj6zao","timestamp":"2026-07-04T14:38:07.877Z","eventMetadata":null,' +
        '"account":{"active":true,"seq":31527015471}}',
    );
  });

  test('identity: handle kept, or "" when absent', () => {
    const evt: IdentityEvent = { kind: 'identity', seq: 31527015470, did: DID, time: TIME, handle: 'alice.example.com' };
    assert.equal(
      formatIdentity(evt),
      '{"did":"did:plc:wq4aajammjtxdomz3e23667t","timestamp":"2026-07-04T14:38:07.517Z","eventMetadata":null,' +
        '"identity":{"seq":31527015470,"handle":"alice.example.com"}}',
    );
    const real = decodeFrame(corpusFrames()[148]!);
    assert.equal(real.kind, 'identity');
    assert.equal((real as IdentityEvent).handle, undefined);
    assert.equal(
      formatIdentity(real as IdentityEvent),
      '{"did":"did:plc:hqvhxrowqbemo5e4wjnj6zao","timestamp":"2026-07-04T14:38:07.877Z","eventMetadata":null,' +
        '"identity":{"seq":31527015470,"handle":""}}',
    );
  });

  test('info: stamped with the receive time, no did; message left out when absent', () => {
    const at = new Date(Date.UTC(2026, 6, 4, 14, 39, 14, 5));
    assert.equal(
      formatInfo({ kind: 'info', name: 'OutdatedCursor', message: 'Requested cursor exceeded limit' }, at),
      '{"did":"","timestamp":"2026-07-04T14:39:14.005Z","eventMetadata":null,' +
        '"info":{"name":"OutdatedCursor","message":"Requested cursor exceeded limit"}}',
    );
    assert.equal(
      formatInfo({ kind: 'info', name: 'OutdatedCursor', message: undefined }, at),
      '{"did":"","timestamp":"2026-07-04T14:39:14.005Z","eventMetadata":null,"info":{"name":"OutdatedCursor"}}',
    );
    assert.equal(UNKNOWN_KEY, '<unknown>');
  });

  test('sync: seq, rev and the commit CID (null when unreadable)', () => {
    const evt: SyncEvent = { kind: 'sync', seq: 31527015500, did: DID, rev: '3mptbypluud2a', time: TIME, blocks: new Uint8Array([1]) };
    assert.equal(
      formatSync(evt, 'bafyreiacmzmmzfukfenvoukzfza4k5cyeqbjjqunee4cpo3rn4vovmcg5m'),
      '{"did":"did:plc:wq4aajammjtxdomz3e23667t","timestamp":"2026-07-04T14:38:07.517Z","eventMetadata":null,' +
        '"sync":{"seq":31527015500,"rev":"3mptbypluud2a","commit":"bafyreiacmzmmzfukfenvoukzfza4k5cyeqbjjqunee4cpo3rn4vovmcg5m"}}',
    );
    assert.equal(
      formatSync(evt, null),
      '{"did":"did:plc:wq4aajammjtxdomz3e23667t","timestamp":"2026-07-04T14:38:07.517Z","eventMetadata":null,' +
        '"sync":{"seq":31527015500,"rev":"3mptbypluud2a","commit":null}}',
    );
  });

  test('JSON-unsafe strings are escaped, so every message parses back', () => {
    const op: RecordOp = {
      action: 'create',
      collection: 'app.bsky.feed.post',
      rkey: 'k',
      path: 'app.bsky.feed.post/k',
      cid: CID,
      record: { text: 'quote " backslash \\ newline \n nul \u0000 emoji 🦋 lone \ud800' },
    };
    const out = formatOperation(DID, TIME, op);
    assert.ok(out.includes(String.raw`"text":"quote \" backslash \\ newline \n nul \u0000 emoji 🦋 lone \ud800"`), out);
    assert.deepEqual((JSON.parse(out) as { operation: { record: unknown } }).operation.record, op.record);
  });
});
