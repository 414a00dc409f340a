// A throwaway single-node Apache Kafka (KRaft, broker+controller in one JVM)
// on loopback, for tests, benchmarks and the demo. The jars come from Maven
// Central through fetch.sh; nothing is installed system-wide.
//
// Startup is kept to about a second by three things: a C1-only JIT, a CDS
// class archive made once by prepareClassArchive(), and formatting the
// storage once per Kafka version (a copy of that template, with a fresh
// cluster id, replaces running kafka.tools.StorageTool for every broker).

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import {
  accessSync, constants, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, closeSync,
  readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync, realpathSync,
} from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Admin, FindCoordinatorKeyTypes, Producer } from '@platformatic/kafka';

const here = dirname(fileURLToPath(import.meta.url));
const HOST = '127.0.0.1';

export interface LocalBrokerOptions {
  /** PLAINTEXT port; default: a free port. The controller port is always picked freely. */
  port?: number;
  /** Extra server.properties entries; they win over the defaults below. */
  config?: Record<string, string | number | boolean>;
  /** C1-only JIT: starts ~1 s sooner but peaks lower. Default true; turn off for benchmarks. */
  fastStartup?: boolean;
  /** How long to wait for the broker to serve requests. Default 60 s (a cold JVM on a busy CI box). */
  startTimeoutMs?: number;
  /** Log4j level for the broker's log file. Default WARN (env ATKAFKA_KAFKA_LOG_LEVEL). */
  logLevel?: string;
  /** Keep the temp folder (data + logs) after stop(), e.g. to read kafka.log. Default false. */
  keepFiles?: boolean;
  /** Extra JVM options, appended last (env ATKAFKA_KAFKA_JVM_OPTS is appended after these). */
  jvmOptions?: string[];
}

