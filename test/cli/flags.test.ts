import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { formatHelp, parseArgs, parseDuration, resolveFlags, UsageError, type FlagSpec, type FlagValue } from '../../src/cli/flags.ts';
import { firehoseFlags, globalFlags, kafkaFlags, relayFlags } from '../../src/config/flags.ts';

const specs: FlagSpec[] = [
  { name: 'name', kind: 'string', env: ['T_NAME', 'T_NAME_OLD'], help: 'a string' },
  { name: 'verbose', kind: 'bool', env: ['T_VERBOSE'], default: 'false', help: 'a bool' },
  { name: 'count', kind: 'int', env: ['T_COUNT'], default: '7', help: 'an int' },
  { name: 'hosts', kind: 'list', env: ['T_HOSTS'], help: 'a list' },
  { name: 'wait', kind: 'duration', env: ['T_WAIT'], default: '1s', help: 'a duration' },
  { name: 'must', kind: 'string', env: ['T_MUST', 'T_MUST_OLD'], required: true, help: 'required' },
  { name: 'legacy', kind: 'bool', env: ['T_LEGACY'], notYet: true, help: 'not implemented' },
  { name: 'secret', kind: 'bool', env: ['T_SECRET'], secret: true, help: 'secret' },
];

/** Parses and resolves like main.ts does; `must` is given unless the test is about it. */
function resolve(argv: string[], env: Record<string, string> = {}): Map<string, FlagValue | undefined> {
  return resolveFlags(parseArgs(argv, specs), specs, { T_MUST: 'x', ...env });
}

function usageError(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof UsageError, `expected UsageError, got ${String(err)}`);
    assert.equal(err.name, 'UsageError');
    assert.match(err.message, message);
    return true;
  });
}

describe('parseArgs', () => {
  test('--x v and --x=v (and a single dash) give the same value', () => {
    for (const argv of [['--name', 'v'], ['--name=v'], ['-name', 'v'], ['-name=v']]) {
      const parsed = parseArgs(argv, specs);
      assert.deepEqual(parsed.raw.get('name'), ['v'], argv.join(' '));
      assert.deepEqual(parsed.positionals, []);
      assert.equal(parsed.help, false);
    }
  });

  test('a value may contain "=" and may be empty with --x=', () => {
    assert.deepEqual(parseArgs(['--name=a=b=c'], specs).raw.get('name'), ['a=b=c']);
    assert.deepEqual(parseArgs(['--name='], specs).raw.get('name'), ['']);
    assert.deepEqual(parseArgs(['--name', ''], specs).raw.get('name'), ['']);
  });

  test('flags and positionals in any order; -- ends the flags', () => {
    const parsed = parseArgs(['firehose', '--name', 'n', 'relay', '--verbose', '--', '--count', 'x'], specs);
    assert.deepEqual(parsed.positionals, ['firehose', 'relay', '--count', 'x']);
    assert.deepEqual(parsed.raw.get('name'), ['n']);
    assert.deepEqual(parsed.raw.get('verbose'), ['true']);
    assert.equal(parsed.raw.has('count'), false);
  });

  test('-h, --help and -help ask for help', () => {
    for (const h of ['-h', '--help', '-help']) assert.equal(parseArgs(['a', h], specs).help, true);
  });

  test('an unknown flag, or a value-taking flag at the end, is a UsageError', () => {
    usageError(() => parseArgs(['--nope'], specs), /^unknown flag --nope$/);
    usageError(() => parseArgs(['--nope=1'], specs), /^unknown flag --nope$/);
    usageError(() => parseArgs(['--name'], specs), /^flag --name needs a value$/);
    usageError(() => parseArgs(['--count'], specs), /^flag --count needs a value$/);
  });
});

