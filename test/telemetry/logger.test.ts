import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

import { prettyLine } from '../../src/telemetry/logger.ts';

const BIN = fileURLToPath(new URL('../../bin/atkafka.js', import.meta.url));

test('a pretty line: time, level, message, then the fields', () => {
  const line = JSON.stringify({ level: 40, time: '2026-12-01T12:30:01.123Z', name: 'atkafka', msg: 'relay seq gap', lastSeq: 5, seq: 9, note: 'two words', empty: '' });
  assert.equal(prettyLine(line), '12:30:01.123 WARN  relay seq gap  lastSeq=5 seq=9 note="two words" empty=""');
  assert.equal(prettyLine('atkafka: the plain last line'), 'atkafka: the plain last line', 'what is no record passes as it is');
  assert.match(prettyLine(line, true), /\x1b\[33mWARN /, 'coloured for a terminal');
});

test('--log-format pretty and json, --log-level: what the CLI writes on stderr', () => {
  const run = (...flags: string[]) =>
    spawnSync(process.execPath, [BIN, 'firehose', 'relay', '--bootstrap-servers', '127.0.0.1:1', '--output-topic', 't', '--metrics-listen-address=', '--enrich=false', '--cursor-file=', ...flags], {
      encoding: 'utf8',
      timeout: 4000,
      env: { PATH: process.env.PATH ?? '' },
    }).stderr;
  const json = run().split('\n').find((l) => l.includes('starting atkafka'))!;
  assert.equal(JSON.parse(json).msg, 'starting atkafka firehose relay', 'JSON lines when stderr is a pipe');
  const pretty = run('--log-format', 'pretty').split('\n').find((l) => l.includes('starting atkafka'))!;
  assert.match(pretty, /^\d\d:\d\d:\d\d\.\d{3} INFO  starting atkafka firehose relay  relayHost=wss:\/\/bsky\.network /);
  assert.ok(!run('--log-level', 'error').includes('starting atkafka'), 'info lines left out at --log-level error');
});