export interface LocalBroker {
  /** host:port of the PLAINTEXT listener. */
  readonly bootstrap: string;
  readonly port: number;
  /** Temp folder holding data/, server.properties and kafka.log. */
  readonly dir: string;
  readonly logFile: string;
  /** Whether the JVM is currently running. */
  readonly running: boolean;
  /** The JVM's process id while it runs (benchmarks read its CPU time from /proc). */
  readonly pid: number | undefined;
  /** Kill the JVM (default SIGKILL, a crash; SIGTERM is a clean shutdown), keeping data and ports. */
  halt(signal?: 'SIGKILL' | 'SIGTERM'): Promise<void>;
  /** Start the JVM again on the same ports with the same data; resolves once it serves requests. */
  resume(): Promise<void>;
  /** Stop for good and delete the temp folder (unless keepFiles). Idempotent. */
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

// ---------------------------------------------------------------- jars, java

/** Runs fetch.sh (a no-op when cached) and returns the libs folder. */
export function kafkaLibs(): string {
  const r = spawnSync('bash', [join(here, 'fetch.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) throw new Error(`scripts/kafka/fetch.sh failed (exit ${r.status ?? r.signal})`);
  const libs = r.stdout.trim().split('\n').pop() ?? '';
  if (!existsSync(libs)) throw new Error(`scripts/kafka/fetch.sh printed no libs folder (got ${JSON.stringify(libs)})`);
  return libs;
}

function findJava(): string {
  const home = process.env.JAVA_HOME;
  if (home && existsSync(join(home, 'bin', 'java'))) return join(home, 'bin', 'java');
  for (const d of (process.env.PATH ?? '').split(delimiter)) {
    const p = join(d, 'java');
    try { accessSync(p, constants.X_OK); return p; } catch { /* next */ }
  }
  throw new Error('java not found: install a JDK 17+ (Kafka 4 needs it) or set JAVA_HOME');
}

function findSetpriv(): string | undefined {
  for (const p of ['/usr/bin/setpriv', '/bin/setpriv']) if (existsSync(p)) return p;
  return undefined;
}

/** A CDS archive is only valid for one JVM build and one exact class path. */
function classArchivePath(java: string, libs: string): string {
  const real = realpathSync(java);
  const st = statSync(real);
  const jars = readdirSync(libs).sort().join(',');
  const key = createHash('sha256').update(`${real}|${st.size}|${st.mtimeMs}|${jars}`).digest('hex').slice(0, 16);
  return join(dirname(libs), 'cds', `${key}.jsa`);
}

function jvmOptions(opts: LocalBrokerOptions, log4jConfig: string): string[] {
  const out = ['-Xms128m', '-Xmx512m', '-XX:+UseSerialGC', '-Xshare:auto', '-XX:-UsePerfData',
    '-Djava.awt.headless=true', `-Dlog4j2.configurationFile=${log4jConfig}`];
  if (opts.fastStartup ?? true) out.push('-XX:TieredStopAtLevel=1');
  out.push(...(opts.jvmOptions ?? []));
  const env = process.env.ATKAFKA_KAFKA_JVM_OPTS?.trim();
  if (env) out.push(...env.split(/\s+/));
  return out;
}

// ---------------------------------------------------------------- config files

function serverProperties(dataDir: string, port: number, controllerPort: number, extra: LocalBrokerOptions['config']): string {
  const props: Record<string, string | number | boolean> = {
    'process.roles': 'broker,controller',
    'node.id': 1,
    'controller.quorum.voters': `1@${HOST}:${controllerPort}`,
    'listeners': `PLAINTEXT://${HOST}:${port},CONTROLLER://${HOST}:${controllerPort}`,
    'advertised.listeners': `PLAINTEXT://${HOST}:${port}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'log.dirs': dataDir,
    'num.partitions': 1,
    'default.replication.factor': 1,
    'min.insync.replicas': 1,
    'auto.create.topics.enable': false,
    // Single node: every internal topic must fit on one replica.
    'offsets.topic.replication.factor': 1,
    'offsets.topic.num.partitions': 1,
    'transaction.state.log.replication.factor': 1,
    'transaction.state.log.min.isr': 1,
    'transaction.state.log.num.partitions': 1,
    'share.coordinator.state.topic.replication.factor': 1,
    'share.coordinator.state.topic.min.isr': 1,
    // Tests should not wait 3 s for a consumer group's first rebalance.
    'group.initial.rebalance.delay.ms': 0,
    // After a crash (halt with SIGKILL) the restarted broker cannot register
    // until its old session expires: 3 s instead of 9 s.
    'broker.session.timeout.ms': 3000,
    'broker.heartbeat.interval.ms': 500,
    ...extra,
  };
  return Object.entries(props).map(([k, v]) => `${k}=${String(v)}`).join('\n') + '\n';
}

function log4jProperties(logFile: string, level: string): string {
  return [
    'status = error',
    'appender.file.type = File',
    'appender.file.name = FILE',
    `appender.file.fileName = ${logFile}`,
    'appender.file.layout.type = PatternLayout',
    'appender.file.layout.pattern = [%d] %p %m (%c)%n',
    `rootLogger.level = ${level}`,
    'rootLogger.appenderRef.file.ref = FILE',
    // One line that says the broker is up, whatever the level.
    'logger.server.name = kafka.server.KafkaRaftServer',
    'logger.server.level = INFO',
    '',
  ].join('\n');
}

// ---------------------------------------------------------------- storage format

/** Kafka's Uuid text form: 16 random bytes, URL-safe base64 without padding. */
function kafkaUuid(): string {
  return randomBytes(16).toString('base64url');
}

/**
 * `kafka.tools.StorageTool format` once per Kafka version into a template.
 * Its output is a meta.properties (node id, cluster id, directory id) and a
 * bootstrap.checkpoint (feature levels); each broker gets a copy with fresh ids.
 */
function formatTemplate(java: string, libs: string): string {
  const template = join(dirname(libs), 'format-template');
  if (existsSync(join(template, 'meta.properties'))) return template;
  const work = mkdtempSync(join(dirname(libs), '.format-'));
  try {
    const data = join(work, 'data');
    const props = join(work, 'server.properties');
    const log4j = join(work, 'log4j2.properties');
    writeFileSync(props, serverProperties(data, 1, 2, {}));
    writeFileSync(log4j, log4jProperties(join(work, 'format.log'), 'WARN'));
    const r = spawnSync(java, ['-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-Xshare:auto', `-Dlog4j2.configurationFile=${log4j}`,
      '-cp', join(libs, '*'), 'kafka.tools.StorageTool', 'format', '-t', kafkaUuid(), '-c', props], { encoding: 'utf8' });
    if (r.status !== 0 || !existsSync(join(data, 'meta.properties'))) {
      throw new Error(`kafka.tools.StorageTool format failed (exit ${r.status ?? r.signal}):\n${r.stdout}${r.stderr}`);
    }
    try { renameSync(data, template); } catch (e) {
      // Another process won the race; its template is as good as ours.
      if (!existsSync(join(template, 'meta.properties'))) throw e;
    }
    return template;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function formatFromTemplate(template: string, dataDir: string): void {
  cpSync(template, dataDir, { recursive: true });
  const meta = join(dataDir, 'meta.properties');
  const text = readFileSync(meta, 'utf8')
    .replace(/^cluster\.id=.*$/m, `cluster.id=${kafkaUuid()}`)
    .replace(/^directory\.id=.*$/m, `directory.id=${kafkaUuid()}`);
  writeFileSync(meta, text);
}

// ---------------------------------------------------------------- ports, readiness

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, HOST, () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: HOST, port });
    s.setTimeout(1000);
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => { s.destroy(); resolve(false); });
    s.once('timeout', () => { s.destroy(); resolve(false); });
  });
}

/** Serving = it answers metadata and its controller can create (and delete) a topic. */
async function servesRequests(bootstrap: string): Promise<boolean> {
  const admin = new Admin({ clientId: 'atkafka-broker-probe', bootstrapBrokers: [bootstrap], retries: 0, timeout: 3000, connectTimeout: 1000 });
  try {
    const md = await admin.metadata({ topics: [] });
    if (!md.brokers.has(1)) return false;
    const probe = `atkafka-ready-probe-${randomBytes(4).toString('hex')}`;
    await admin.createTopics({ topics: [probe], partitions: 1, replicas: 1 });
    await admin.deleteTopics({ topics: [probe] });
    return true;
  } catch {
    return false;
  } finally {
    await admin.close().catch(() => {});
  }
}

/**
 * The first consumer-group lookup (which creates __consumer_offsets) and the
 * first idempotent-producer id of a new broker are refused until the broker
 * has set them up, and clients back off a whole second. Do both here, with
 * short retries, so tests don't each pay that second.
 */
async function warmUp(bootstrap: string): Promise<void> {
  const common = { clientId: 'atkafka-broker-probe', bootstrapBrokers: [bootstrap], retries: 100, retryDelay: 50, timeout: 5000 };
  const admin = new Admin(common);
  const producer = new Producer({ ...common, idempotent: true });
  try {
    await admin.findCoordinator({ keyType: FindCoordinatorKeyTypes.GROUP, keys: ['atkafka-warmup'] });
    await producer.initIdempotentProducer({});
  } finally {
    await producer.close().catch(() => {});
    await admin.close().catch(() => {});
  }
}

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(none)';
  }
}

// ---------------------------------------------------------------- cleanup on exit

// Brokers still running when this process ends are killed. setpriv's
// parent-death signal also covers a SIGKILLed test process; this hook covers
// systems without setpriv and removes the temp folders.
const live = new Set<{ pid: () => number | undefined; dir: string; keep: boolean }>();
let exitHook = false;
function registerExitHook(): void {
  if (exitHook) return;
  exitHook = true;
  process.on('exit', () => {
    for (const b of live) {
      const pid = b.pid();
      if (pid) try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ }
      if (!b.keep) try { rmSync(b.dir, { recursive: true, force: true }); } catch { /* the JVM may still be dying */ }
    }
  });
}

/**
 * A test process killed with SIGKILL takes its broker along (parent-death
 * signal) but leaves the temp folder; remove those whose owner is gone.
 */
function sweepOrphans(): void {
  let names: string[];
  try { names = readdirSync(tmpdir()); } catch { return; }
  for (const name of names) {
    if (!name.startsWith('atkafka-broker-')) continue;
    const dir = join(tmpdir(), name);
    let owner: number;
    try { owner = Number(readFileSync(join(dir, 'owner.pid'), 'utf8')); } catch { continue; } // kept on purpose, or not ours
    if (!Number.isInteger(owner) || owner <= 0) continue;
    try { process.kill(owner, 0); continue; } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') continue;
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- the broker

interface Internal extends LocalBrokerOptions {
  /** Used by prepareClassArchive: dump the loaded classes at JVM exit. */
  archiveAtExit?: string;
}

export async function launchBroker(options: LocalBrokerOptions = {}): Promise<LocalBroker> {
  return launch(options);
}

async function launch(opts: Internal): Promise<LocalBroker> {
  const java = findJava();
  const libs = kafkaLibs();
  const template = formatTemplate(java, libs);
  const archive = classArchivePath(java, libs);
  const setpriv = findSetpriv();
  const level = opts.logLevel ?? process.env.ATKAFKA_KAFKA_LOG_LEVEL ?? 'WARN';
  const timeout = opts.startTimeoutMs ?? 60_000;

  sweepOrphans();
  const dir = mkdtempSync(join(tmpdir(), 'atkafka-broker-'));
  if (!opts.keepFiles) writeFileSync(join(dir, 'owner.pid'), String(process.pid));
  const dataDir = join(dir, 'data');
  const logFile = join(dir, 'kafka.log');
  const outFile = join(dir, 'jvm.out');
  const propsFile = join(dir, 'server.properties');
  const log4jFile = join(dir, 'log4j2.properties');
  writeFileSync(log4jFile, log4jProperties(logFile, level));
  formatFromTemplate(template, dataDir);

  const jvm = jvmOptions(opts, log4jFile);
  if (opts.archiveAtExit) jvm.push(`-XX:ArchiveClassesAtExit=${opts.archiveAtExit}`);
  else if (existsSync(archive)) jvm.push(`-XX:SharedArchiveFile=${archive}`);

  let port = opts.port ?? 0;
  let controllerPort = 0;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let stopped = false;
  const entry = { pid: () => (child && child.exitCode === null && child.signalCode === null ? child.pid : undefined), dir, keep: opts.keepFiles ?? false };
  live.add(entry);
  registerExitHook();

  const spawnJvm = (): void => {
    const out = openSync(outFile, 'a');
    const argv = [...jvm, '-cp', join(libs, '*'), 'kafka.Kafka', propsFile];
    // detached: its own process group, so kill(-pid) reaches it and a Ctrl-C
    // in the terminal is handled by us, not delivered straight to the JVM.
    child = setpriv
      ? spawn(setpriv, ['--pdeathsig', 'SIGKILL', '--', java, ...argv], { detached: true, stdio: ['ignore', out, out] })
      : spawn(java, argv, { detached: true, stdio: ['ignore', out, out] });
    closeSync(out);
    const c = child;
    exited = new Promise((resolve) => {
      if (c.exitCode !== null || c.signalCode !== null) resolve();
      else c.once('exit', () => resolve());
    });
    c.once('error', () => {}); // reported through 'exit' / the readiness loop
  };

  const waitReady = async (): Promise<'ready' | 'exited'> => {
    const deadline = Date.now() + timeout;
    const c = child;
    while (Date.now() < deadline) {
      if (!c || c.exitCode !== null || c.signalCode !== null) return 'exited';
      if (await canConnect(port) && await servesRequests(`${HOST}:${port}`)) {
        try {
          await warmUp(`${HOST}:${port}`);
          return 'ready';
        } catch { /* not settled yet: probe again */ }
      }
      await sleep(100);
    }
    throw new Error(`Kafka broker on ${HOST}:${port} not ready after ${timeout} ms; log ${logFile}:\n${tail(logFile)}\n${tail(outFile, 10)}`);
  };

  const kill = async (signal: NodeJS.Signals): Promise<void> => {
    const c = child;
    if (!c?.pid || c.exitCode !== null || c.signalCode !== null) return;
    try { process.kill(-c.pid, signal); } catch { /* already gone */ }
    await exited;
  };

  const start = async (fixedPorts: boolean): Promise<void> => {
    // A free port can be taken by someone else before the JVM binds it; on
    // a fresh start, pick new ports and try again.
    for (let attempt = 1; ; attempt++) {
      if (!fixedPorts) {
        port = opts.port ?? await freePort();
        controllerPort = await freePort();
        while (controllerPort === port) controllerPort = await freePort();
        writeFileSync(propsFile, serverProperties(dataDir, port, controllerPort, opts.config));
      }
      spawnJvm();
      let state: 'ready' | 'exited';
      try {
        state = await waitReady();
      } catch (e) {
        await kill('SIGKILL');
        throw e;
      }
      if (state === 'ready') return;
      const log = tail(logFile);
      const bindError = /Address already in use|BindException/.test(log + tail(outFile));
      if (fixedPorts || opts.port !== undefined || !bindError || attempt >= 3) {
        throw new Error(`Kafka broker exited during startup (code ${child?.exitCode ?? child?.signalCode}); log ${logFile}:\n${log}\n${tail(outFile, 10)}`);
      }
      rmSync(dataDir, { recursive: true, force: true });
      formatFromTemplate(template, dataDir);
    }
  };

  try {
    await start(false);
  } catch (e) {
    live.delete(entry);
    if (!entry.keep) rmSync(dir, { recursive: true, force: true });
    throw e;
  }

  const broker: LocalBroker = {
    get bootstrap() { return `${HOST}:${port}`; },
    get port() { return port; },
    dir,
    logFile,
    get running() { return entry.pid() !== undefined; },
    get pid() { return entry.pid(); },
    async halt(signal = 'SIGKILL') {
      if (stopped) throw new Error('broker was stopped');
      await kill(signal);
    },
    async resume() {
      if (stopped) throw new Error('broker was stopped');
      if (entry.pid() !== undefined) return;
      await start(true);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      // A clean shutdown is what writes the CDS archive; otherwise don't wait for one.
      await kill(opts.archiveAtExit ? 'SIGTERM' : 'SIGKILL');
      live.delete(entry);
      if (!entry.keep) rmSync(dir, { recursive: true, force: true });
    },
    [Symbol.asyncDispose]() { return this.stop(); },
  };
  return broker;
}

// ---------------------------------------------------------------- class archive

/**
 * Makes the CDS archive that takes ~1 s off every later broker start: runs a
 * broker through a create/produce/fetch cycle with -XX:ArchiveClassesAtExit
 * and shuts it down cleanly. A no-op when the archive for this JVM and these
 * jars exists. Returns its path, or undefined if the JVM made none.
 */
export async function prepareClassArchive(): Promise<string | undefined> {
  const java = findJava();
  const libs = kafkaLibs();
  const archive = classArchivePath(java, libs);
  if (existsSync(archive)) return archive;
  mkdirSync(dirname(archive), { recursive: true });
  const tmp = `${archive}.${process.pid}.tmp`;
  const broker = await launch({ archiveAtExit: tmp });
  try {
    await exercise(broker.bootstrap);
  } finally {
    await broker.stop();
  }
  if (!existsSync(tmp)) return undefined;
  renameSync(tmp, archive);
  return archive;
}

/** Loads the broker classes a test touches: topic admin, produce, fetch, groups. */
async function exercise(bootstrap: string): Promise<void> {
  const { Producer, Consumer, stringSerializers, stringDeserializers } = await import('@platformatic/kafka');
  const topic = 'atkafka-warmup';
  const admin = new Admin({ clientId: 'atkafka-warmup', bootstrapBrokers: [bootstrap] });
  const producer = new Producer({ clientId: 'atkafka-warmup', bootstrapBrokers: [bootstrap], serializers: stringSerializers, idempotent: true, compression: 'zstd' });
  const consumer = new Consumer({ clientId: 'atkafka-warmup', groupId: 'atkafka-warmup', bootstrapBrokers: [bootstrap], deserializers: stringDeserializers });
  try {
    await admin.createTopics({ topics: [topic], partitions: 2, replicas: 1 });
    await producer.send({ messages: [{ topic, key: 'k', value: 'v' }, { topic, key: 'k2', value: 'v2' }] });
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false });
    let n = 0;
    for await (const m of stream) {
      await m.commit();
      if (++n === 2) break;
    }
    await stream.close();
    await admin.listTopics();
    await admin.deleteTopics({ topics: [topic] });
  } finally {
    await consumer.close(true).catch(() => {});
    await producer.close().catch(() => {});
    await admin.close().catch(() => {});
  }
}