describe('resolveFlags', () => {
  test('bools: bare flag is true; =value accepts true/false spellings; bad value is a UsageError', () => {
    assert.equal(resolve(['--verbose']).get('verbose'), true);
    for (const t of ['true', 'TRUE', '1', 't', 'yes']) assert.equal(resolve([`--verbose=${t}`]).get('verbose'), true, t);
    for (const f of ['false', 'False', '0', 'f', 'no']) assert.equal(resolve([`--verbose=${f}`]).get('verbose'), false, f);
    assert.equal(resolve([]).get('verbose'), false);
    usageError(() => resolve(['--verbose=maybe']), /^--verbose: "maybe" is not a boolean$/);
    // A bool never takes the next word: "false" stays a positional (as in urfave/cli).
    const parsed = parseArgs(['--verbose', 'false'], specs);
    assert.deepEqual(parsed.positionals, ['false']);
    assert.equal(resolveFlags(parsed, specs, { T_MUST: 'x' }).get('verbose'), true);
  });

  test('a secret value is never echoed in an error', () => {
    usageError(() => resolve(['--secret=hunter2']), /^--secret: "\*\*\*" is not a boolean$/);
    usageError(() => resolve([], { T_SECRET: 'hunter2' }), /^T_SECRET: "\*\*\*" is not a boolean$/);
  });

  test('lists: repeated flags and comma lists combine, trimmed, empties dropped', () => {
    assert.deepEqual(resolve(['--hosts', 'a:1,b:2', '--hosts=c:3', '--hosts', ' d:4 , ,e:5,']).get('hosts'), ['a:1', 'b:2', 'c:3', 'd:4', 'e:5']);
    assert.deepEqual(resolve([], { T_HOSTS: 'x:1, y:2' }).get('hosts'), ['x:1', 'y:2']);
    assert.equal(resolve([]).get('hosts'), undefined);
  });

  test('a repeated scalar flag: the last one wins', () => {
    assert.equal(resolve(['--name', 'a', '--name=b']).get('name'), 'b');
    assert.equal(resolve(['--count', '1', '--count', '2']).get('count'), 2);
  });

  test('env fallback: the command line wins, then env vars in their listed order', () => {
    assert.equal(resolve(['--name', 'flag'], { T_NAME: 'env1', T_NAME_OLD: 'env2' }).get('name'), 'flag');
    assert.equal(resolve([], { T_NAME: 'env1', T_NAME_OLD: 'env2' }).get('name'), 'env1');
    assert.equal(resolve([], { T_NAME_OLD: 'env2' }).get('name'), 'env2');
    assert.equal(resolve([]).get('name'), undefined);
    assert.equal(resolve(['--name='], { T_NAME: 'env1' }).get('name'), '');
  });

  test('an env var set to empty counts: empty text or list, a switch off, a number or duration refused', () => {
    // Set-but-empty is a value, as in urfave/cli v2: it wins over a later env var and over the default.
    assert.equal(resolve([], { T_NAME: '', T_NAME_OLD: 'env2' }).get('name'), '');
    assert.deepEqual(resolve([], { T_HOSTS: '' }).get('hosts'), []);
    assert.equal(resolve([], { T_VERBOSE: '' }).get('verbose'), false);
    assert.equal(resolve([], { T_VERBOSE: '  ' }).get('verbose'), false);
    // A number or a duration has no empty value: an unfilled template must not quietly become the default.
    usageError(() => resolve([], { T_COUNT: '' }), /^T_COUNT is set but empty; unset it to use the default \(7\) or give a value$/);
    usageError(() => resolve([], { T_WAIT: ' ' }), /^T_WAIT is set but empty; unset it to use the default \(1s\)/);
    // The command line wins over an empty env var, and `--count=` stays an error of its own.
    assert.equal(resolve(['--count', '3'], { T_COUNT: '' }).get('count'), 3);
    usageError(() => resolve(['--count=']), /^--count: "" is not an integer$/);
  });

  test('a required flag set to empty is refused, naming where the empty value came from', () => {
    usageError(() => resolveFlags(parseArgs([], specs), specs, { T_MUST: '' }), /^T_MUST is empty; --must is required$/);
    usageError(() => resolveFlags(parseArgs(['--must='], specs), specs, {}), /^--must is empty; it is required$/);
  });

  test('defaults apply when neither flag nor env is set, and are converted like any value', () => {
    const values = resolve([]);
    assert.equal(values.get('count'), 7);
    assert.equal(values.get('wait'), 1000);
    assert.equal(values.get('verbose'), false);
    assert.equal(resolve([], { T_COUNT: '9', T_WAIT: '250ms' }).get('count'), 9);
    assert.equal(resolve([], { T_COUNT: '9', T_WAIT: '250ms' }).get('wait'), 250);
  });

  test('a missing required flag is a UsageError naming the flag and its env vars', () => {
    usageError(() => resolveFlags(parseArgs([], specs), specs, {}), /^missing required flag --must \(or env T_MUST \/ T_MUST_OLD\)$/);
    usageError(() => resolveFlags(parseArgs([], specs), specs, { T_MUST: '' }), /--must/);
    assert.equal(resolveFlags(parseArgs([], specs), specs, { T_MUST_OLD: 'old' }).get('must'), 'old');
  });

  test('bad ints and durations are UsageErrors naming where the value came from', () => {
    for (const bad of ['abc', '1.5', '1e3', '0x10', '']) {
      usageError(() => resolve([`--count=${bad}`]), new RegExp(`^--count: "${bad.replace('.', '\\.')}" is not an integer$`));
    }
    usageError(() => resolve(['--count', '99999999999999999999']), /^--count: "99999999999999999999" is out of range$/);
    assert.equal(resolve(['--count', '-3']).get('count'), -3);
    usageError(() => resolve([], { T_COUNT: 'ten' }), /^T_COUNT: "ten" is not an integer$/);
    usageError(() => resolve(['--wait', '5 minutes']), /^--wait: "5 minutes" is not a duration/);
    usageError(() => resolve([], { T_WAIT: '1d' }), /^T_WAIT: "1d" is not a duration/);
  });

  test('a not-yet-implemented flag is refused, from the command line or the env', () => {
    usageError(() => resolve(['--legacy']), /^--legacy \(from the Go at-kafka\) is not implemented in this version yet$/);
    usageError(() => resolve([], { T_LEGACY: 'true' }), /^T_LEGACY \(from the Go at-kafka\) is not implemented in this version yet$/);
    assert.equal(resolve([]).get('legacy'), undefined);
    // Off or empty, as the Go version's own docker-compose.yml sets it, asks for nothing: accepted.
    for (const off of ['false', '', '0']) assert.equal(resolve([], { T_LEGACY: off }).get('legacy'), undefined, off);
    assert.equal(resolve(['--legacy=false']).get('legacy'), undefined);
  });
});

