// Ozone mode against a real Ozone (@atproto/dev-env's TestNetwork: PLC, PDS, AppView and
// @atproto/ozone on PostgreSQL and Redis, tools/peers/ozone.ts), the real CLI and a real broker:
// a few hundred moderation events of every kind, several sharing one millisecond across page
// boundaries, land exactly once and in Ozone's order; restarts (SIGTERM, SIGKILL), expiring and
// revoked sessions, a broker outage, Ozone or the PDS down, a bad password and rate limits lose
// nothing; the late-commit race is real and the settle lag closes it.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';

import { metricValue, startCommand, waitFor, type Bridge } from '../support/bridge.ts';
import { startTestBroker, type TestBroker } from '../support/kafka-broker.ts';
import { readTopic, type ReadMessage } from '../support/kafka-read.ts';
import { eventKinds, repoRef, startOzone, strongRef, type ModEventView, type OzonePeer, type Session, type Subject } from '../support/ozone.ts';

const DEFS = 'tools.ozone.moderation.defs#';
const keyOf = (e: ModEventView) => (typeof e.subject.did === 'string' ? e.subject.did : String(e.subject.uri).split('/')[2]!);
const positionOf = (e: ModEventView) => `${Date.parse(e.createdAt)}::${e.id}`;
const header = (m: ReadMessage, name: string) => m.headers.find(([k]) => k === name)?.[1];

async function readSoFar(bootstrap: string, topic: string): Promise<ReadMessage[]> {
  try {
    return await readTopic(bootstrap, topic);
  } catch {
    return [];
  }
}

async function sample(bridge: Bridge, name: string, labels: Record<string, string> = {}): Promise<number> {
  try {
    return metricValue(await bridge.metrics(), name, labels);
  } catch {
    return 0;
  }
}

const ids = (msgs: ReadMessage[]) => msgs.map((m) => Number(header(m, 'id')));

