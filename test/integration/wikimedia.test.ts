// `atkafka wikimedia` (the real CLI, a real broker) against the EventStreams stand-in
// (test/support/wikimedia-server.ts, written from wikimedia/eventstreams and KafkaSSE) serving real
// recentchange events: every event once as sent, keyed by wiki; restarts resume with Last-Event-ID
// (SIGTERM: nothing twice; SIGKILL: nothing lost), a connection cut mid-event loses nothing.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { startCommand, waitFor, type Bridge } from '../support/bridge.ts';
import { startTestBroker, type TestBroker } from '../support/kafka-broker.ts';
import { readTopic, type ReadMessage } from '../support/kafka-read.ts';
import { loadWikimediaFixture, loopWikimediaEvents, startWikimediaServer, type WikimediaServer } from '../support/wikimedia-server.ts';

const fixture = loadWikimediaFixture();
const header = (m: ReadMessage, name: string) => m.headers.find(([k]) => k === name)?.[1];
/** The event's own id in Wikimedia's Kafka: topic, partition, offset. */
const idOf = (m: ReadMessage) => {
  const meta = (JSON.parse(m.value) as { meta: { topic: string; partition: number; offset: number } }).meta;
  return `${meta.topic}/${meta.partition}/${meta.offset}`;
};

// kcat can hang on a partition it cannot reach yet: a bounded read, tried again by the waitFor around it.
async function readSoFar(bootstrap: string, topic: string): Promise<ReadMessage[]> {
  try {
    return await readTopic(bootstrap, topic, 20_000);
  } catch {
    return [];
  }
}