describe('parseDuration', () => {
  test('Go-style durations; a bare number is milliseconds', () => {
    const cases: [string, number][] = [
      ['0', 0],
      ['250', 250],
      ['500ms', 500],
      ['30s', 30_000],
      ['1.5s', 1500],
      ['2m', 120_000],
      ['1m30s', 90_000],
      ['2h', 7_200_000],
      ['1h2m3s4ms', 3_723_004],
      ['0s', 0],
      [' 10s ', 10_000],
      ['0.5ms', 1],
    ];
    for (const [text, ms] of cases) assert.equal(parseDuration(text), ms, text);
  });

  test('at most 2^31-1 ms: Node runs a longer timer after 1 ms', () => {
    assert.equal(parseDuration('2147483647'), 2 ** 31 - 1);
    assert.equal(parseDuration('596h'), 596 * 3_600_000);
    for (const bad of ['2147483648', '597h', '99999999999999999999h', '1000000m']) {
      usageError(() => parseDuration(bad, '--wait'), /^--wait: ".*" is longer than 2147483647 ms \(about 596h\)$/);
    }
  });

  test('anything else is a UsageError', () => {
    for (const bad of ['', ' ', 's', 'ms', '10x', '1d', '-5s', '10 s', '1s2', 'h1', '1.s', 'abc', '5m!', '1us']) {
      usageError(() => parseDuration(bad, '--wait'), /^--wait: ".*" is not a duration \(like 500ms, 30s, 2m\)$/);
    }
  });
});

describe('the real flag table', () => {
  const relaySpecs = [...firehoseFlags, ...relayFlags, ...kafkaFlags, ...globalFlags];

  test('flag names are unique and every env var is ATKAFKA_* (plus the Go telemetry names)', () => {
    const names = relaySpecs.map((f) => f.name);
    assert.equal(new Set(names).size, names.length);
    for (const f of relaySpecs) {
      assert.ok(f.env.length > 0, f.name);
      assert.match(f.env[0]!, /^ATKAFKA_[A-Z_]+$/, f.name);
    }
    assert.deepEqual(globalFlags.find((f) => f.name === 'debug')?.env, ['ATKAFKA_DEBUG', 'DEBUG']);
  });

  test('every default converts to its kind', () => {
    const values = resolveFlags(parseArgs([], relaySpecs), relaySpecs, {
      ATKAFKA_BOOTSTRAP_SERVERS: 'localhost:9092',
      ATKAFKA_OUTPUT_TOPIC: 'events',
    });
    assert.deepEqual(values.get('bootstrap-servers'), ['localhost:9092']);
    assert.equal(values.get('relay-host'), 'wss://bsky.network');
    assert.equal(values.get('linger'), 20);
    assert.equal(values.get('cursor-save-interval'), 1000);
    assert.equal(values.get('stall-timeout'), 60_000);
    assert.equal(values.get('topic-partitions'), 200);
    assert.equal(values.get('max-message-bytes'), 20_971_520);
    assert.equal(values.get('debug'), false);
    for (const f of relaySpecs) if (f.default !== undefined) assert.notEqual(values.get(f.name), undefined, f.name);
  });

  test('help lists each implemented flag with its env vars and its default or "required"', () => {
    const help = formatHelp('atkafka firehose relay [flags]', 'desc', [{ title: 'All', flags: relaySpecs }]);
    for (const f of relaySpecs) {
      if (f.notYet) {
        assert.ok(!help.includes(`--${f.name}`), `${f.name} is hidden`);
        continue;
      }
      const at = help.indexOf(`\n  --${f.name}`);
      assert.ok(at !== -1, f.name);
      const detail = help.slice(at).split('\n')[2]!;
      assert.ok(detail.includes(`env ${f.env.join(', ')}`), detail);
      if (f.required) assert.ok(detail.includes('; required]'), detail);
      else if (f.default !== undefined) assert.ok(detail.includes(`default ${f.default === '' ? '""' : f.default}]`), detail);
    }
  });
});
