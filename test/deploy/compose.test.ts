// The compose files (docker-compose.yml, docker-compose.tap.yml, docker-compose.ozone.yml,
// docker-compose.jetstream.yml, and docker-compose.learn.yml with two producers and a consumer
// group), checked without a Docker engine: each is loaded by the Compose Specification's own loader
// (compose-go, which docker compose is built on; tools/compose-check, built and cached by
// scripts/compose-check.sh) in strict mode, and what it resolved is checked against the repo and
// against atkafka itself: files that are mounted or built exist, each atkafka service's command and
// every ATKAFKA_* variable are ones its CLI takes in that mode (resolved with the CLI's own flag and
// config code), the probes and ports agree with the Dockerfile, Prometheus scrapes every producer
// and Grafana finds Prometheus and the dashboards. Tap's variables are checked against the real
// Tap's `run --help`.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { parseArgs, resolveFlags, type FlagSpec } from '../../src/cli/flags.ts';
import { statsCommand } from '../../src/cli/run-stats.ts';
import { enrichFlags, firehoseFlags, globalFlags, jetstreamFlags, kafkaFlags, ozoneFlags, reconnectFlags, relayFlags, tapFlags, wikimediaFlags } from '../../src/config/flags.ts';
import { jetstreamConfig } from '../../src/config/jetstream-config.ts';
import { statsConfig } from '../../src/config/stats-config.ts';
import { wikimediaConfig } from '../../src/config/wikimedia-config.ts';
import { tapBinary } from '../support/tap.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CI_ENV = join(ROOT, 'tools/compose-check/ci.env');

interface Healthcheck {
  test: string[];
  interval?: string;
  timeout?: string;
  start_period?: string;
  retries?: number;
  disable?: boolean;
}
interface Service {
  image?: string;
  build?: { context: string; dockerfile: string; args?: Record<string, string> };
  command?: string[];
  working_dir?: string;
  environment: Record<string, string>;
  healthcheck?: Healthcheck;
  ports: { host_ip?: string; published?: string; target: number; protocol?: string }[];
  volumes: { type: string; source: string; target: string; read_only?: boolean }[];
  secrets: { source: string; target: string }[];
  depends_on: Record<string, string>;
  restart?: string;
  stop_grace_period?: string;
}
interface Project {
  name: string;
  services: Record<string, Service>;
  volumes: string[];
  secrets: Record<string, string>;
}
interface Loaded {
  file: string;
  ok: boolean;
  error?: string;
  warnings?: string[];
  project?: Project;
}

/** A service that runs an atkafka producer: its command, and the flags atkafka takes for it (as src/cli/main.ts groups them). */
interface Producer {
  service: string;
  command: string[];
  flags: FlagSpec[];
}
const JETSTREAM_FLAGS = [...jetstreamFlags, ...firehoseFlags.filter((f) => f.name !== 'relay-host' && f.name !== 'tap-workers'), ...enrichFlags, ...kafkaFlags, ...globalFlags];
const WIKIMEDIA_FLAGS = [...wikimediaFlags, ...enrichFlags.filter((f) => ['kafka-headers', 'topic-template'].includes(f.name)), ...kafkaFlags, ...globalFlags];
const STATS_FLAGS = statsCommand.groups.flatMap((g) => g.flags);
const LEARN = 'docker-compose.learn.yml';