describe('atkafka wikimedia', () => {
  let broker: TestBroker;
  let dir: string;
  let topicNo = 0;
  const running: Bridge[] = [];
  const servers: WikimediaServer[] = [];

  before(async () => {
    broker = await startTestBroker();
    dir = await mkdtemp(join(tmpdir(), 'atkafka-wikimedia-test-'));
  });
  after(async () => {
    await broker?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    for (const b of running.splice(0)) if (b.child.exitCode === null) b.child.kill('SIGKILL');
    for (const s of servers.splice(0)) await s.close().catch(() => {});
  });

  const topic = () => `wikimedia-${++topicNo}`;

  async function server(events = fixture): Promise<WikimediaServer> {
    const s = await startWikimediaServer({ events });
    servers.push(s);
    return s;
  }

  async function bridge(t: string, s: WikimediaServer, extra: string[] = []): Promise<Bridge> {
    const b = await startCommand(
      ['wikimedia'],
      ['--bootstrap-servers', broker.bootstrap, '--output-topic', t, '--url', s.httpUrl, '--reconnect-backoff', '100ms', '--reconnect-backoff-max', '500ms', '--cursor-save-interval', '100ms', ...extra],
    );
    running.push(b);
    return b;
  }

  async function stop(b: Bridge): Promise<void> {
    b.child.kill('SIGTERM');
    const timer = setTimeout(() => b.child.kill('SIGKILL'), 60_000);
    const code = await b.exited;
    clearTimeout(timer);
    assert.equal(code, 0, `the bridge did not stop cleanly on SIGTERM within 60 s (${code}):\n${b.logs().slice(-4000)}`);
  }

  async function waitForIds(t: string, want: Set<string>, b: Bridge, timeoutMs = 60_000): Promise<ReadMessage[]> {
    return waitFor(
      `${want.size} events in ${t}`,
      async () => {
        if (b.child.exitCode !== null) throw new Error(`the bridge exited (${b.child.exitCode}):\n${b.logs()}`);
        const msgs = await readSoFar(broker.bootstrap, t);
        const have = new Set(msgs.map(idOf));
        for (const id of want) if (!have.has(id)) return undefined;
        return msgs;
      },
      timeoutMs,
      300,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; bridge log:\n${b.logs().slice(-3000)}`);
    });
  }

  const storedIds = (s: WikimediaServer) => new Set(Array.from({ length: s.size }, (_, i) => s.stored(i)!).map((e) => `${e.topic}/${e.partition}/${e.offset}`));

  it('every event once, as sent, keyed by wiki, from --since; the cursor is the last event\'s id', async () => {
    const s = await server();
    const t = topic();
    const cursorFile = join(dir, `${t}.json`);
    const b = await bridge(t, s, ['--since', '2025-05-03T00:00:00Z', '--cursor-file', cursorFile]);
    const got = await waitForIds(t, storedIds(s), b);
    await waitFor('the cursor saved', async () => {
      try {
        return JSON.parse(await readFile(cursorFile, 'utf8')).lastEventId !== undefined;
      } catch {
        return false;
      }
    });
    await sleep(300);
    await stop(b);
    assert.equal(got.length, fixture.length);
    assert.equal(s.requests[0]!.url.searchParams.get('since'), '2025-05-03T00:00:00.000Z');
    const sent = new Map(Array.from({ length: s.size }, (_, i) => s.stored(i)!).map((e) => [`${e.topic}/${e.partition}/${e.offset}`, e]));
    // Per partition (wiki key), in the order Wikimedia sent them.
    const lastOffset = new Map<number, number>();
    for (const m of got) {
      const e = sent.get(idOf(m))!;
      assert.equal(m.value, e.data, 'the event JSON as sent');
      const v = JSON.parse(m.value) as { wiki: string; type: string; meta: { stream: string; offset: number } };
      assert.equal(m.key, v.wiki);
      assert.equal(header(m, 'kind'), v.meta.stream);
      assert.equal(header(m, 'action'), v.type);
      assert.equal(header(m, 'offset'), String(v.meta.offset));
      assert.equal(header(m, 'source'), 'wikimedia');
      assert.ok(v.meta.offset > (lastOffset.get(m.partition) ?? -1), 'in order within a partition');
      lastOffset.set(m.partition, v.meta.offset);
    }
    const saved = JSON.parse(await readFile(cursorFile, 'utf8')) as { lastEventId: string; streams: string[] };
    assert.deepEqual(saved.streams, ['recentchange']);
    assert.ok(JSON.parse(saved.lastEventId).length >= 1, 'an id array');

    // A restart resumes after it with Last-Event-ID: only the new events come.
    const more = [...loopWikimediaEvents(fixture, 50)];
    s.push(...more);
    const b2 = await bridge(t, s, ['--cursor-file', cursorFile]);
    await waitForIds(t, storedIds(s), b2);
    await sleep(500);
    await stop(b2);
    assert.equal(s.requests.at(-1)!.headers['last-event-id'], saved.lastEventId);
    assert.equal(s.requests.at(-1)!.url.searchParams.get('since'), null, 'a resume sends no since');
    const all = (await readTopic(broker.bootstrap, t)).map(idOf);
    assert.equal(all.length, fixture.length + more.length, 'nothing twice');
    assert.equal(new Set(all).size, all.length);
  });

  it('a restart inside events that share a second loses none: the resume is by offset, not by EventStreams\' timestamp id', async () => {
    // The fixture's real meta.dt are whole seconds, many events to one: a Last-Event-ID of timestamps
    // would resume at the first event of the second after the last one read and skip the rest of its second.
    const half = fixture.length / 2;
    const s = await server(fixture.slice(0, half));
    const t = topic();
    const cursorFile = join(dir, `${t}.json`);
    const b = await bridge(t, s, ['--since', '2025-05-03T00:00:00Z', '--cursor-file', cursorFile]);
    await waitForIds(t, storedIds(s), b);
    await sleep(300);
    await stop(b);
    const lastDt = (fixture[half - 1]!.meta as { dt: string }).dt;
    assert.ok(fixture.slice(half).some((e) => (e.meta as { dt: string }).dt === lastDt), 'the second half starts inside the last second of the first');
    s.push(...fixture.slice(half));
    const b2 = await bridge(t, s, ['--cursor-file', cursorFile]);
    await waitForIds(t, storedIds(s), b2);
    await sleep(500);
    await stop(b2);
    const sentId = JSON.parse(String(s.requests.at(-1)!.headers['last-event-id'])) as { topic: string; partition: number; offset?: number }[];
    assert.deepEqual(sentId.find((e) => e.topic === 'eqiad.mediawiki.recentchange'), { topic: 'eqiad.mediawiki.recentchange', partition: 0, offset: (fixture[half - 1]!.meta as { offset: number }).offset + 1 });
    const all = (await readTopic(broker.bootstrap, t)).map(idOf);
    assert.equal(all.length, fixture.length, 'every event once');
    assert.equal(new Set(all).size, fixture.length);
  });

  it('--key page: one page\'s events under one key; --since the epoch means the oldest kept (EventStreams reads 0 as live)', async () => {
    const s = await server();
    const t = topic();
    const b = await bridge(t, s, ['--since', '1970-01-01T00:00:00Z', '--cursor-file', '', '--key', 'page']);
    const got = await waitForIds(t, storedIds(s), b);
    await stop(b);
    assert.equal(s.requests[0]!.url.searchParams.get('since'), '1970-01-01T00:00:00.001Z');
    for (const m of got) {
      const v = JSON.parse(m.value) as { wiki: string; title: string };
      assert.equal(m.key, `${v.wiki}/${v.title}`);
    }
  });

  it('cut mid-event, dropped, SIGKILLed while events keep coming: nothing lost; repeats only after the saved cursor', async () => {
    const s = await server();
    const t = topic();
    const cursorFile = join(dir, `${t}.json`);
    const args = ['--since', '2025-05-03T00:00:00Z', '--cursor-file', cursorFile];
    let pushing = true;
    const live = (async () => {
      for (const e of loopWikimediaEvents(fixture, 1_000_000)) {
        if (!pushing) break;
        s.push(e);
        await sleep(2);
      }
    })();
    try {
      let b = await bridge(t, s, args);
      await waitFor('500 events', async () => (await readSoFar(broker.bootstrap, t)).length >= 500, 60_000, 200);
      await waitFor('an open stream', async () => s.openConnections >= 1, 30_000);
      let before = s.connections;
      assert.ok((await s.dropMidEvent()) >= 1);
      await waitFor('a reconnect after the cut', async () => s.connections > before, 30_000);
      await waitFor('an open stream', async () => s.openConnections >= 1, 30_000);
      before = s.connections;
      assert.ok(s.dropConnections() >= 1);
      await waitFor('a reconnect after the drop', async () => s.connections > before, 30_000);
      await stop(b);
      const afterTerm = (await readTopic(broker.bootstrap, t)).map(idOf);
      assert.equal(new Set(afterTerm).size, afterTerm.length, 'nothing twice across cuts, drops and a clean stop');

      b = await bridge(t, s, args);
      await waitFor('more events', async () => (await readSoFar(broker.bootstrap, t)).length >= afterTerm.length + 500, 60_000, 200);
      b.child.kill('SIGKILL');
      await b.exited;
      const savedAtKill = JSON.parse(await readFile(cursorFile, 'utf8')) as { lastEventId: string };

      b = await bridge(t, s, args);
      await sleep(1000);
      pushing = false;
      await live;
      const want = storedIds(s);
      await waitForIds(t, want, b, 90_000);
      await stop(b);
      assert.equal(s.requests.find((r, i) => i > 0 && r.headers['last-event-id'] === savedAtKill.lastEventId) !== undefined, true, 'resumed from the cursor saved before the SIGKILL');

      const got = (await readTopic(broker.bootstrap, t)).map(idOf);
      const counts = new Map<string, number>();
      for (const id of got) counts.set(id, (counts.get(id) ?? 0) + 1);
      for (const id of want) assert.ok(counts.has(id), `${id} is in Kafka`);
      for (const [id, c] of counts) {
        if (c === 1) continue;
        assert.equal(c, 2, `${id} at most twice`);
        assert.ok(!afterTerm.includes(id), `${id} from before the clean stop is not repeated`);
      }
    } finally {
      pushing = false;
    }
  });
});