describe('ozone-events against a real Ozone', () => {
  let broker: TestBroker;
  let ozone: OzonePeer;
  let dir: string;
  let topicNo = 0;
  const running: Bridge[] = [];

  before(async () => {
    [broker, ozone] = await Promise.all([startTestBroker(), startOzone()]);
    dir = await mkdtemp(join(tmpdir(), 'atkafka-ozone-test-'));
  });
  after(async () => {
    await ozone?.[Symbol.asyncDispose]();
    await broker?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    await ozone.resetRateLimits();
  });
  afterEach(() => {
    for (const b of running.splice(0)) if (b.child.exitCode === null) b.child.kill('SIGKILL');
  });

  const topic = () => `ozone-${++topicNo}`;

  async function bridge(topicName: string, extra: string[] = [], env: Record<string, string> = {}): Promise<Bridge> {
    const b = await startCommand(
      ['ozone-events'],
      [
        '--bootstrap-servers', broker.bootstrap,
        '--output-topic', topicName,
        '--pds-host', ozone.pdsUrl,
        '--identifier', ozone.moderator.handle,
        '--labeler-did', ozone.ozoneDid,
        '--poll-interval', '300ms',
        '--reconnect-backoff', '200ms',
        '--reconnect-backoff-max', '1s',
        ...extra,
      ],
      { ATKAFKA_OZONE_PASSWORD: ozone.moderator.password, ...env },
    );
    running.push(b);
    return b;
  }

  /** Started and polling: with --start now, events made from here on are after its start. */
  async function polling(b: Bridge): Promise<Bridge> {
    await waitFor('the first poll', async () => {
      if (b.child.exitCode !== null) throw new Error(`the bridge exited (${b.child.exitCode}):\n${b.logs()}`);
      return (await sample(b, 'atkafka_ozone_polls')) >= 1;
    }, 30_000, 100);
    return b;
  }

  async function stop(b: Bridge): Promise<void> {
    b.child.kill('SIGTERM');
    assert.equal(await b.exited, 0, b.logs());
  }

  /** Waits until the topic holds every one of `want` (event ids); returns the topic. */
  async function waitForIds(topicName: string, want: number[], b?: Bridge, timeoutMs = 60_000): Promise<ReadMessage[]> {
    const need = new Set(want);
    return waitFor(
      `${want.length} events in ${topicName}`,
      async () => {
        if (b !== undefined && b.child.exitCode !== null) throw new Error(`the bridge exited (${b.child.exitCode}):\n${b.logs()}`);
        const msgs = await readSoFar(broker.bootstrap, topicName);
        const have = new Set(ids(msgs));
        for (const id of need) if (!have.has(id)) return undefined;
        return msgs;
      },
      timeoutMs,
      300,
    );
  }

  let modSession: Session | undefined;
  async function mod(): Promise<Session> {
    return (modSession ??= await ozone.login(ozone.moderator.handle, ozone.moderator.password));
  }
  /** A comment event on a user's account: the cheapest event to make live. */
  async function comment(n: number): Promise<ModEventView> {
    const user = ozone.users[n % ozone.users.length]!;
    try {
      return await ozone.emit(await mod(), { $type: `${DEFS}modEventComment`, comment: `live ${n}` }, repoRef(user.did));
    } catch {
      // The test's own session may have been expired or revoked on purpose.
      modSession = undefined;
      return await ozone.emit(await mod(), { $type: `${DEFS}modEventComment`, comment: `live ${n}` }, repoRef(user.did));
    }
  }

  describe('a few hundred events of every kind', () => {
    let expected: ModEventView[];

    before(async () => {
      const session = await mod();
      // Every kind on each subject it applies to, in order per subject (a reverse takedown needs its takedown),
      // subjects in parallel. Left out: ageAssurancePurgeEvent, which deletes earlier events from the log.
      const kinds = eventKinds.filter((k) => k.name !== 'ageAssurancePurgeEvent');
      const subjects: { subject: Subject; type: 'account' | 'record' }[] = ozone.users.flatMap((u) => [
        { subject: repoRef(u.did), type: 'account' as const },
        ...u.posts.slice(0, 2).map((p) => ({ subject: strongRef(p), type: 'record' as const })),
      ]);
      await Promise.all(
        subjects.map(async ({ subject, type }) => {
          for (const k of kinds) if (k.subjects.includes(type)) await ozone.emit(session, k.event, subject);
        }),
      );
      // Reports from the users themselves (com.atproto.moderation.createReport through their PDS).
      for (const [i, u] of ozone.users.entries()) {
        const other = ozone.users[(i + 1) % ozone.users.length]!;
        const s = await ozone.login(u.handle, u.password);
        await ozone.report(s, strongRef(other.posts[2]!), 'com.atproto.moderation.defs#reasonRude', `report ${i}`);
        await ozone.report(s, repoRef(other.did), 'com.atproto.moderation.defs#reasonSpam');
      }
      // Several events of one millisecond, three times, each group straddling pages of 7.
      let all = await ozone.queryAll();
      for (const start of [30, 100, 171]) {
        const group = all.slice(start, start + 9);
        assert.equal(await ozone.setCreatedAt(group.map((e) => e.id), group[0]!.createdAt), 9);
      }
      expected = await ozone.queryAll();
      const perMs = new Map<string, number>();
      for (const e of expected) perMs.set(e.createdAt, (perMs.get(e.createdAt) ?? 0) + 1);
      assert.ok([...perMs.values()].filter((n) => n >= 9).length >= 3, 'three groups of at least 9 events share one millisecond');
      assert.ok(expected.length >= 250, `${expected.length} events`);
      const types = new Set(expected.map((e) => e.event.$type));
      for (const t of ['modEventReport', 'modEventLabel', 'modEventTakedown', 'modEventReverseTakedown', 'modEventComment', 'modEventAcknowledge', 'modEventEscalate', 'modEventTag', 'modEventMute']) {
        assert.ok(types.has(`${DEFS}${t}`), t);
      }
    });

    it('each lands exactly once, as Ozone returned it, in its order, keyed by subject DID; the cursor is the last one', async () => {
      const t = topic();
      const cursorFile = join(dir, `${t}.json`);
      const b = await bridge(t, ['--page-size', '7', '--settle-lag', '1s', '--cursor-file', cursorFile]);
      await waitForIds(t, expected.map((e) => e.id), b);
      // The cursor follows the last confirmed page; then a clean stop.
      await waitFor('the cursor at the last event', async () => {
        try {
          return JSON.parse(await readFile(cursorFile, 'utf8')).cursor === positionOf(expected.at(-1)!);
        } catch {
          return false;
        }
      });
      await stop(b);
      const msgs = await readTopic(broker.bootstrap, t);
      assert.equal(msgs.length, expected.length, 'exactly once: no event twice, none missing');
      const order = new Map(expected.map((e, i) => [e.id, i]));
      const byId = new Map(expected.map((e) => [e.id, e]));
      const lastIndex = new Map<number, number>();
      for (const m of msgs) {
        const e = byId.get(Number(header(m, 'id')));
        assert.ok(e, `event ${header(m, 'id')} is one of Ozone's`);
        assert.equal(m.value, JSON.stringify(e), 'the event view as Ozone returned it');
        assert.equal(m.key, keyOf(e));
        assert.equal(header(m, 'kind'), 'moderation');
        assert.equal(header(m, 'action'), e.event.$type);
        assert.equal(header(m, 'source'), 'ozone');
        if (e.subject.uri !== undefined) assert.equal(header(m, 'collection'), String(e.subject.uri).split('/')[3]);
        // Kafka orders within a partition: there, events follow Ozone's (createdAt, id) order.
        const i = order.get(e.id)!;
        assert.ok(i > (lastIndex.get(m.partition) ?? -1), `partition ${m.partition}: event ${e.id} after the one before it`);
        lastIndex.set(m.partition, i);
      }
      const saved = JSON.parse(await readFile(cursorFile, 'utf8'));
      assert.equal(saved.cursor, positionOf(expected.at(-1)!));
      assert.equal(saved.labelerDid, ozone.ozoneDid);

      // What the Go version's paging (createdAfter = last createdAt + 1 ms) would have skipped on this same log.
      const seen = new Set<number>();
      let createdAfter: string | undefined;
      for (;;) {
        const page = await ozone.queryEvents(await mod(), { sortDirection: 'asc', limit: 7, ...(createdAfter ? { createdAfter } : {}) });
        if (page.events.length === 0) break;
        for (const e of page.events) seen.add(e.id);
        createdAfter = new Date(Date.parse(page.events.at(-1)!.createdAt) + 1).toISOString();
      }
      const skippedByGo = expected.filter((e) => !seen.has(e.id)).length;
      assert.ok(skippedByGo > 0, 'the shared milliseconds make a createdAt+1ms reader skip events');
    });

    it('the Osprey envelope (action_name = $type), and resuming from the Go version\'s ozone-cursor.txt', async () => {
      const t = topic();
      const cwd = await mkdtemp(join(dir, 'go-'));
      // Where the Go version stopped: createdAt + 1 ms of the last event it sent, in RFC3339Nano.
      const stoppedAfter = expected[200]!;
      const goCursor = new Date(Date.parse(stoppedAfter.createdAt) + 1).toISOString();
      await writeFile(join(cwd, 'ozone-cursor.txt'), `${goCursor}\n`);
      const want = expected.filter((e) => e.createdAt >= goCursor);
      const b = await bridge(t, ['--osprey-compatible', '--cursor-file', join(cwd, 'ozone-cursor.json'), '--settle-lag', '1s']);
      await waitForIds(t, want.map((e) => e.id), b);
      await stop(b);
      const msgs = await readTopic(broker.bootstrap, t);
      assert.deepEqual(new Set(ids(msgs)), new Set(want.map((e) => e.id)), 'exactly the events at or after the Go cursor');
      assert.equal(msgs.length, want.length);
      const byId = new Map(expected.map((e) => [e.id, e]));
      for (const m of msgs) {
        const env = JSON.parse(m.value) as { data: { action_name: string; action_id: number; data: unknown; timestamp: string }; send_time: string };
        const e = byId.get(Number(header(m, 'id')))!;
        assert.equal(env.data.action_name, e.event.$type);
        assert.deepEqual(env.data.data, e);
        assert.equal(env.data.timestamp, e.createdAt);
        assert.match(m.value, /"action_id":[1-9]\d*,/, 'a snowflake, as a JSON integer');
        assert.match(env.send_time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      }
      assert.match(b.logs(), /resuming where the Go version stopped/);
      // Ours took over.
      assert.equal(JSON.parse(await readFile(join(cwd, 'ozone-cursor.json'), 'utf8')).cursor, positionOf(expected.at(-1)!));
    });
  });

  it('restarts mid-tail: SIGTERM repeats nothing, SIGKILL loses nothing and repeats only what was after the saved cursor', async () => {
    const t = topic();
    const cursorFile = join(dir, `${t}.json`);
    const args = ['--page-size', '5', '--cursor-file', cursorFile, '--start', 'now'];
    const t0 = Date.now();
    let b = await polling(await bridge(t, args));
    let n = 0;
    let emitting = true;
    const emitted: number[] = [];
    // Emits until told to stop (a count cap once ran out on a slow host before the third start).
    const emitter = (async () => {
      while (emitting) {
        emitted.push((await comment(n++)).id);
        await sleep(40);
      }
    })();
    await waitFor('30 live events in Kafka', async () => (await readSoFar(broker.bootstrap, t)).length >= 30, 120_000, 200).catch((err) => {
      throw new Error(`${err.message}; emitted ${emitted.length} in ${Date.now() - t0} ms; bridge log:\n${b.logs().slice(-3000)}`);
    });
    await stop(b);
    const afterTerm = ids(await readTopic(broker.bootstrap, t));
    assert.equal(new Set(afterTerm).size, afterTerm.length, 'no duplicates across a clean stop');

    b = await bridge(t, args);
    await waitFor('30 more', async () => (await readSoFar(broker.bootstrap, t)).length >= afterTerm.length + 30, 120_000, 200).catch((err) => {
      throw new Error(`${err.message}; emitted ${emitted.length} in ${Date.now() - t0} ms; bridge log:\n${b.logs().slice(-3000)}`);
    });
    b.child.kill('SIGKILL');
    await b.exited;
    const savedAtKill = JSON.parse(await readFile(cursorFile, 'utf8')) as { cursor: string };
    const [killMs, killId] = savedAtKill.cursor.split('::').map(Number) as [number, number];

    b = await bridge(t, args);
    await sleep(1500);
    emitting = false;
    await emitter;
    const all = await ozone.queryAll();
    const live = all.filter((e) => emitted.includes(e.id));
    assert.equal(live.length, emitted.length);
    await waitForIds(t, emitted, b, 120_000);
    await stop(b);

    const got = ids(await readTopic(broker.bootstrap, t));
    for (const id of emitted) assert.ok(got.includes(id), `event ${id} is in Kafka`);
    const counts = new Map<number, number>();
    for (const id of got) counts.set(id, (counts.get(id) ?? 0) + 1);
    const byId = new Map(all.map((e) => [e.id, e]));
    for (const [id, c] of counts) {
      if (c === 1) continue;
      assert.equal(c, 2, `event ${id} at most twice`);
      const e = byId.get(id)!;
      const ms = Date.parse(e.createdAt);
      assert.ok(ms > killMs || (ms === killMs && id > killId), `event ${id}, repeated, was after the cursor saved before the SIGKILL`);
      assert.ok(!afterTerm.includes(id), `event ${id} from before the clean stop is not repeated`);
    }
  });

  it('access tokens that expire mid-tail (three times), then a revoked session: refreshed, then a new login, without a gap', async () => {
    const t = topic();
    const b = await polling(await bridge(t, ['--start', 'now', '--cursor-file', join(dir, `${t}.json`)]));
    const emitted: number[] = [];
    for (let i = 0; i < 5; i++) emitted.push((await comment(1000 + i)).id);
    await waitForIds(t, emitted, b);
    // Three times, every access token given out so far expires (the PDS's token clock jumps 3 h ahead,
    // past their 2 h): the PDS answers ExpiredToken, and atkafka must refresh while events keep coming.
    try {
      for (let round = 1; round <= 3; round++) {
        await ozone.authClock(round * 3 * 3600_000);
        modSession = undefined;
        for (let i = 0; i < 8; i++) {
          emitted.push((await comment(1100 + round * 10 + i)).id);
          await sleep(250);
        }
        await waitForIds(t, emitted, b);
      }
      assert.ok((await sample(b, 'atkafka_ozone_sessions', { kind: 'refresh', status: 'ok' })) >= 3, 'refreshed at least once per round');
      assert.match(b.logs(), /access token expired: refreshing the session/);

      // Revoked, and the access token expires too: the refresh fails, and a new login takes over.
      const logins = await sample(b, 'atkafka_ozone_sessions', { kind: 'create', status: 'ok' });
      assert.ok((await ozone.revokeSessions(ozone.moderator.did)) >= 1);
      await ozone.authClock(4 * 3 * 3600_000);
      modSession = undefined;
      const until2 = Date.now() + 8000;
      for (let i = 0; Date.now() < until2; i++) {
        emitted.push((await comment(1200 + i)).id);
        await sleep(250);
      }
      await waitForIds(t, emitted, b);
      assert.ok((await sample(b, 'atkafka_ozone_sessions', { kind: 'create', status: 'ok' })) > logins, 'logged in again');
      assert.ok((await sample(b, 'atkafka_ozone_sessions', { kind: 'refresh', status: 'error' })) >= 1);
      assert.match(b.logs(), /session refresh refused: logging in again/);
    } finally {
      await ozone.authClock(0);
      modSession = undefined;
    }
    await stop(b);
    const got = ids(await readTopic(broker.bootstrap, t));
    assert.equal(got.length, new Set(got).size, 'no event twice');
    for (const id of emitted) assert.ok(got.includes(id), `event ${id}`);
    assert.ok(!b.logs().includes(ozone.moderator.password), 'the password is never logged');
  });

  it('refreshes before the access token expires (by its exp claim), so the PDS never has to say ExpiredToken', async () => {
    // From now on the PDS hands out access tokens whose exp is 5 min 5 s away (and honours them for 2 h):
    // atkafka must refresh on its own once inside its 5-minute margin.
    await ozone.authClock(-(2 * 3600_000 - 305_000));
    try {
      const t = topic();
      const b = await polling(await bridge(t, ['--start', 'now', '--cursor-file', '']));
      const emitted: number[] = [];
      await waitFor('a proactive refresh', async () => {
        emitted.push((await comment(1500 + emitted.length)).id);
        return (await sample(b, 'atkafka_ozone_sessions', { kind: 'refresh', status: 'ok' })) >= 1;
      }, 60_000, 500);
      await waitForIds(t, emitted, b);
      assert.match(b.logs(), /access token about to expire: refreshing the session/);
      assert.doesNotMatch(b.logs(), /access token expired/);
      assert.equal(await sample(b, 'atkafka_ozone_poll_errors'), 0, 'not one failed poll');
      await stop(b);
    } finally {
      await ozone.authClock(0);
      modSession = undefined;
    }
  });

  it('broker down for 10 s: the cursor does not move; everything lands after', async () => {
    const t = topic();
    const cursorFile = join(dir, `${t}.json`);
    const b = await polling(await bridge(t, ['--start', 'now', '--cursor-file', cursorFile]));
    const first: number[] = [];
    for (let i = 0; i < 5; i++) first.push((await comment(2000 + i)).id);
    await waitForIds(t, first, b);
    const lastFirst = (await ozone.queryAll()).find((e) => e.id === first.at(-1));
    await waitFor('the cursor at the first batch', async () => {
      try {
        return JSON.parse(await readFile(cursorFile, 'utf8')).cursor === positionOf(lastFirst!);
      } catch {
        return false;
      }
    });
    await broker.halt();
    const during: number[] = [];
    const until = Date.now() + 10_000;
    for (let i = 0; Date.now() < until; i++) {
      during.push((await comment(2100 + i)).id);
      await sleep(500);
      assert.equal(JSON.parse(await readFile(cursorFile, 'utf8')).cursor, positionOf(lastFirst!), 'the cursor stays while Kafka is down');
    }
    assert.equal(b.child.exitCode, null, 'still running');
    await broker.resume();
    await waitForIds(t, [...first, ...during], b, 90_000);
    const all = await ozone.queryAll();
    const last = all.find((e) => e.id === during.at(-1))!;
    await waitFor('the cursor past the outage', async () => JSON.parse(await readFile(cursorFile, 'utf8')).cursor === positionOf(last));
    await stop(b);
    const got = ids(await readTopic(broker.bootstrap, t));
    assert.equal(got.length, first.length + during.length, 'each once');
  });

  describe('the late-commit race', () => {
    /**
     * B is emitted first but "commits" 600 ms after C: it stays invisible (createdAt far in the future,
     * so no createdBefore bound reaches it), then appears with a createdAt 100 ms before C's, as an
     * event stamped early whose transaction committed late does.
     */
    async function lateCommit(t: string, b: Bridge): Promise<{ late: ModEventView; later: ModEventView }> {
      const session = await mod();
      // Frozen while B is made and hidden, so that no poll can see it in between.
      b.child.kill('SIGSTOP');
      let late: ModEventView;
      try {
        late = await ozone.emit(session, { $type: `${DEFS}modEventComment`, comment: 'stamped early, committed late' }, repoRef(ozone.users[0]!.did));
        await ozone.setCreatedAt([late.id], '2100-01-01T00:00:00.000Z');
      } finally {
        b.child.kill('SIGCONT');
      }
      const later = await ozone.emit(session, { $type: `${DEFS}modEventComment`, comment: 'committed first' }, repoRef(ozone.users[1]!.did));
      await sleep(600);
      const lateAt = new Date(Date.parse(later.createdAt) - 100).toISOString();
      await ozone.setCreatedAt([late.id], lateAt);
      await waitForIds(t, [later.id], b);
      return { late: { ...late, createdAt: lateAt }, later };
    }

    it('with --settle-lag 0 the late event is missed (the race is real)', async () => {
      const t = topic();
      const b = await bridge(t, ['--settle-lag', '0', '--poll-interval', '100ms', '--start', 'now', '--cursor-file', '']);
      await polling(b);
      const { late, later } = await lateCommit(t, b);
      // Long enough for any poll to have found it.
      await sleep(3000);
      const got = ids(await readTopic(broker.bootstrap, t));
      assert.ok(got.includes(later.id));
      assert.ok(!got.includes(late.id), 'missed: the cursor had passed its createdAt before it became visible');
      assert.match(b.logs(), /--settle-lag 0/);
      await stop(b);
    });

    it('with the default settle lag it lands, before the later event as Ozone orders them', async () => {
      const t = topic();
      const b = await bridge(t, ['--poll-interval', '100ms', '--start', 'now', '--cursor-file', '']);
      await polling(b);
      const { late, later } = await lateCommit(t, b);
      const msgs = await waitForIds(t, [late.id, later.id], b);
      const got = ids(msgs);
      assert.equal(got.length, 2);
      const all = await ozone.queryAll();
      assert.ok(all.findIndex((e) => e.id === late.id) < all.findIndex((e) => e.id === later.id), 'Ozone orders the late one first');
      await stop(b);
    });
  });

  describe('failures: clear logs, retries, no crash, nothing lost', () => {
    it('a wrong password (in a file): logged, retried, and picked up once the file is fixed', async () => {
      const t = topic();
      const pwFile = join(dir, `${t}.pw`);
      await writeFile(pwFile, 'not-the-password\n');
      const b = await bridge(t, ['--start', 'now', '--cursor-file', '', '--password-file', pwFile], { ATKAFKA_OZONE_PASSWORD: '' });
      await waitFor('auth errors counted', async () => (await sample(b, 'atkafka_ozone_poll_errors', { kind: 'auth' })) >= 2, 30_000, 200);
      assert.match(b.logs(), /the PDS refused the login of /);
      assert.match(b.logs(), /check --identifier, the password, and that the account is a moderator/);
      assert.equal(b.child.exitCode, null);
      const e = await comment(3000);
      await writeFile(pwFile, `${ozone.moderator.password}\n`);
      await waitForIds(t, [e.id], b);
      assert.match(b.logs(), /reading Ozone events again/);
      assert.ok(!b.logs().includes('not-the-password') && !b.logs().includes(ozone.moderator.password), 'no password in the logs');
      await stop(b);
    });

    it('an account that is not a moderator: an auth error that says so, retried', async () => {
      const t = topic();
      const b = await bridge(t, ['--identifier', ozone.nonModerator.handle, '--cursor-file', ''], { ATKAFKA_OZONE_PASSWORD: ozone.nonModerator.password });
      await waitFor('auth errors counted', async () => (await sample(b, 'atkafka_ozone_poll_errors', { kind: 'auth' })) >= 2, 30_000, 200);
      assert.match(b.logs(), /Ozone refuses this account/);
      assert.equal(b.child.exitCode, null);
      await stop(b);
    });

    it('Ozone down, then the PDS down, then rate limited (429 with ratelimit-reset): retried, then everything lands', async () => {
      const t = topic();
      const cursorFile = join(dir, `${t}.json`);
      const b = await polling(await bridge(t, ['--start', 'now', '--cursor-file', cursorFile]));
      const emitted: number[] = [];
      emitted.push((await comment(4000)).id);
      await waitForIds(t, emitted, b);

      await ozone.ozoneUp(false);
      await waitFor('ozone-down counted', async () => (await sample(b, 'atkafka_ozone_poll_errors', { kind: 'ozone-down' })) >= 2, 30_000, 200);
      await ozone.ozoneUp(true);
      emitted.push((await comment(4001)).id);
      await waitForIds(t, emitted, b);

      await ozone.pdsUp(false);
      await waitFor('pds-down counted', async () => (await sample(b, 'atkafka_ozone_poll_errors', { kind: 'pds-down' })) >= 2, 30_000, 200);
      await ozone.pdsUp(true);
      emitted.push((await comment(4002)).id);
      await waitForIds(t, emitted, b);

      await ozone.exhaustRateLimit(3000);
      await waitFor('rate-limited counted', async () => (await sample(b, 'atkafka_ozone_poll_errors', { kind: 'rate-limited' })) >= 1, 30_000, 200);
      emitted.push((await comment(4003)).id);
      await waitForIds(t, emitted, b, 60_000);

      assert.equal(b.child.exitCode, null);
      const logs = b.logs();
      assert.match(logs, /cannot read Ozone events; retrying, the cursor stays where it is/);
      assert.match(logs, /rate limited by the PDS; waiting for its reset/);
      await stop(b);
      const got = ids(await readTopic(broker.bootstrap, t));
      assert.deepEqual(got.sort((x, y) => x - y), [...emitted].sort((x, y) => x - y), 'each exactly once');
    });
  });
});
