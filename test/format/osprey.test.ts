import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';

import { commitOps, type RecordOp } from '../../src/atproto/commit-ops.ts';
import { decodeFrame, type CommitEvent } from '../../src/atproto/frame.ts';
import { formatAccount, formatIdentity, formatInfo, formatOperation, formatSync } from '../../src/format/atkafka.ts';
import { ospreyEnvelope, sendTimeString } from '../../src/format/osprey.ts';
import { Snowflake } from '../../src/format/snowflake.ts';
import { corpusFrames } from '../atproto/corpus.ts';

const DID = 'did:plc:wq4aajammjtxdomz3e23667t';
const TIME = '2026-07-04T14:38:07.517Z';
const CID = 'bafyreiguce4jh7kcbmof3pmcvasifqtw24b6isakj5ve5ga2b4z4alpc4i';
const SEND = new Date('2026-12-01T17:35:00.987Z');
/** Above 2^53: a JS number would round it (to ...984). */
const ID = '1844674407370955161';

/** JSON.parse that keeps every integer exact, as a BigInt (Node 24: the reviver sees the source text). */
function parseExact(text: string): unknown {
  return JSON.parse(text, (_key, value: unknown, ctx?: { source?: string }) =>
    typeof value === 'number' && ctx?.source !== undefined && /^-?[0-9]+$/.test(ctx.source) ? BigInt(ctx.source) : value,
  );
}

const like: RecordOp = {
  action: 'create',
  collection: 'app.bsky.feed.like',
  rkey: '3mptbyplj5d2a',
  path: 'app.bsky.feed.like/3mptbyplj5d2a',
  cid: CID,
  record: { $type: 'app.bsky.feed.like', createdAt: '2026-07-04T14:38:08.999Z', text: '<b>&ünïcødé 🦋</b>' },
};

/** One event of every kind, as the pipeline hands them to the envelope: [action name, at-kafka JSON, event time]. */
function events(): Array<[string, string, string]> {
  return [
    ['operation#create', formatOperation(DID, TIME, like), TIME],
    ['operation#update', formatOperation(DID, TIME, { ...like, action: 'update' }), TIME],
    ['operation#delete', formatOperation(DID, TIME, { ...like, action: 'delete', cid: '', record: null }), TIME],
    ['account', formatAccount({ kind: 'account', seq: 31527015471, did: DID, time: TIME, active: false, status: 'takendown' }), TIME],
    ['identity', formatIdentity({ kind: 'identity', seq: 31527015472, did: DID, time: TIME, handle: 'alice.example.com' }), TIME],
    ['info', formatInfo({ kind: 'info', name: 'OutdatedCursor', message: 'too old' }, SEND), SEND.toISOString()],
    ['sync', formatSync({ kind: 'sync', seq: 31527015473, did: DID, rev: '3mptbyp', time: TIME, blocks: new Uint8Array() }, CID), TIME],
  ];
}

