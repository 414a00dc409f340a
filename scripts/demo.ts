// The demo behind `npm run demo` (see scripts/demo.sh).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { launchBroker } from './kafka/local-broker.ts';

const SECONDS = Number(process.env.DEMO_SECONDS ?? 30);
const RATE = Number(process.env.DEMO_RATE ?? 100);
const BIN = fileURLToPath(new URL('../bin/atkafka.js', import.meta.url));
const CORPUS = fileURLToPath(new URL('../test/fixtures/corpus/frames.bin.zst', import.meta.url));
const TOPIC = 'atproto-events';
const say = (s: string) => process.stderr.write(`demo: ${s}\n`);

const dir = await mkdtemp(join(tmpdir(), 'atkafka-demo-'));
const cursorFile = join(dir, 'cursor.json');
const children: ChildProcess[] = [];

say('starting a local Kafka broker (KRaft, single node)...');
const broker = await launchBroker();
say(`Kafka at ${broker.bootstrap}`);

const relay = spawn(process.execPath, [BIN, 'replay', '--file', CORPUS, '--loop', '--rate', String(RATE)], { stdio: ['ignore', 'pipe', 'ignore'] });
children.push(relay);
const relayUrl = await new Promise<string>((resolve) => relay.stdout!.once('data', (d: Buffer) => resolve(d.toString().trim())));
say(`replay relay at ${relayUrl}: the real relay capture of 2026-07-04, looped, ${RATE} events/s`);

const bridgeArgs = ['firehose', 'relay', '--bootstrap-servers', broker.bootstrap, '--output-topic', TOPIC, '--relay-host', relayUrl, '--cursor-file', cursorFile, '--metrics-listen-address', '127.0.0.1:0'];
const plc = process.env.ATKAFKA_PLC_HOST;
if (plc) {
  // Enrichment against the local PLC (demo.sh); the capture's handles are checked against it too,
  // standing in for their web servers on the internet, and DNS goes nowhere (no network needed).
  bridgeArgs.push('--plc-host', plc, '--handle-well-known-url', `${plc}/handle/{handle}/.well-known/atproto-did`, '--allow-private-identity-hosts', '--dns-servers', '127.0.0.1:9');
}
say(`running: atkafka ${bridgeArgs.join(' ')}`);
const { ATKAFKA_PLC_HOST: _, ...bridgeEnv } = process.env;
const bridge = spawn(process.execPath, [BIN, ...bridgeArgs], { stdio: ['ignore', 'inherit', 'pipe'], env: bridgeEnv });
children.push(bridge);
let bridgeLog = '';
bridge.stderr!.on('data', (d: Buffer) => (bridgeLog += d.toString()));

// The live view: an independent Kafka client (kcat) tailing the topic.
await new Promise((r) => setTimeout(r, 1500));
say(`live view of topic ${TOPIC} (partition  key  handle  PDS  event):`);
const view = spawn('kcat', ['-b', broker.bootstrap, '-t', TOPIC, '-C', '-q', '-J', '-o', 'beginning'], { stdio: ['ignore', 'pipe', 'ignore'] });
children.push(view);
let seen = 0;
createInterface({ input: view.stdout! }).on('line', (line) => {
  const m = JSON.parse(line) as { partition: number; key: string; payload: string };
  const v = JSON.parse(m.payload);
  seen++;
  let what: string;
  // Who: the verified handle and PDS from eventMetadata (null when the identity could not be resolved in time).
  const meta = v.eventMetadata as { handle?: string; pdsHost?: string } | null;
  const who = meta ? `${(meta.handle ?? '').slice(0, 28).padEnd(28)} ${(meta.pdsHost ?? '').replace(/^https?:\/\//, '').slice(0, 34).padEnd(34)}` : `${'(no metadata)'.padEnd(28)} ${''.padEnd(34)}`;
  if (v.operation) {
    const text = typeof v.operation.record?.text === 'string' ? `  "${v.operation.record.text.replace(/\s+/g, ' ').slice(0, 50)}"` : '';
    what = `${v.operation.action.padEnd(6)} ${v.operation.collection}/${v.operation.rkey}${text}`;
  } else if (v.identity) what = `identity handle=${v.identity.handle || '(none)'}`;
  else if (v.account) what = `account active=${v.account.active}${v.account.status ? ` status=${v.account.status}` : ''}`;
  else if (v.sync) what = `sync rev=${v.sync.rev}`;
  else what = `info ${v.info?.name}`;
  process.stdout.write(`${String(m.partition).padStart(3)}  ${m.key.padEnd(32)}  ${who}  ${what}\n`);
});

const stop = Promise.withResolvers<void>();
process.once('SIGINT', () => stop.resolve());
process.once('SIGTERM', () => stop.resolve());
if (SECONDS > 0) setTimeout(() => stop.resolve(), SECONDS * 1000);
bridge.once('exit', (code) => {
  if (code !== 0) {
    say(`the bridge exited with ${code}:\n${bridgeLog}`);
    stop.resolve();
  }
});
await stop.promise;
view.kill('SIGTERM');

say('stopping the bridge (SIGTERM: stop reading, drain Kafka, save the cursor)...');
const exited = new Promise<number | null>((r) => bridge.once('exit', r));
bridge.kill('SIGTERM');
const code = bridge.exitCode ?? (await exited);
await new Promise((r) => setTimeout(r, 1000));
for (const c of children) c.kill('SIGTERM');
const cursor = await readFile(cursorFile, 'utf8').catch(() => '(none)');
say(`bridge exit code ${code}; ${seen} messages shown; cursor file: ${cursor.trim()}`);
await broker.stop();
await rm(dir, { recursive: true, force: true });
process.exit(code === 0 ? 0 : 1);
