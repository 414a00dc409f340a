// `atkafka stats` as a user runs it, without Kafka or Redis: --help, and every bad flag ends with exit 2,
// one line naming what to fix, no stack trace, before anything connects.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';

import { statsFlags } from '../../src/cli/run-stats.ts';

const BIN = fileURLToPath(new URL('../../bin/atkafka.js', import.meta.url));
const SECRET = 'hunter2-s3cret';

function clean(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ATKAFKA_') && k !== 'DEBUG' && k !== 'LOG_LEVEL' && !k.startsWith('NODE_TEST')) env[k] = v;
  return env;
}

function stats(args: string[], env: Record<string, string> = {}) {
  // Nothing listens on port 1: a case that got as far as connecting would hang until the timeout.
  const r = spawnSync(process.execPath, [BIN, 'stats', ...args], { env: { ...clean(), ...env }, encoding: 'utf8', timeout: 15_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const BASE = ['--bootstrap-servers', '127.0.0.1:1', '--redis-url', 'redis://127.0.0.1:1'];

describe('atkafka stats: configuration', () => {
  test('--help: every flag with its env var and default, the Kafka and log flags, no metrics listener', () => {
    const r = stats(['--help']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^Usage: atkafka stats --topic T \[--group G\] \[flags\]\n/);
    for (const f of statsFlags) {
      const meta = f.required ? 'required' : f.default !== undefined ? `default ${f.default}` : undefined;
      const want = `      ${f.help} [env ${f.env.join(', ')}${meta === undefined ? '' : `; ${meta}`}]`;
      assert.ok(r.stdout.includes(`  --${f.name}`) && r.stdout.includes(want), `--${f.name}: ${want}`);
    }
    assert.ok(r.stdout.includes('  --bootstrap-servers a,b,...\n      Kafka bootstrap servers, host:port,... [env ATKAFKA_BOOTSTRAP_SERVERS; required]\n'));
    assert.ok(r.stdout.includes('  --sasl-password VALUE\n'));
    assert.ok(r.stdout.includes('  --log-format VALUE\n'));
    assert.ok(!r.stdout.includes('--metrics-listen-address'));
    assert.ok(!r.stdout.includes('--output-topic'));
  });

  const cases: [string, string[], Record<string, string>, RegExp][] = [
    ['no topic', [...BASE], {}, /^atkafka: missing required flag --topic \(or env ATKAFKA_STATS_TOPIC\)$/],
    ['no brokers', ['--topic', 't'], {}, /^atkafka: missing required flag --bootstrap-servers \(or env ATKAFKA_BOOTSTRAP_SERVERS\)$/],
    ['a bad topic name', [...BASE, '--topic', 'a topic'], {}, /^atkafka: --topic: "a topic" is not a valid Kafka topic name/],
    ['a group that would break the key names', [...BASE, '--topic', 't', '--group', 'a:b'], {}, /^atkafka: --group: "a:b" must be 1-249 of a-z A-Z 0-9 \. _ - \(it is part of the Redis key names\)$/],
    ['not a Redis URL', [...BASE, '--topic', 't', '--redis-url', 'localhost:6379'], {}, /^atkafka: --redis-url: "localhost:6379" must start with redis:\/\/ or rediss:\/\//],
    ['an http URL, its password not repeated', [...BASE, '--topic', 't', '--redis-url', `http://u:${SECRET}@h:6379`], {}, /^atkafka: --redis-url: "http:\/\/\*\*\*:\*\*\*@h:6379\/?" must start with redis:\/\//],
    ['a database that is not a number', [...BASE, '--topic', 't', '--redis-url', 'redis://h:6379/counts'], {}, /^atkafka: --redis-url: "redis:\/\/h:6379\/counts": the path must be a database number/],
    ['a bad broker address', ['--topic', 't', '--bootstrap-servers', 'kafka'], {}, /^atkafka: --bootstrap-servers: "kafka" is not host:port$/],
    ['an interval too short to read', [...BASE, '--topic', 't', '--interval', '10ms'], {}, /^atkafka: --interval must be 0 \(only the final table\) or at least 100ms$/],
    ['--once from the end', [...BASE, '--topic', 't', '--once', '--from-beginning=false'], {}, /^atkafka: --once counts up to the end of the topic; with --from-beginning=false a new group starts there and counts nothing$/],
    ['--top 0', [...BASE, '--topic', 't', '--top', '0'], {}, /^atkafka: --top must be between 1 and 1000$/],
    ['--batch-size 0', [...BASE, '--topic', 't', '--batch-size', '0'], {}, /^atkafka: --batch-size must be between 1 and 100000$/],
    ['an empty interval from the env', [...BASE, '--topic', 't'], { ATKAFKA_STATS_INTERVAL: '' }, /^atkafka: ATKAFKA_STATS_INTERVAL is set but empty; unset it to use the default \(1s\) or give a value$/],
    ['a misspelt env var', [...BASE, '--topic', 't'], { ATKAFKA_STATS_TOPICS: 'x' }, /^atkafka: unknown environment variable ATKAFKA_STATS_TOPICS$/],
    ['a producer flag', [...BASE, '--topic', 't', '--output-topic', 'x'], {}, /^atkafka: unknown flag --output-topic$/],
    ['SASL half set', [...BASE, '--topic', 't', '--sasl-username', 'u'], {}, /^atkafka: SASL needs both --sasl-username and --sasl-password$/],
    ['a bad log format', [...BASE, '--topic', 't', '--log-format', 'xml'], {}, /^atkafka: --log-format: "xml" is not json, pretty or auto$/],
  ];
  for (const [name, args, env, want] of cases) {
    test(`exit 2, one line: ${name}`, () => {
      const r = stats(args, env);
      assert.equal(r.status, 2, `${r.stdout}\n${r.stderr}`);
      const lines = r.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 2, r.stderr);
      assert.match(lines[0]!, want);
      assert.equal(lines[1], "Run 'atkafka --help' for usage.");
      assert.ok(!r.stderr.includes(SECRET));
      assert.equal(r.stdout, '');
    });
  }

  test('flags come from the env too (ATKAFKA_STATS_*), checked the same way', () => {
    const r = stats(['--bootstrap-servers', '127.0.0.1:1'], { ATKAFKA_STATS_TOPIC: 't', ATKAFKA_STATS_REDIS_URL: 'redis://h/x' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^atkafka: --redis-url: "redis:\/\/h\/x": the path must be a database number/);
  });
});