describe('Osprey envelope', () => {
  test('every action kind parses to exactly the Go-shaped object, action_id an exact 64-bit integer', () => {
    for (const [actionName, event, timestamp] of events()) {
      const text = ospreyEnvelope(event, actionName, ID, timestamp, SEND);
      assert.equal(typeof text, 'string');
      assert.deepEqual(parseExact(text), {
        data: {
          action_name: actionName,
          action_id: BigInt(ID),
          data: parseExact(event),
          timestamp,
          secret_data: {},
          encoding: 'UTF8',
        },
        send_time: '2026-12-01T17:35:00Z',
      });
      // The digits themselves, not a rounded double.
      assert.equal(/"action_id":([0-9]+),/.exec(text)?.[1], ID);
    }
  });

  test('field order is the Go marshal order; the event is embedded byte for byte', () => {
    const event = formatOperation(DID, TIME, like);
    const text = ospreyEnvelope(event, 'operation#create', ID, TIME, SEND);
    assert.equal(
      text,
      `{"data":{"action_name":"operation#create","action_id":${ID},"data":${event},` +
        `"timestamp":"${TIME}","secret_data":{},"encoding":"UTF8"},"send_time":"2026-12-01T17:35:00Z"}`,
    );
    const parsed = JSON.parse(text) as { data: Record<string, unknown> };
    assert.deepEqual(Object.keys(parsed), ['data', 'send_time']);
    assert.deepEqual(Object.keys(parsed.data), ['action_name', 'action_id', 'data', 'timestamp', 'secret_data', 'encoding']);
  });

  test('bytes in, Buffer out, the same bytes as the string form (non-ASCII intact)', () => {
    for (const [actionName, event, timestamp] of events()) {
      const bytes = new TextEncoder().encode(event);
      const out = ospreyEnvelope(bytes, actionName, ID, timestamp, SEND);
      assert.ok(Buffer.isBuffer(out));
      assert.equal(out.toString('utf8'), ospreyEnvelope(event, actionName, ID, timestamp, SEND));
    }
    const empty = ospreyEnvelope(new Uint8Array(new TextEncoder().encode('{}')), 'info', '0', '', SEND);
    assert.deepEqual(JSON.parse(empty.toString()), {
      data: { action_name: 'info', action_id: 0, data: {}, timestamp: '', secret_data: {}, encoding: 'UTF8' },
      send_time: '2026-12-01T17:35:00Z',
    });
  });

  test('action_id must be the digits of a non-negative int64', () => {
    for (const bad of ['', '-1', '01', '1.5', '1e3', ' 1', '12a', '9223372036854775808', '10000000000000000000', '"1"']) {
      assert.throws(() => ospreyEnvelope('{}', 'info', bad, '', SEND), RangeError, JSON.stringify(bad));
    }
    for (const good of ['0', '7', '9223372036854775807', '999999999999999999']) {
      assert.match(ospreyEnvelope('{}', 'info', good, '', SEND), new RegExp(`"action_id":${good},`));
    }
  });

  test('send_time: RFC 3339, UTC, whole seconds cut (not rounded) like Go time.RFC3339, always a zone', () => {
    assert.equal(sendTimeString(new Date('2026-12-01T17:35:00.999Z')), '2026-12-01T17:35:00Z');
    assert.equal(sendTimeString(new Date('2026-12-01T17:35:01.000Z')), '2026-12-01T17:35:01Z');
    assert.equal(sendTimeString(new Date('2026-12-01T17:35:00.001Z')), '2026-12-01T17:35:00Z');
    // Not the process's zone: the same instant, whatever TZ says.
    assert.equal(sendTimeString(new Date('2026-12-01T18:35:00+01:00')), '2026-12-01T17:35:00Z');
    assert.equal(sendTimeString(new Date(0)), '1970-01-01T00:00:00Z');
    assert.equal(sendTimeString(new Date(-1)), '1969-12-31T23:59:59Z');
    assert.match(sendTimeString(new Date()), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.throws(() => sendTimeString(new Date(Number.NaN)), RangeError);
  });

  test("the envelope parses as Osprey's worker parses it (python3, mirroring AsyncKafkaInputStream.decode)", (t) => {
    // roostorg/osprey osprey_async_worker/src/osprey/async_worker/sinks/sink/input_stream.py,
    // AsyncKafkaInputStream.decode(record_value): json.loads(value); data['data'];
    // Action(action_id=int(action_data['action_id']), action_name=action_data['action_name'],
    // data=action_data['data'], timestamp=parse_go_timestamp(data['send_time'])), where
    // parse_go_timestamp (osprey_worker/.../lib/utils/dates.py) is dateutil.parser.parse.
    // Action is a dataclass (no checks); the rules sink then calls action.data.get(...), so
    // data must be a dict. Without dateutil, datetime.fromisoformat (3.11+ takes 'Z') stands in.
    const script = String.raw`
import json, sys
from datetime import datetime, timedelta
try:
    from dateutil import parser
    parse_go_timestamp, how = parser.parse, 'dateutil'
except ImportError:
    parse_go_timestamp, how = datetime.fromisoformat, 'fromisoformat'
out = []
for record_value in sys.stdin.buffer.read().split(b'\n'):
    if not record_value:
        continue
    data = json.loads(record_value)
    action_data = data['data']
    action_id = int(action_data['action_id'])
    action_name = action_data['action_name']
    payload = action_data['data']
    timestamp = parse_go_timestamp(data['send_time'])
    assert type(action_data['action_id']) is int, 'action_id is a JSON integer'
    assert 0 < action_id < 2**63, action_id
    assert isinstance(action_name, str)
    assert isinstance(payload, dict)
    assert timestamp.utcoffset() == timedelta(0), timestamp
    out.append({'action_id': str(action_id), 'action_name': action_name, 'did': payload.get('did'),
                'timestamp': timestamp.isoformat(), 'how': how})
print(json.dumps(out))
`;
    const probe = spawnSync('python3', ['--version']);
    if (probe.error !== undefined) {
      t.skip('python3 is not installed');
      return;
    }
    const ids = new Snowflake({ workerId: 1 });
    const expected: Array<{ id: string; name: string; did: string }> = [];
    const lines: Buffer[] = [];
    // Every kind, as strings and as bytes, plus every commit op of the real relay capture.
    for (const [actionName, event, timestamp] of events()) {
      const id = ids.nextString();
      lines.push(Buffer.from(ospreyEnvelope(event, actionName, id, timestamp, SEND)));
      expected.push({ id, name: actionName, did: actionName === 'info' ? '' : DID });
    }
    for (const frame of corpusFrames()) {
      const evt = decodeFrame(frame);
      if (evt.kind !== 'commit') continue;
      for (const r of commitOps(evt as CommitEvent)) {
        if (!r.ok) continue;
        const id = ids.nextString();
        const name = `operation#${r.op.action}`;
        const event = new TextEncoder().encode(formatOperation(evt.repo, evt.time, r.op));
        lines.push(ospreyEnvelope(event, name, id, evt.time, new Date()));
        expected.push({ id, name, did: evt.repo });
      }
    }
    assert.ok(lines.length > 100);
    const res = spawnSync('python3', ['-c', script], { input: Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\n')])) });
    assert.equal(res.status, 0, res.stderr.toString());
    const got = JSON.parse(res.stdout.toString()) as Array<{ action_id: string; action_name: string; did: string; timestamp: string; how: string }>;
    assert.equal(got.length, expected.length);
    for (let i = 0; i < got.length; i++) {
      assert.equal(got[i]!.action_id, expected[i]!.id, 'int() of the JSON integer is the exact snowflake');
      assert.equal(got[i]!.action_name, expected[i]!.name);
      assert.equal(got[i]!.did, expected[i]!.did);
    }
    assert.equal(got[0]!.timestamp, '2026-12-01T17:35:00+00:00');
    t.diagnostic(`send_time parsed with ${got[0]!.how}`);
  });
});