/** Each compose file, the producers it runs, its named volumes and the Prometheus config it mounts. */
const MODES: { file: string; producers: Producer[]; volumes: string[]; prometheus: string }[] = [
  {
    file: 'docker-compose.yml',
    producers: [{ service: 'atkafka', command: ['firehose', 'relay'], flags: [...firehoseFlags, ...relayFlags, ...enrichFlags, ...kafkaFlags, ...globalFlags] }],
    volumes: ['atkafka-data', 'grafana-data', 'kafka-data', 'prometheus-data'],
    prometheus: 'deploy/prometheus/prometheus.yml',
  },
  {
    file: 'docker-compose.tap.yml',
    producers: [{ service: 'atkafka', command: ['firehose', 'tap'], flags: [...tapFlags, ...reconnectFlags, ...firehoseFlags, ...enrichFlags, ...kafkaFlags, ...globalFlags] }],
    volumes: ['atkafka-data', 'grafana-data', 'kafka-data', 'prometheus-data', 'tap-data'],
    prometheus: 'deploy/prometheus/prometheus.yml',
  },
  {
    file: 'docker-compose.ozone.yml',
    producers: [
      {
        service: 'atkafka',
        command: ['ozone-events'],
        flags: [
          ...ozoneFlags,
          ...reconnectFlags,
          ...enrichFlags.filter((f) => ['osprey-worker-id', 'osprey-epoch', 'kafka-headers', 'topic-template'].includes(f.name)),
          ...firehoseFlags.filter((f) => f.name === 'osprey-compatible'),
          ...kafkaFlags,
          ...globalFlags,
        ],
      },
    ],
    volumes: ['atkafka-data', 'grafana-data', 'kafka-data', 'prometheus-data'],
    prometheus: 'deploy/prometheus/prometheus.yml',
  },
  {
    file: 'docker-compose.jetstream.yml',
    producers: [{ service: 'atkafka', command: ['firehose', 'jetstream'], flags: JETSTREAM_FLAGS }],
    volumes: ['atkafka-data', 'grafana-data', 'kafka-data', 'prometheus-data'],
    prometheus: 'deploy/prometheus/prometheus.yml',
  },
  {
    file: LEARN,
    producers: [
      { service: 'wikimedia', command: ['wikimedia'], flags: WIKIMEDIA_FLAGS },
      { service: 'jetstream', command: ['firehose', 'jetstream'], flags: JETSTREAM_FLAGS },
    ],
    volumes: ['atkafka-data', 'grafana-data', 'kafka-data', 'prometheus-data', 'redis-data'],
    prometheus: 'deploy/prometheus/prometheus.learn.yml',
  },
];
const SHARED = ['kafka', 'kafka-ui', 'prometheus', 'grafana'];
/** The services of a file that run `atkafka stats`. */
const statsServices = (p: Project) => Object.entries(p.services).filter(([, s]) => s.command?.[0] === 'stats');

let bin = '';
const loaded = new Map<string, Project>();

