// docs/learn-kafka.md, run as a reader runs it: every ```sh block, in order, in one bash session started in the
// repository's root, with real processes (the project's Kafka broker, Debian's redis-server, the real CLI, the
// Wikimedia stand-in, the replay relay). Nothing is mocked. Each block must be annotated with the HTML comment
// just before it:
//
//   <!-- run -->                          run it; any failing command fails the test (the session has `set -e`)
//   <!-- run: expect "TEXT" -->           ... and its output must contain TEXT ('TEXT' too; several allowed)
//   <!-- run: check NAME -->              ... then this file's check NAME looks at Kafka, Redis and the processes
//
// A block without one, a command block in another language, an unknown check, or a check the doc never names
// fails the test. Only the ports are changed: the tutorial's fixed ones (9092, 6379, ...) become free ones, so
// this never collides with a reader's Kafka or with other tests; everything else runs verbatim.
// LEARN_KAFKA_VERBOSE=1 prints what each block printed.
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';

import { createClient } from 'redis';

import { freePort, metricValue, waitFor } from '../support/bridge.ts';
import { corpusFrames, expectedMessages } from '../support/corpus.ts';
import { readTopic, type ReadMessage } from '../support/kafka-read.ts';
import { loadWikimediaFixture } from '../support/wikimedia-server.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DOC = join(ROOT, 'docs/learn-kafka.md');
/** The tutorial's fixed ports: Kafka, Redis, the Wikimedia stand-in, the replay relay, the two producers' metrics. */
const PORTS = [9092, 6379, 8092, 8093, 6009, 6010] as const;
const BLOCK_TIMEOUT_MS = 170_000;
const run = promisify(execFile);

// ---------------------------------------------------------------- the doc

interface Block {
  /** 1-based line of the opening fence */
  line: number;
  code: string;
  expect: string[];
  check?: string;
}

const COMMAND_LANGS = new Set(['sh', 'bash', 'shell', 'zsh', 'console', 'shell-session', '']);

function parseDoc(md: string): Block[] {
  const lines = md.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    let end = i + 1;
    while (end < lines.length && !/^```\s*$/.test(lines[end]!)) end++;
    assert.ok(end < lines.length, `docs/learn-kafka.md:${i + 1}: a code block that never closes`);
    const lang = open[1]!;
    const code = lines.slice(i + 1, end).join('\n');
    if (COMMAND_LANGS.has(lang)) {
      assert.equal(lang, 'sh', `docs/learn-kafka.md:${i + 1}: command blocks are \`\`\`sh (output examples: \`\`\`text)`);
      let a = i - 1;
      while (a >= 0 && lines[a]!.trim() === '') a--;
      const note = /^<!--\s*run(?::\s*(.*?))?\s*-->$/.exec(lines[a]?.trim() ?? '');
      assert.ok(note, `docs/learn-kafka.md:${i + 1}: a \`\`\`sh block without a <!-- run ... --> annotation just before it; every command is run`);
      blocks.push({ line: i + 1, code, ...parseAnnotation(note[1] ?? '', i + 1) });
    }
    i = end;
  }
  return blocks;
}

function parseAnnotation(text: string, line: number): { expect: string[]; check?: string } {
  const expect: string[] = [];
  let check: string | undefined;
  const token = /\s*(?:expect\s+(?:"([^"]*)"|'([^']*)')|check\s+([\w-]+))/y;
  let at = 0;
  while (at < text.length) {
    token.lastIndex = at;
    const m = token.exec(text);
    assert.ok(m, `docs/learn-kafka.md:${line}: cannot read the annotation at ${JSON.stringify(text.slice(at))}`);
    if (m[3] !== undefined) {
      assert.equal(check, undefined, `docs/learn-kafka.md:${line}: one check per block`);
      check = m[3];
    } else expect.push(m[1] ?? m[2]!);
    at = token.lastIndex;
    while (text[at] === ' ') at++;
  }
  return check === undefined ? { expect } : { expect, check };
}

