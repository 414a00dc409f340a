// Firehose frames recorded from a real local PDS (test/fixtures/pds) through the bridge into Kafka:
// updates, deletes, multi-op and empty commits, #sync, handle changes, deactivation, takedown, deletion.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';

import { startReplayServer } from '../../src/replay/index.ts';
import { readCursor, startBridge, waitFor } from '../support/bridge.ts';
import { readTopic } from '../support/kafka-read.ts';
import { startTestBroker, type TestBroker } from '../support/kafka-broker.ts';

const FIXTURE = fileURLToPath(new URL('../fixtures/pds/', import.meta.url));

interface ExpectedOp {
  action: 'create' | 'update' | 'delete';
  path: string;
  cid: string | null;
  record?: unknown;
}
interface ExpectedEvent {
  seq: number;
  type: '#commit' | '#sync' | '#identity' | '#account';
  did: string;
  commit?: string;
  rev?: string;
  ops?: ExpectedOp[];
  handle?: string;
  active?: boolean;
  status?: string;
}

const { events } = JSON.parse(readFileSync(join(FIXTURE, 'expected.json'), 'utf8')) as { events: ExpectedEvent[] };

describe('real PDS firehose -> Kafka', () => {
  let broker: TestBroker;
  let dir: string;
  let got: { key: string; value: Record<string, any> }[];

  before(async () => {
    broker = await startTestBroker();
    dir = await mkdtemp(join(tmpdir(), 'atkafka-pds-'));
    await using relay = await startReplayServer({ frames: join(FIXTURE, 'frames.bin') });
    const cursorFile = join(dir, 'cursor.json');
    const topic = 'pds-fixture';
    const bridge = await startBridge(['--bootstrap-servers', broker.bootstrap, '--output-topic', topic, '--relay-host', relay.url, '--cursor-file', cursorFile, '--cursor-save-interval', '50ms', '--topic-partitions', '4']);
    const last = events[events.length - 1]!.seq;
    await waitFor('last fixture seq confirmed', async () => (await readCursor(cursorFile)) === last);
    bridge.child.kill('SIGTERM');
    assert.equal(await bridge.exited, 0, bridge.logs());
    // 4 partitions, keyed by DID: reading partition by partition keeps each DID's order.
    got = (await readTopic(broker.bootstrap, topic)).map((m) => ({ key: m.key, value: JSON.parse(m.value) }));
  });
  after(async () => {
    await broker?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('emits one message per op and per identity/account/sync event, and none for empty commits', () => {
    const want = events.reduce((n, e) => n + (e.type === '#commit' ? e.ops!.length : 1), 0);
    assert.equal(got.length, want);
    assert.ok(events.some((e) => e.type === '#commit' && e.ops!.length === 0), 'the fixture has empty commits');
  });

  it('renders every op with its record exactly as the PDS stored it', () => {
    for (const e of events.filter((e) => e.type === '#commit')) {
      for (const op of e.ops!) {
        const [collection, rkey] = op.path.split('/');
        const m = got.find((g) => g.value.operation?.path === op.path && g.value.operation.action === op.action && g.key === e.did);
        assert.ok(m, `message for ${op.action} ${op.path}`);
        assert.deepEqual(m.value.operation, {
          action: op.action,
          collection,
          rkey,
          uri: `at://${e.did}/${op.path}`,
          cid: op.cid ?? '',
          path: op.path,
          record: op.record ?? null,
        });
        assert.equal(m.value.did, e.did);
        assert.equal(m.value.eventMetadata, null);
      }
    }
  });

  it('covers updates, deletes and a multi-op commit', () => {
    const actions = got.map((g) => g.value.operation?.action).filter(Boolean);
    assert.ok(actions.includes('update') && actions.includes('delete'));
    const multi = events.find((e) => e.type === '#commit' && e.ops!.length > 1)!;
    const ofMulti = got.filter((g) => g.key === multi.did && multi.ops!.some((o) => o.path === g.value.operation?.path && o.action === g.value.operation?.action));
    assert.equal(ofMulti.length, multi.ops!.length);
  });

  it('forwards identity (handle change), account (deactivation, takedown, deletion) and sync events', () => {
    for (const e of events.filter((e) => e.type !== '#commit')) {
      const matches = got.filter((g) => {
        const v = g.value;
        if (e.type === '#identity') return v.identity?.seq === e.seq;
        if (e.type === '#account') return v.account?.seq === e.seq;
        return v.sync?.seq === e.seq;
      });
      assert.equal(matches.length, 1, `${e.type} seq ${e.seq}`);
      const v = matches[0]!.value;
      assert.equal(matches[0]!.key, e.did);
      if (e.type === '#identity') assert.equal(v.identity.handle, e.handle);
      if (e.type === '#account') assert.deepEqual(v.account, { active: e.active, seq: e.seq, ...(e.status ? { status: e.status } : {}) });
      if (e.type === '#sync') assert.deepEqual(v.sync, { seq: e.seq, rev: e.rev, commit: e.commit });
    }
    const statuses = got.map((g) => g.value.account?.status).filter(Boolean);
    assert.deepEqual([...new Set(statuses)].sort(), ['deactivated', 'deleted', 'takendown']);
    assert.ok(got.some((g) => g.value.identity?.handle === 'alice-renamed.test'));
  });

  it('keeps each DID in stream order', () => {
    const orderOf = (did: string) =>
      events
        .filter((e) => e.did === did)
        .flatMap((e) => (e.type === '#commit' ? e.ops!.map((o) => `op ${o.action} ${o.path}`) : [`${e.type} ${e.seq}`]));
    const seen = (v: Record<string, any>) =>
      v.operation ? `op ${v.operation.action} ${v.operation.path}` : v.identity ? `#identity ${v.identity.seq}` : v.account ? `#account ${v.account.seq}` : `#sync ${v.sync.seq}`;
    for (const did of new Set(events.map((e) => e.did))) {
      assert.deepEqual(got.filter((g) => g.key === did).map((g) => seen(g.value)), orderOf(did));
    }
  });
});