function composeCheck(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(bin, args, { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
function yamlFile<T>(path: string): T {
  const r = composeCheck(['--yaml', path]);
  assert.equal(r.status, 0, r.stderr);
  return (JSON.parse(r.stdout) as Record<string, T>)[path]!;
}
function project(file: string): Project {
  const p = loaded.get(file);
  assert.ok(p, `${file} did not load`);
  return p;
}
const inRepo = (p: string) => !relative(ROOT, p).startsWith('..');
const seconds = (d: string | undefined) => {
  const m = /^(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$/.exec(d ?? '');
  assert.ok(m && d, `duration ${d}`);
  return Number(m[1] ?? 0) * 60 + Number(m[2] ?? 0);
};
/** The runtime stage's HEALTHCHECK CMD of a Dockerfile, as the exec-form array. */
function dockerfileHealthcheck(dockerfile: string): string[] {
  const text = readFileSync(join(ROOT, dockerfile), 'utf8').replace(/\\\n/g, ' ');
  const line = text.split('\n').findLast((l) => /^HEALTHCHECK\s/.test(l));
  assert.ok(line, `${dockerfile} has a HEALTHCHECK`);
  const cmd = /\sCMD\s+(\[.*\])\s*$/.exec(line);
  assert.ok(cmd, `${dockerfile}: HEALTHCHECK CMD in exec form`);
  return JSON.parse(cmd[1]!) as string[];
}

before(() => {
  const build = spawnSync('bash', [join(ROOT, 'scripts/compose-check.sh'), '--build-only'], { encoding: 'utf8', timeout: 300_000 });
  assert.equal(build.status, 0, `scripts/compose-check.sh --build-only failed:\n${build.stderr}`);
  bin = build.stdout.trim().split('\n').at(-1)!;
  const r = composeCheck(['--env-file', CI_ENV, ...MODES.map((m) => m.file)]);
  const out = JSON.parse(r.stdout) as { files: Loaded[] };
  for (const f of out.files) if (f.ok && f.project) loaded.set(f.file, f.project);
  assert.equal(r.status, 0, `compose-check failed:\n${r.stderr}`);
});

describe('the compose loader', () => {
  test('every compose file loads in strict mode: schema, interpolation, consistency, no warnings', () => {
    for (const m of MODES) {
      const p = project(m.file);
      assert.ok(Object.keys(p.services).length >= 5, m.file);
    }
  });

  test('is strict: a misspelt key, an unset variable or an undeclared volume is an error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'atkafka-compose-'));
    try {
      const cases: [string, RegExp][] = [
        ['services:\n  a:\n    image: x:1\n    healthchek:\n      test: ["CMD", "true"]\n', /healthchek/],
        ['services:\n  a:\n    image: x:${NOT_SET_ANYWHERE}\n', /NOT_SET_ANYWHERE/],
        ['services:\n  a:\n    image: x:1\n    volumes: ["undeclared:/data"]\n', /undeclared/],
      ];
      for (const [i, [yaml, why]] of cases.entries()) {
        const file = join(dir, `case${i}.yml`);
        writeFileSync(file, yaml);
        const r = composeCheck([file]);
        assert.equal(r.status, 1, yaml);
        const res = (JSON.parse(r.stdout) as { files: Loaded[] }).files[0]!;
        assert.equal(res.ok, false);
        assert.match(res.error ?? '', why);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the Ozone file refuses to load without the moderator account and the labeler DID, naming what to set', () => {
    const r = composeCheck(['docker-compose.ozone.yml']);
    assert.equal(r.status, 1);
    const res = (JSON.parse(r.stdout) as { files: Loaded[] }).files[0]!;
    assert.match(res.error ?? '', /ATKAFKA_OZONE_(IDENTIFIER|LABELER_DID)/);
    const withOne = composeCheck(['--env', 'ATKAFKA_OZONE_IDENTIFIER=mod.example.com', 'docker-compose.ozone.yml']);
    assert.equal(withOne.status, 1);
    assert.match(withOne.stdout, /ATKAFKA_OZONE_LABELER_DID/);
  });

  test('variables from the environment reach the containers (the .env way of configuring)', () => {
    const r = composeCheck(['--env-file', CI_ENV, '--env', 'ATKAFKA_OUTPUT_TOPIC=my-topic', '--env', 'BIND_ADDRESS=0.0.0.0', '--env', 'METRICS_PORT=16009', 'docker-compose.yml']);
    assert.equal(r.status, 0, r.stderr);
    const p = (JSON.parse(r.stdout) as { files: Loaded[] }).files[0]!.project!;
    assert.equal(p.services.atkafka!.environment.ATKAFKA_OUTPUT_TOPIC, 'my-topic');
    assert.deepEqual(p.services.atkafka!.ports.map((x) => [x.host_ip, x.published, x.target]), [['0.0.0.0', '16009', 6009]]);
  });
});

for (const mode of MODES) {
  describe(mode.file, () => {
    test(`kafka, kafka-ui, prometheus, grafana and ${mode.producers.map((x) => x.service).join(', ')}, each with a health check and restart: unless-stopped`, () => {
      const p = project(mode.file);
      for (const name of [...SHARED, ...mode.producers.map((x) => x.service)]) assert.ok(p.services[name], `service ${name}`);
      for (const [name, s] of Object.entries(p.services)) {
        assert.ok(s.healthcheck && !s.healthcheck.disable, `${name}: healthcheck`);
        assert.match(s.healthcheck.test[0] ?? '', /^CMD(-SHELL)?$/, `${name}: healthcheck test`);
        assert.ok(s.healthcheck.test.length >= 2, `${name}: healthcheck command`);
        assert.equal(s.restart, 'unless-stopped', `${name}: restart`);
        assert.ok(seconds(s.healthcheck.timeout) < seconds(s.healthcheck.interval) * 2 + 1, `${name}: timeout`);
      }
    });

    test('images pinned to a version; builds from files in this repo', () => {
      const p = project(mode.file);
      for (const [name, s] of Object.entries(p.services)) {
        assert.ok(s.image, `${name}: image`);
        const tag = /:([^/:]+)$/.exec(s.image)?.[1];
        assert.ok(tag && tag !== 'latest', `${name}: ${s.image} has a pinned tag`);
        if (s.build) {
          assert.equal(resolve(s.build.context), resolve(ROOT), `${name}: build context`);
          const dockerfile = resolve(s.build.context, s.build.dockerfile);
          assert.ok(inRepo(dockerfile) && statSync(dockerfile).isFile(), `${name}: ${dockerfile}`);
        }
      }
    });

    test('every bind mount is a file or folder of this repo; named volumes for Kafka, atkafka, Prometheus and Grafana', () => {
      const p = project(mode.file);
      for (const [name, s] of Object.entries(p.services)) {
        for (const v of s.volumes) {
          if (v.type === 'bind') {
            assert.ok(inRepo(v.source), `${name}: ${v.source} is in the repo`);
            assert.ok(existsSync(v.source), `${name}: ${relative(ROOT, v.source)} exists`);
            assert.equal(v.read_only, true, `${name}: ${v.target} read-only`);
          } else {
            assert.equal(v.type, 'volume', `${name}: ${v.target}`);
            assert.ok(p.volumes.includes(v.source), `${name}: volume ${v.source} declared`);
          }
        }
      }
      assert.deepEqual(p.volumes, mode.volumes);
      const mountOf = (svc: string, target: string) => p.services[svc]!.volumes.find((v) => v.target === target)?.source;
      assert.equal(mountOf('kafka', p.services.kafka!.environment.KAFKA_LOG_DIRS!), 'kafka-data');
      for (const x of mode.producers) assert.equal(mountOf(x.service, '/data'), 'atkafka-data', x.service);
      assert.equal(mountOf('prometheus', '/prometheus'), 'prometheus-data');
      assert.equal(mountOf('grafana', '/var/lib/grafana'), 'grafana-data');
    });

    for (const producer of mode.producers) {
      test(`${producer.service} runs \`atkafka ${producer.command.join(' ')}\` from the Dockerfile's image, after Kafka is healthy, with the cursor on its volume`, () => {
        const a = project(mode.file).services[producer.service]!;
        assert.deepEqual(a.command, producer.command);
        assert.equal(a.image, 'atkafka:local');
        assert.equal(a.build?.dockerfile, 'Dockerfile');
        assert.equal(a.depends_on.kafka, 'service_healthy');
        assert.equal(a.working_dir, '/data');
        assert.ok(seconds(a.stop_grace_period) > 30, 'stop_grace_period above the 30 s drain');
        const cursor = a.environment.ATKAFKA_CURSOR_FILE ?? a.environment.ATKAFKA_OZONE_CURSOR_FILE;
        if (producer.command[1] === 'tap') assert.equal(cursor, undefined, 'Tap mode keeps no cursor file');
        else assert.match(cursor ?? '', /^\/data\/[a-z-]+-cursor\.json$/);
      });

      test(`${producer.service}'s environment: only ATKAFKA_* variables its CLI takes in this mode, with values the CLI accepts`, () => {
        const a = project(mode.file).services[producer.service]!;
        const known = new Map(producer.flags.flatMap((f) => f.env.map((e) => [e, f] as const)));
        for (const name of Object.keys(a.environment)) {
          assert.match(name, /^ATKAFKA_/, name);
          assert.ok(known.has(name), `${name} is not a flag of atkafka ${producer.command.join(' ')}`);
        }
        // The CLI's own resolution: required flags present, every number, duration and switch parses.
        const values = resolveFlags(parseArgs([], producer.flags), producer.flags, { ...a.environment });
        assert.deepEqual(values.get('bootstrap-servers'), ['kafka:29092']);
        assert.ok(values.get('output-topic'));
        assert.equal(values.get('metrics-listen-address'), '0.0.0.0:6009');
        for (const f of producer.flags.filter((x) => x.secret)) {
          for (const e of f.env) assert.ok(!a.environment[e], `${e}: a secret in the environment`);
        }
      });

      test(`${producer.service}'s health check is the image's (/readyz on the metrics port), and the port is published`, () => {
        const a = project(mode.file).services[producer.service]!;
        assert.deepEqual(a.healthcheck!.test, ['CMD', ...dockerfileHealthcheck('Dockerfile')]);
        assert.match(a.healthcheck!.test.join(' '), /http:\/\/127\.0\.0\.1:6009\/readyz/);
        assert.ok(a.ports.some((x) => x.target === 6009));
      });
    }

    test('Kafka: one KRaft node, an inside listener atkafka and the UI use, a host listener, and a health check through it', () => {
      const p = project(mode.file);
      const k = p.services.kafka!;
      assert.match(k.image!, /^apache\/kafka:4\.\d+\.\d+$/);
      const env = k.environment;
      assert.equal(env.KAFKA_PROCESS_ROLES, 'broker,controller');
      assert.match(env.CLUSTER_ID ?? '', /^[A-Za-z0-9_-]{22}$/, 'CLUSTER_ID: 16 bytes, base64url');
      assert.equal(Buffer.from(env.CLUSTER_ID!, 'base64url').length, 16);
      const advertised = Object.fromEntries(env.KAFKA_ADVERTISED_LISTENERS!.split(',').map((l) => l.split('://') as [string, string]));
      const listeners = Object.fromEntries(env.KAFKA_LISTENERS!.split(',').map((l) => l.split('://') as [string, string]));
      const protocols = Object.fromEntries(env.KAFKA_LISTENER_SECURITY_PROTOCOL_MAP!.split(',').map((l) => l.split(':') as [string, string]));
      const inside = advertised[env.KAFKA_INTER_BROKER_LISTENER_NAME!];
      assert.equal(inside, 'kafka:29092');
      assert.equal(advertised.PLAINTEXT_HOST, 'localhost:9092');
      for (const name of [...Object.keys(advertised), env.KAFKA_CONTROLLER_LISTENER_NAMES!]) {
        assert.ok(listeners[name], `listener ${name}`);
        assert.equal(protocols[name], 'PLAINTEXT', `protocol of ${name}`);
      }
      assert.equal(env.KAFKA_CONTROLLER_QUORUM_VOTERS, `${env.KAFKA_NODE_ID}@kafka${listeners.CONTROLLER}`);
      assert.ok(k.ports.some((x) => x.target === Number(listeners.PLAINTEXT_HOST!.split(':')[1]) && x.published === '9092'));
      for (const [name] of [...mode.producers.map((x) => [x.service] as const), ...statsServices(p)]) assert.equal(p.services[name]!.environment.ATKAFKA_BOOTSTRAP_SERVERS, inside, name);
      assert.equal(p.services['kafka-ui']!.environment.KAFKA_CLUSTERS_0_BOOTSTRAPSERVERS, inside);
      assert.deepEqual(k.healthcheck!.test.slice(1), ['/opt/kafka/bin/kafka-broker-api-versions.sh', '--bootstrap-server', inside]);
      for (const rf of ['KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR', 'KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR']) assert.equal(env[rf], '1', rf);
    });

    test(`Prometheus scrapes ${mode.producers.map((x) => `${x.service}:6009`).join(' and ')} with the config file ${mode.prometheus}`, () => {
      const p = project(mode.file);
      const prom = p.services.prometheus!;
      const mount = prom.volumes.find((v) => v.type === 'bind');
      assert.equal(relative(ROOT, mount!.source), mode.prometheus);
      assert.ok(prom.command?.includes(`--config.file=${mount!.target}`));
      const config = yamlFile<{ scrape_configs: { job_name: string; metrics_path?: string; static_configs: { targets: string[] }[] }[] }>(mode.prometheus);
      // One job for every producer: the dashboard's job variable is "atkafka", its instances tell them apart.
      const job = config.scrape_configs.find((j) => j.job_name === 'atkafka');
      assert.ok(job, 'a job atkafka');
      assert.equal(job.metrics_path ?? '/metrics', '/metrics');
      const targets = mode.producers.map((x) => `${x.service}:${p.services[x.service]!.environment.ATKAFKA_METRICS_LISTEN_ADDRESS!.split(':').at(-1)}`);
      assert.deepEqual(job.static_configs.flatMap((s) => s.targets), targets);
      assert.match(prom.healthcheck!.test.join(' '), /127\.0\.0\.1:9090\/-\/ready/);
    });

    test('Grafana: Prometheus as the data source, and the dashboards folder provisioned', () => {
      const p = project(mode.file);
      const g = p.services.grafana!;
      const bind = (source: string) => g.volumes.find((v) => v.type === 'bind' && relative(ROOT, v.source) === source);
      const ds = bind('deploy/grafana/provisioning/datasources');
      const dash = bind('deploy/grafana/provisioning/dashboards');
      const boards = bind('deploy/grafana/dashboards');
      assert.equal(ds?.target, '/etc/grafana/provisioning/datasources');
      assert.equal(dash?.target, '/etc/grafana/provisioning/dashboards');
      assert.ok(boards, 'deploy/grafana/dashboards mounted');

      const datasources = yamlFile<{ apiVersion: number; datasources: { type: string; url: string; isDefault?: boolean }[] }>(
        'deploy/grafana/provisioning/datasources/prometheus.yml',
      );
      assert.equal(datasources.apiVersion, 1);
      const prom = datasources.datasources.find((d) => d.type === 'prometheus');
      assert.ok(prom?.isDefault);
      const url = new URL(prom.url);
      assert.ok(p.services[url.hostname], `the data source's host ${url.hostname} is a service`);
      assert.ok(p.services[url.hostname]!.ports.some((x) => String(x.target) === url.port));

      const providers = yamlFile<{ apiVersion: number; providers: { type: string; options: { path: string } }[] }>(
        'deploy/grafana/provisioning/dashboards/atkafka.yml',
      );
      assert.equal(providers.apiVersion, 1);
      assert.deepEqual(providers.providers.map((x) => [x.type, x.options.path]), [['file', boards.target]]);
      assert.ok(statSync(join(ROOT, 'deploy/grafana/dashboards')).isDirectory());
      const home = g.environment.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH;
      assert.ok(home?.startsWith(`${boards.target}/`), 'the home dashboard is one of the provisioned files');
      assert.equal(g.depends_on.prometheus, 'service_healthy');
    });

    test('published ports: on 127.0.0.1 by default, none twice', () => {
      const p = project(mode.file);
      const published = Object.values(p.services).flatMap((s) => s.ports);
      for (const x of published) assert.equal(x.host_ip, '127.0.0.1', `port ${x.published}`);
      const hostPorts = published.map((x) => x.published);
      assert.equal(new Set(hostPorts).size, hostPorts.length, hostPorts.join(','));
    });
  });
}

describe('the files together', () => {
  test('Kafka, the UI, Prometheus and Grafana are the same in all (no drift) but for what the learn file changes on purpose; the project names differ', () => {
    const shared = (file: string) => {
      const p = project(file);
      const s = structuredClone(Object.fromEntries(SHARED.map((name) => [name, p.services[name]!])));
      if (file === LEARN) {
        // A laptop left running keeps a day of both streams, not Kafka's week; its Prometheus scrapes two producers.
        assert.equal(s.kafka!.environment.KAFKA_LOG_RETENTION_HOURS, '24');
        delete s.kafka!.environment.KAFKA_LOG_RETENTION_HOURS;
        for (const v of s.prometheus!.volumes) if (v.type === 'bind') v.source = join(ROOT, 'deploy/prometheus/prometheus.yml');
      }
      return s;
    };
    const [first, ...rest] = MODES.map((m) => [m.file, shared(m.file)] as const);
    for (const [file, s] of rest) for (const name of SHARED) assert.deepEqual(s[name], first![1][name], `${file}: ${name}`);
    assert.equal(new Set(MODES.map((m) => project(m.file).name)).size, MODES.length);
  });

  test('scripts/compose-check.sh checks every file this test does', () => {
    const script = readFileSync(join(ROOT, 'scripts/compose-check.sh'), 'utf8');
    const line = script.split('\n').find((l) => l.includes('exec "$bin" --env-file'));
    assert.ok(line, 'the default run of compose-check.sh');
    for (const m of MODES) assert.ok(line.includes(` ${m.file}`), `compose-check.sh leaves out ${m.file}`);
  });

  test("Jetstream: the public hosts by default, the same list as the CLI's, resolved by the CLI's own config code", () => {
    const a = project('docker-compose.jetstream.yml').services.atkafka!;
    const config = jetstreamConfig(resolveFlags(parseArgs([], JETSTREAM_FLAGS), JETSTREAM_FLAGS, { ...a.environment }) as never);
    const cliDefault = jetstreamFlags.find((f) => f.name === 'jetstream-host')!.default!.split(',');
    assert.ok(cliDefault.length > 1, 'more than one host to fail over to');
    assert.deepEqual(config.hosts, cliDefault);
    assert.equal(config.cursorFile, '/data/jetstream-cursor.json');
    assert.equal(config.stages.format, 'atkafka');
    assert.equal(config.kafka.topic, 'jetstream-events');

    const r = composeCheck(['--env-file', CI_ENV, '--env', 'ATKAFKA_JETSTREAM_HOST=wss://jetstream.example.net', '--env', 'ATKAFKA_FORMAT=jetstream', 'docker-compose.jetstream.yml']);
    assert.equal(r.status, 0, r.stderr);
    const env = (JSON.parse(r.stdout) as { files: Loaded[] }).files[0]!.project!.services.atkafka!.environment;
    assert.equal(env.ATKAFKA_JETSTREAM_HOST, 'wss://jetstream.example.net');
    assert.equal(env.ATKAFKA_FORMAT, 'jetstream');
  });

  test("learn: Wikimedia and Jetstream into two topics by the CLI's own config code, public upstreams by default", () => {
    const p = project(LEARN);
    const wm = p.services.wikimedia!;
    const w = wikimediaConfig(resolveFlags(parseArgs([], WIKIMEDIA_FLAGS), WIKIMEDIA_FLAGS, { ...wm.environment }) as never);
    assert.equal(w.baseUrl, wikimediaFlags.find((f) => f.name === 'url')!.default);
    assert.deepEqual(w.streams, ['recentchange']);
    assert.equal(w.cursorFile, '/data/wikimedia-cursor.json');
    assert.equal(w.kafka.topic, 'wikimedia');
    assert.ok(w.kafka.partitions > statsServices(p).length, `${w.kafka.partitions} partitions for ${statsServices(p).length} group members: one would idle`);

    const js = p.services.jetstream!;
    const j = jetstreamConfig(resolveFlags(parseArgs([], JETSTREAM_FLAGS), JETSTREAM_FLAGS, { ...js.environment }) as never);
    assert.deepEqual(j.hosts, jetstreamFlags.find((f) => f.name === 'jetstream-host')!.default!.split(','));
    assert.equal(j.kafka.topic, 'jetstream');
    // Jetstream's own JSON: what tutorials show, and no identity lookup per account on the public PLC and AppView.
    assert.equal(j.stages.format, 'jetstream');
    assert.notEqual(w.cursorFile, j.cursorFile, 'two cursor files on the one volume');

    const published = (name: string) => p.services[name]!.ports.map((x) => [x.published, x.target]);
    assert.deepEqual(published('wikimedia'), [['6009', 6009]]);
    assert.deepEqual(published('jetstream'), [['6010', 6009]]);

    const r = composeCheck(['--env-file', CI_ENV, '--env', 'ATKAFKA_WIKIMEDIA_URL=http://127.0.0.1:8092', '--env', 'ATKAFKA_WIKIMEDIA_STREAM=recentchange,page-create', '--env', 'KAFKA_RETENTION_HOURS=6', LEARN]);
    assert.equal(r.status, 0, r.stderr);
    const q = (JSON.parse(r.stdout) as { files: Loaded[] }).files[0]!.project!;
    assert.equal(q.services.wikimedia!.environment.ATKAFKA_WIKIMEDIA_URL, 'http://127.0.0.1:8092');
    assert.equal(q.services.wikimedia!.environment.ATKAFKA_WIKIMEDIA_STREAM, 'recentchange,page-create');
    assert.equal(q.services.kafka!.environment.KAFKA_LOG_RETENTION_HOURS, '6');
  });

  test('learn: two `atkafka stats` in one consumer group on the wikimedia topic, counting into the Redis of this file', () => {
    const p = project(LEARN);
    const stats = statsServices(p);
    assert.deepEqual(stats.map(([name]) => name), ['stats-a', 'stats-b']);
    const wikimediaTopic = p.services.wikimedia!.environment.ATKAFKA_OUTPUT_TOPIC;
    const redis = p.services.redis!;
    for (const [name, s] of stats) {
      assert.deepEqual(s.command, ['stats', '--topic', 'wikimedia', '--group', 'learn', '--redis-url', 'redis://redis:6379'], name);
      assert.equal(s.image, 'atkafka:local');
      assert.equal(s.build?.dockerfile, 'Dockerfile');
      // The CLI's own parsing and config code: the flags exist, the Redis URL and the names are valid.
      const known = new Set(STATS_FLAGS.flatMap((f) => f.env));
      for (const e of Object.keys(s.environment)) assert.ok(known.has(e), `${name}: ${e} is not a variable of atkafka stats`);
      const c = statsConfig(resolveFlags(parseArgs(s.command!.slice(1), STATS_FLAGS), STATS_FLAGS, { ...s.environment }) as never);
      assert.equal(c.topic, wikimediaTopic, `${name} counts the wikimedia producer's topic`);
      assert.equal(c.group, 'learn');
      assert.deepEqual(c.bootstrapServers, ['kafka:29092']);
      const url = new URL(c.redisUrl);
      assert.ok(p.services[url.hostname] === redis, `${name}: ${url.hostname} is the redis service`);
      assert.ok(redis.ports.some((x) => String(x.target) === url.port), `${name}: Redis listens on ${url.port}`);
      assert.deepEqual(s.depends_on, { kafka: 'service_healthy', redis: 'service_healthy', wikimedia: 'service_healthy' }, name);
      assert.ok(seconds(s.stop_grace_period) > 30, `${name}: stop_grace_period above the 30 s stop`);
      // No HTTP port of its own: the check asks, from inside its container, the Redis it counts into.
      assert.match(s.healthcheck!.test.join(' '), new RegExp(`connect\\(${url.port}, '${url.hostname}'`), name);
      assert.deepEqual(s.ports, [], `${name} publishes nothing, so it can be scaled`);
    }
    assert.deepEqual(stats[0]![1], stats[1]![1], 'the two members are the same but for their name');

    // The counts must survive a Redis restart: the group commits to Kafka only what Redis already holds.
    assert.match(redis.image ?? '', /^redis:\d+\.\d+\.\d+$/, 'the official image, a pinned version');
    assert.deepEqual(redis.command, ['redis-server', '--appendonly', 'yes']);
    assert.deepEqual(redis.volumes.map((v) => [v.type, v.source, v.target]), [['volume', 'redis-data', '/data']]);
    assert.match(redis.healthcheck!.test.join(' '), /redis-cli ping/);
  });

  test('Ozone: the password only as a compose secret, a file kept out of the build context', () => {
    const p = project('docker-compose.ozone.yml');
    const a = p.services.atkafka!;
    assert.equal(a.environment.ATKAFKA_OZONE_PASSWORD, undefined);
    const secret = a.secrets.find((s) => s.target === a.environment.ATKAFKA_OZONE_PASSWORD_FILE);
    assert.ok(secret, 'ATKAFKA_OZONE_PASSWORD_FILE names a mounted secret');
    assert.equal(relative(ROOT, p.secrets[secret.source]!), 'secrets/ozone-password');
    for (const m of MODES.filter((x) => x.file !== 'docker-compose.ozone.yml')) assert.deepEqual(project(m.file).secrets, {});
  });

  test("Tap: built from Dockerfile.tap at scripts/tap.sh's version, with variables the real Tap knows", (t) => {
    const p = project('docker-compose.tap.yml');
    const tap = p.services.tap!;
    const script = readFileSync(join(ROOT, 'scripts/tap.sh'), 'utf8');
    const version = /^version=(\S+)$/m.exec(script)?.[1];
    const module = /^module=(\S+)$/m.exec(script)?.[1];
    assert.ok(version && module);
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile.tap'), 'utf8');
    assert.equal(/^ARG TAP_VERSION=(\S+)$/m.exec(dockerfile)?.[1], version, 'Dockerfile.tap ARG TAP_VERSION');
    assert.ok(dockerfile.includes(`go install -trimpath -tags timetzdata "${module}@\${TAP_VERSION}"`), 'Dockerfile.tap installs the module of scripts/tap.sh');
    assert.equal(tap.build?.dockerfile, 'Dockerfile.tap');
    assert.equal(tap.build?.args?.TAP_VERSION, version);
    assert.ok(tap.image?.endsWith(`:${version}`));
    assert.deepEqual(tap.volumes.map((v) => [v.source, v.target]), [['tap-data', '/data']]);

    const a = p.services.atkafka!;
    assert.equal(a.depends_on.tap, 'service_healthy');
    const bindPort = tap.environment.TAP_BIND!.split(':').at(-1);
    assert.equal(a.environment.ATKAFKA_TAP_HOST, `ws://tap:${bindPort}`);
    assert.equal(a.environment.ATKAFKA_TAP_METRICS_URL, `http://tap:${tap.environment.TAP_METRICS_LISTEN!.split(':').at(-1)}`);
    assert.match(tap.healthcheck!.test.join(' '), new RegExp(`127\\.0\\.0\\.1:${bindPort}/health`));

    let bin: string;
    try {
      bin = tapBinary();
    } catch (err) {
      t.skip(`the real Tap is not built here (${(err as Error).message})`);
      return;
    }
    const help = spawnSync(bin, ['run', '--help'], { encoding: 'utf8', timeout: 30_000 });
    const tapEnv = new Set([...help.stdout.matchAll(/\$([A-Z0-9_]+)/g)].map((m) => m[1]));
    assert.ok(tapEnv.has('TAP_BIND'), "Tap's help lists its variables");
    for (const name of Object.keys(tap.environment)) assert.ok(tapEnv.has(name), `${name} is a variable of tap run`);
  });
});