/** The tutorial's port numbers, wherever they stand alone (127.0.0.1:9092, -p 6379, --port 8092). */
function rewritePorts(text: string, ports: Map<number, number>): string {
  return text.replace(/(?<![\d.])(\d{4})(?![\d])/g, (s) => String(ports.get(Number(s)) ?? s));
}

// ---------------------------------------------------------------- the reader's terminal

/**
 * One bash, fed one block at a time: variables, functions and `$!` carry over from block to block as in a
 * terminal. Its own process group, which holds everything the doc starts in the background (the JVM gets its
 * own from broker.ts, and dies with it).
 */
class Session {
  readonly child: ChildProcess;
  readonly dir: string;
  #out = '';
  #n = 0;
  #exit: string | undefined;

  constructor(dir: string, env: NodeJS.ProcessEnv) {
    this.dir = dir;
    this.child = spawn('bash', ['--noprofile', '--norc'], { cwd: ROOT, env, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d: Buffer) => (this.#out += d.toString()));
    this.child.stderr!.on('data', (d: Buffer) => (this.#out += d.toString()));
    this.child.on('exit', (code, signal) => (this.#exit = String(code ?? signal)));
    // One stream in order, and the first failing command ends the session (and the test).
    this.child.stdin!.write('exec 2>&1\nset -e\n');
  }

  get alive(): boolean {
    return this.#exit === undefined;
  }

  /** Runs a script as if typed in (it reads nothing from stdin); resolves with what it printed. */
  async run(script: string, timeoutMs: number): Promise<string> {
    const n = ++this.#n;
    const file = join(this.dir, `block-${n}.sh`);
    writeFileSync(file, `${script}\n`);
    const mark = `@@ block ${n} done @@`;
    const from = this.#out.length;
    this.child.stdin!.write(`source ${file} </dev/null\necho '${mark}'\n`);
    const output = () => this.#out.slice(from).replace(`${mark}\n`, '');
    try {
      await waitFor(`block ${n}`, async () => this.#out.includes(mark, from) || !this.alive, timeoutMs, 50);
    } catch {
      throw new Error(`still running after ${timeoutMs / 1000} s; it printed:\n${output()}`);
    }
    if (!this.#out.includes(mark, from)) throw new Error(`a command failed (the shell exited with ${this.#exit}); it printed:\n${output()}`);
    return output();
  }

  /** The value of a shell variable (not a doc command: for the checks). */
  async variable(name: string): Promise<string> {
    return (await this.run(`printf '%s\\n' "$${name}"`, 10_000)).trim();
  }

  /** Pids in the session's process group, its bash aside. */
  members(): number[] {
    const pgid = this.child.pid!;
    try {
      return execFileSync('pgrep', ['-g', String(pgid)], { encoding: 'utf8' })
        .split('\n')
        .filter(Boolean)
        .map(Number)
        .filter((p) => p !== pgid);
    } catch {
      return [];
    }
  }
}

/** The broker's JVM, if this pid still is one (a pid can be reused once it is gone). */
function isKafkaJvm(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('kafka.Kafka');
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- what the checks read

/** partitions a stats member holds now, from the last assignment line of its (pretty) log */
function heldBy(log: string): number[] | undefined {
  const lines = log.split('\n').filter((l) => /partitions (assigned|revoked) /.test(l));
  const now = /\bnow=\[([\d,]*)\]/.exec(lines.at(-1) ?? '');
  return now ? now[1]!.split(',').filter(Boolean).map(Number) : undefined;
}

const header = (m: ReadMessage, name: string) => m.headers.find(([k]) => k === name)?.[1];
const wikimediaId = (m: ReadMessage) => {
  const meta = (JSON.parse(m.value) as { meta: { topic: string; partition: number; offset: number } }).meta;
  return `${meta.topic}/${meta.partition}/${meta.offset}`;
};

/**
 * The first n messages of a topic that is being written (kcat -e, as readTopic reads, may never see the end of
 * a partition that keeps growing).
 */
async function firstMessages(bootstrap: string, topic: string, n: number): Promise<ReadMessage[]> {
  const { stdout } = await run('kcat', ['-b', bootstrap, '-t', topic, '-C', '-o', 'beginning', '-c', String(n), '-q', '-J'], { maxBuffer: 1 << 28, timeout: 60_000 });
  return stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const m = JSON.parse(l) as { partition: number; offset: number; key: string | null; payload: string | null; headers?: string[] };
      const headers: [string, string][] = [];
      for (let i = 0; m.headers !== undefined && i + 1 < m.headers.length; i += 2) headers.push([m.headers[i]!, m.headers[i + 1]!]);
      return { partition: m.partition, offset: m.offset, key: m.key ?? '', value: m.payload ?? '', headers };
    });
}

/** Messages in a topic now: the sum of its partitions' end offsets (nothing is deleted in this lesson). */
async function topicSize(bootstrap: string, topic: string, partitions: number): Promise<number> {
  const args = ['-b', bootstrap, '-Q'];
  for (let p = 0; p < partitions; p++) args.push('-t', `${topic}:${p}:-1`);
  const { stdout } = await run('kcat', args, { timeout: 30_000 });
  const ends = [...stdout.matchAll(/\[(\d+)\] offset (\d+)/g)];
  assert.equal(ends.length, partitions, stdout);
  return ends.reduce((a, m) => a + Number(m[2]), 0);
}

// ---------------------------------------------------------------- the test

describe('docs/learn-kafka.md', { timeout: 300_000 }, () => {
  const md = readFileSync(DOC, 'utf8');
  const blocks = parseDoc(md);
  const work = mkdtempSync(join(tmpdir(), 'atkafka-learn-doc-'));
  let session: Session | undefined;
  let db: ReturnType<typeof createClient> | undefined;
  let brokerPid: number | undefined;
  /** $LEARN, the doc's scratch folder, once it is made */
  let learn = '';

  after(async () => {
    await db?.close().catch(() => {});
    if (brokerPid === undefined && learn !== '') {
      let env = '';
      try { env = readFileSync(join(learn, 'kafka.env'), 'utf8'); } catch { /* no broker yet */ }
      const pid = /KAFKA_BROKER_PID=(\d+)/.exec(env);
      if (pid) brokerPid = Number(pid[1]);
    }
    if (session) {
      // A broker frozen by a failed run would hold its SIGTERM until SIGCONT.
      if (brokerPid !== undefined && isKafkaJvm(brokerPid)) process.kill(brokerPid, 'SIGCONT');
      const pgid = session.child.pid!;
      const gone = () => session!.members().length === 0 && !session!.alive;
      if (!gone()) {
        try { process.kill(-pgid, 'SIGTERM'); } catch { /* gone */ }
        await waitFor('the session\'s processes to stop', async () => gone(), 20_000, 100).catch(() => {});
        try { process.kill(-pgid, 'SIGKILL'); } catch { /* gone */ }
      }
      // broker.ts takes its JVM along (parent-death signal); make sure of it.
      if (brokerPid !== undefined && isKafkaJvm(brokerPid)) process.kill(brokerPid, 'SIGKILL');
    }
    rmSync(work, { recursive: true, force: true });
  });

  it('every command runs as written, and does what the text says', async () => {
    // Every block is annotated (parseDoc refuses the others), and there is something to run.
    assert.ok(blocks.length >= 15, `only ${blocks.length} command blocks found`);
    const commands = blocks.map((b) => b.code).join('\n');
    for (const p of PORTS) assert.match(commands, new RegExp(`(?<![\\d.])${p}(?!\\d)`), `the doc uses port ${p} (else drop it from PORTS)`);

    const ports = new Map<number, number>();
    for (const p of PORTS) {
      let q = await freePort();
      while ([...ports.values()].includes(q)) q = await freePort();
      ports.set(p, q);
    }
    const bootstrap = `127.0.0.1:${ports.get(9092)}`;
    const metricsUrl = (p: 6009 | 6010, path = '/metrics') => `http://127.0.0.1:${ports.get(p)}${path}`;

    const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: work };
    for (const k of Object.keys(env)) {
      if (k.startsWith('ATKAFKA_') || k.startsWith('NODE_TEST') || ['DEBUG', 'LOG_LEVEL', 'METRICS_LISTEN_ADDRESS', 'KAFKA_BOOTSTRAP_SERVERS', 'KAFKA_BROKER_PID', 'LEARN'].includes(k)) delete env[k];
    }
    const shell = (session = new Session(mkdtempSync(join(work, 'blocks-')), env));

    const file = (name: string) => {
      try {
        return readFileSync(join(learn, name), 'utf8');
      } catch {
        return '';
      }
    };
    const redis = async () => {
      if (!db) {
        db = createClient({ url: `redis://127.0.0.1:${ports.get(6379)}`, socket: { reconnectStrategy: false } });
        // The doc's last section stops this Redis.
        db.on('error', () => {});
        await db.connect();
      }
      return db;
    };
    const totals = async (group: string, topic: string) => Number((await (await redis()).hGet(`atkafka:stats:${group}:${topic}:totals`, 'events')) ?? 0);
    const metrics = async (p: 6009 | 6010) => (await fetch(metricsUrl(p))).text();

    let topicBeforeReplay = 0;
    const checks: Record<string, { before?: () => Promise<void>; after: (output: string) => Promise<void> }> = {
      // Both producers' messages are in Kafka, as each source writes them.
      producers: {
        after: async () => {
          // Confirmed by Kafka first: kcat can wait for ever on a topic that does not exist yet.
          await waitFor('both producers\' first messages confirmed', async () => {
            const [w, b] = await Promise.all([metrics(6009), metrics(6010)]);
            return metricValue(w, 'atkafka_produced_events', { status: 'ok' }) >= 144 && metricValue(b, 'atkafka_produced_events', { status: 'ok' }) > 0;
          }, 60_000, 200);
          const [wiki, bsky] = await Promise.all([firstMessages(bootstrap, 'wikimedia', 144), firstMessages(bootstrap, 'bluesky', 100)]);
          assert.ok(wiki.every((m) => header(m, 'source') === 'wikimedia' && m.key === (JSON.parse(m.value) as { wiki: string }).wiki));
          assert.ok(bsky.every((m) => header(m, 'source') === 'relay' && m.key.startsWith('did:')));
          assert.deepEqual(new Set(wiki.map((m) => m.partition)).size > 1, true, 'wikimedia spread over partitions');
        },
      },
      // The two members share the six partitions.
      split: {
        after: async () => {
          await waitFor('A and B holding three partitions each, all six between them', async () => {
            const a = heldBy(file('consumer-a.log'));
            const b = heldBy(file('consumer-b.log'));
            return a !== undefined && b !== undefined && a.length > 0 && b.length > 0 && [...a, ...b].sort().join() === '0,1,2,3,4,5';
          }, 60_000, 100);
        },
      },
      // B stopped cleanly; A holds everything.
      rebalance: {
        after: async () => {
          assert.deepEqual(heldBy(file('consumer-a.log')), [0, 1, 2, 3, 4, 5]);
          assert.deepEqual(heldBy(file('consumer-b.log')), []);
          assert.match(file('consumer-b.log'), /INFO {2}stopped {2}counted=\d+ skipped=\d+/);
          assert.match(file('consumer-b.txt'), /this instance: partitions [\d,-]+, counted [1-9]\d*/, 'B counted its share');
        },
      },
      // A new group counts the whole topic (at least what it had when the group started) on its own keys.
      replay: {
        before: async () => {
          topicBeforeReplay = await topicSize(bootstrap, 'wikimedia', 6);
        },
        after: async () => {
          const counted = await totals('replay', 'wikimedia');
          assert.ok(counted >= topicBeforeReplay, `the replay group counted ${counted}, the topic had ${topicBeforeReplay} when it started`);
          assert.equal(Object.keys(await (await redis()).hGetAll('atkafka:stats:replay:wikimedia:offsets')).length, 6);
        },
      },
      // The broker frozen: both producers paused with --max-in-flight waiting, reported everywhere.
      paused: {
        after: async () => {
          for (const p of [6009, 6010] as const) {
            const text = await metrics(p);
            assert.equal(metricValue(text, 'atkafka_backpressure_paused'), 1, `producer on ${p} paused`);
            assert.ok(metricValue(text, 'atkafka_kafka_in_flight') >= 100, `producer on ${p}: ${metricValue(text, 'atkafka_kafka_in_flight')} in flight`);
            const status = (await (await fetch(metricsUrl(p, '/status.json'))).json()) as { gauges: { backpressurePaused: boolean; inFlightMessages: number } };
            assert.equal(status.gauges.backpressurePaused, true, `/status.json of ${p}`);
            const page = await fetch(metricsUrl(p, '/status'));
            assert.equal(page.status, 200);
            assert.match(await page.text(), /<html/i);
          }
          const ready = await fetch(metricsUrl(6009, '/readyz'));
          assert.equal(ready.status, 503);
          assert.deepEqual({ ...((await ready.json()) as object), lastEventId: undefined, inFlight: undefined }, {
            ready: false, upstreamConnected: true, kafkaReachable: false, connected: true, paused: true, lastEventId: undefined, inFlight: undefined,
          });
        },
      },
      resumed: {
        after: async () => {
          for (const p of [6009, 6010] as const) {
            await waitFor(`producer on ${p} reaching Kafka again`, async () => metricValue(await metrics(p), 'atkafka_kafka_reachable') === 1, 60_000, 200);
          }
        },
      },
      // The stand-in served N events; exactly those N are in Kafka, each once, and both groups counted N.
      'nothing-lost': {
        after: async (output) => {
          const m = /stopped after serving (\d+) events \(offsets (\d+)\.\.(\d+)\)\n/.exec(output);
          assert.ok(m, `the stand-in's last line, with nothing left unsent:\n${output}`);
          const [served, last] = [Number(m[1]), Number(m[3])];
          // The fixture with its real offsets, then the live events, numbered on from its last one.
          const fixture = loadWikimediaFixture().map((e) => `${e.meta!.topic}/${e.meta!.partition}/${e.meta!.offset}`);
          const fixtureLast = Math.max(...loadWikimediaFixture().map((e) => e.meta!.offset!));
          const want = new Set(fixture);
          for (let o = fixtureLast + 1; o <= last; o++) want.add(`eqiad.mediawiki.recentchange/0/${o}`);
          assert.equal(want.size, served, 'the stand-in served the fixture and then consecutive offsets');
          assert.ok(served > 144 + 100, `live events served during the lesson (${served})`);
          const got = (await readTopic(bootstrap, 'wikimedia', 60_000)).map(wikimediaId);
          assert.equal(got.length, served, 'as many messages as events served');
          assert.deepEqual(new Set(got), want, 'every event served, each once');
          assert.match(output, new RegExp(`\\n${served} events, `), 'the group `check` counted them all');
          assert.equal(await totals('check', 'wikimedia'), served);
          await waitFor(`the group learn (consumer A alone) at ${served}`, async () => (await totals('learn', 'wikimedia')) === served, 60_000, 200);
          const byType = await (await redis()).hGetAll('atkafka:stats:learn:wikimedia:by-type');
          assert.equal(Object.values(byType).reduce((a, v) => a + Number(v), 0), served, 'every count exact, not just the total');
          const cursor = JSON.parse(file('wikimedia-cursor.json')) as { lastEventId: string };
          const position = (JSON.parse(cursor.lastEventId) as { topic: string; offset: number }[]).find((e) => e.topic === 'eqiad.mediawiki.recentchange');
          assert.equal(position?.offset, last + 1, 'the producer\'s cursor: after the last event');
          // Before the doc stops Redis.
          await db?.close();
          db = undefined;
        },
      },
      // Bluesky: every event of the looped capture up to the saved cursor is in Kafka, each once.
      'relay-cursor': {
        after: async () => {
          const cursor = (JSON.parse(file('bluesky-cursor.json')) as { seq: number }).seq;
          const frames = corpusFrames();
          const perFrame = new Map<number, string[]>();
          for (const m of expectedMessages(frames)) perFrame.set(m.seq, [...(perFrame.get(m.seq) ?? []), m.key]);
          const seqs = [...perFrame.keys()];
          const first = Math.min(...seqs);
          const span = Math.max(...seqs) - first + 1;
          // The replay starts at the capture's first event (no cursor) and numbers each pass on: seq + pass * span.
          const want: string[] = [];
          for (let seq = first; seq <= cursor; seq++) for (const key of perFrame.get(first + ((seq - first) % span)) ?? []) want.push(`${seq} ${key}`);
          const got = (await readTopic(bootstrap, 'bluesky', 60_000)).map((m) => `${header(m, 'seq')} ${m.key}`);
          assert.ok(cursor > first + span, `more than one pass of the capture (cursor ${cursor})`);
          assert.deepEqual(got.sort(), want.sort());
        },
      },
    };
    const named = blocks.flatMap((b) => (b.check ? [b.check] : []));
    for (const c of named) assert.ok(c in checks, `the doc names check ${c}, which this test does not have`);
    assert.deepEqual([...named].sort(), Object.keys(checks).sort(), 'every check named once in the doc');

    for (const [i, b] of blocks.entries()) {
      const where = `docs/learn-kafka.md:${b.line} (block ${i + 1} of ${blocks.length})`;
      const check = b.check === undefined ? undefined : checks[b.check]!;
      const t0 = Date.now();
      progress(`${where}: ${b.code.split('\n').find((l) => l.trim() !== '' && !l.trim().startsWith('#'))}`);
      await check?.before?.();
      let output: string;
      try {
        output = await shell.run(rewritePorts(b.code, ports), BLOCK_TIMEOUT_MS);
      } catch (err) {
        throw new Error(`${where}: ${(err as Error).message}${logs(learn)}`);
      }
      if (process.env.LEARN_KAFKA_VERBOSE) progress(`output:\n${output}`);
      for (const e of b.expect) assert.ok(output.includes(rewritePorts(e, ports)), `${where}: no ${JSON.stringify(e)} in its output:\n${output}`);
      if (learn === '') {
        learn = await shell.variable('LEARN');
        if (learn !== '') assert.ok(learn.startsWith(work), `LEARN=${learn} is under the test's TMPDIR`);
      }
      if (brokerPid === undefined && learn !== '') {
        const pid = /KAFKA_BROKER_PID=(\d+)/.exec(file('kafka.env'));
        if (pid) brokerPid = Number(pid[1]);
      }
      try {
        await check?.after(output);
      } catch (err) {
        throw new Error(`${where}, check ${b.check}: ${(err as Error).message}${logs(learn)}`, { cause: err });
      }
      progress(`  done in ${((Date.now() - t0) / 1000).toFixed(1)} s${b.check ? `, check ${b.check} passed` : ''}`);
    }

    // The last section stopped everything it started, and removed its folder.
    await waitFor('every process the doc started to be gone', async () => shell.members().length === 0, 30_000, 100);
    assert.ok(brokerPid !== undefined && !isKafkaJvm(brokerPid), 'the broker\'s JVM is gone');
    assert.equal(existsSync(learn), false, 'the scratch folder is removed');
    shell.child.stdin!.end('exit 0\n');
  });

  function progress(line: string): void {
    process.stderr.write(`learn-kafka: ${line}\n`);
  }

  /** The tails of the doc's log files, for a failure message. */
  function logs(learn: string): string {
    if (learn === '' || !existsSync(learn)) return '';
    let out = '';
    for (const f of readdirSync(learn).sort()) {
      if (!/\.(log|txt|env)$/.test(f)) continue;
      const text = readFileSync(join(learn, f), 'utf8').trimEnd().split('\n').slice(-15).join('\n');
      out += `\n--- ${f} (last lines)\n${text}`;
    }
    return out;
  }
});
