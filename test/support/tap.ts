// The real Tap (bluesky-social/indigo cmd/tap) as a child process, for tests.
//   tapBinary(): the binary scripts/tap.sh built and cached (scripts/setup.sh runs it)
//   startTap(): Tap on a free loopback port with a fresh SQLite database, following a
//               relay (a PDS serves subscribeRepos itself) and resolving DIDs on a PLC
// What Tap sends and expects on /channel: docs/tap-protocol.md.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const TAP_SH = fileURLToPath(new URL('../../scripts/tap.sh', import.meta.url));

export interface StartTapOptions {
  /** http(s) URL of a relay; a PDS serving com.atproto.sync.subscribeRepos will do (TAP_RELAY_URL) */
  relayUrl: string;
  /** the PLC directory Tap resolves DIDs (and so each repo's PDS and signing key) with (TAP_PLC_URL) */
  plcUrl: string;
  /** how long an unacked event waits before it is sent again (TAP_RETRY_TIMEOUT; Tap's default 60 s) */
  retryTimeoutMs?: number;
  /** HTTP Basic `admin:<password>` on every endpoint, /health and /channel included (TAP_ADMIN_PASSWORD) */
  adminPassword?: string;
  /** fire-and-forget: a successful socket write counts as the ack (TAP_DISABLE_ACKS) */
  disableAcks?: boolean;
  /** more TAP_* settings (`tap run --help`); they win over the ones set here */
  extraEnv?: Record<string, string>;
  /**
   * Use this SQLite file (kept on dispose) instead of a fresh one in a temp folder: start
   * a second Tap on it to see what survives a restart (unacked events, the cursor).
   */
  dbPath?: string;
  /** until /health answers (default 30 s) */
  timeoutMs?: number;
}

export interface TapPeer extends AsyncDisposable {
  /** http://127.0.0.1:PORT, no trailing slash */
  readonly url: string;
  /** ws://127.0.0.1:PORT/channel (send `authorization` yourself when adminPassword is set: see `headers`) */
  readonly channelUrl: string;
  /** `{ authorization: 'Basic ...' }` when adminPassword is set, else `{}`: for /channel and other requests */
  readonly headers: Record<string, string>;
  /** the SQLite file (TAP_DATABASE_URL=sqlite://<dbPath>), removed on dispose unless opts.dbPath named it */
  readonly dbPath: string;
  /** POST /repos/add {"dids": [...]}: Tap backfills each with getRepo from its PDS, then follows it live */
  addRepos(dids: string[]): Promise<void>;
  /** GET /stats/{repo-count,record-count,outbox-buffer,resync-buffer,cursors}, merged into one object */
  stats(): Promise<Record<string, unknown>>;
  /** GET /info/<did>: {did, handle, state, rev, error, retries, records} */
  info(did: string): Promise<Record<string, unknown>>;
  /** http://127.0.0.1:PORT of Tap's Prometheus + pprof listener (TAP_METRICS_LISTEN; no auth) */
  readonly metricsUrl: string;
  /** GET {metricsUrl}/metrics, the tap_* samples as { name: value } (e.g. tap_event_cache_size) */
  metrics(): Promise<Record<string, number>>;
  /** Tap's output so far (JSON log lines on stdout, and stderr) */
  logs(): string;
  readonly child: ChildProcess;
}

/** The cached Tap binary scripts/tap.sh builds, or ATKAFKA_TAP_BIN; throws (run setup) when it is not there. */
export function tapBinary(): string {
  const override = process.env.ATKAFKA_TAP_BIN;
  if (override) {
    if (!existsSync(override)) throw new Error(`ATKAFKA_TAP_BIN=${override} does not exist`);
    return override;
  }
  // The same path scripts/tap.sh prints; the pinned version is read from the script itself.
  const version = /^version=(\S+)$/m.exec(readFileSync(TAP_SH, 'utf8'))?.[1];
  if (!version) throw new Error(`no version= line in ${TAP_SH}`);
  const cache = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  const bin = join(cache, 'atkafka', 'tap', version, 'tap');
  if (!existsSync(bin)) {
    throw new Error(`Tap ${version} is not built (${bin}): run scripts/setup.sh (or bash scripts/tap.sh)`);
  }
  return bin;
}

export async function startTap(opts: StartTapOptions): Promise<TapPeer> {
  const bin = tapBinary();
  const dir = await mkdtemp(join(tmpdir(), 'atkafka-tap-'));
  const dbPath = opts.dbPath ?? join(dir, 'tap.db');
  const headers: Record<string, string> = opts.adminPassword
    ? { authorization: `Basic ${Buffer.from(`admin:${opts.adminPassword}`).toString('base64')}` }
    : {};
  try {
    // A port we picked can be taken before Tap binds it: try a few.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      let metricsPort = await freePort();
      while (metricsPort === port) metricsPort = await freePort();
      try {
        return await launch(bin, port, metricsPort, dir, dbPath, headers, opts);
      } catch (err) {
        if (attempt < 3 && err instanceof PortTaken) continue;
        throw err;
      }
    }
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

class PortTaken extends Error {}

async function launch(
  bin: string,
  port: number,
  metricsPort: number,
  dir: string,
  dbPath: string,
  headers: Record<string, string>,
  opts: StartTapOptions,
): Promise<TapPeer> {
  const url = `http://127.0.0.1:${port}`;
  const env: Record<string, string> = {
    TAP_BIND: `127.0.0.1:${port}`,
    TAP_DATABASE_URL: `sqlite://${dbPath}`,
    TAP_RELAY_URL: opts.relayUrl,
    TAP_PLC_URL: opts.plcUrl,
    // Not needed against a local PDS: TAP_NO_REPLAY only matters on a restart with a
    // saved cursor, and every startTap() has a new, empty database (no cursor: Tap
    // connects to the firehose head, as it would with TAP_NO_REPLAY).
    TAP_LOG_LEVEL: 'info',
    TAP_METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
  };
  if (opts.retryTimeoutMs !== undefined) env.TAP_RETRY_TIMEOUT = `${opts.retryTimeoutMs}ms`;
  if (opts.adminPassword !== undefined) env.TAP_ADMIN_PASSWORD = opts.adminPassword;
  if (opts.disableAcks) env.TAP_DISABLE_ACKS = 'true';
  Object.assign(env, opts.extraEnv);

  // Tap does not watch its stdin: with setpriv --pdeathsig the kernel ends it when this
  // process dies, so a crashed test leaves no Tap behind (as the PDS peer does for PostgreSQL).
  const base = { ...process.env };
  for (const k of Object.keys(base)) if (k.startsWith('TAP_')) delete base[k];
  const [cmd, args] = hasSetpriv() ? ['setpriv', ['--pdeathsig', 'KILL', bin, 'run']] : [bin, ['run']];
  // cwd: Tap loads a .env file from its working directory (godotenv/autoload).
  const child = spawn(cmd, args, { cwd: dir, env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((ok) => child.once('exit', () => ok()));
  const tail = () => out.split('\n').slice(-40).join('\n');

  const dispose = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM'); // graceful: Tap saves its cursor and closes the database
      const stopped = await Promise.race([exited.then(() => true), sleep(15_000).then(() => false)]);
      if (!stopped) {
        child.kill('SIGKILL');
        await exited;
      }
    }
    await rm(dir, { recursive: true, force: true });
  };

  // Ready when GET /health answers {"status":"ok"}.
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      if (/address already in use/.test(out)) throw new PortTaken(`port ${port} taken`);
      throw new Error(`tap exited (${child.exitCode ?? child.signalCode}) before /health answered:\n${tail()}`);
    }
    try {
      const res = await fetch(`${url}/health`, { headers, signal: AbortSignal.timeout(1_000) });
      if (res.ok && ((await res.json()) as { status?: string }).status === 'ok') break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await exited;
      throw new Error(`tap: no /health within ${opts.timeoutMs ?? 30_000} ms:\n${tail()}`);
    }
    await sleep(50);
  }

  const getJson = async (path: string) => {
    const res = await fetch(`${url}${path}`, { headers });
    if (!res.ok) throw new Error(`tap GET ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as Record<string, unknown>;
  };

  return {
    url,
    channelUrl: `ws://127.0.0.1:${port}/channel`,
    headers,
    dbPath,
    child,
    logs: () => out,
    async addRepos(dids) {
      const res = await fetch(`${url}/repos/add`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify({ dids }),
      });
      if (!res.ok) throw new Error(`tap POST /repos/add: ${res.status} ${await res.text()}`);
    },
    async stats() {
      const parts = await Promise.all(
        ['repo-count', 'record-count', 'outbox-buffer', 'resync-buffer', 'cursors'].map((s) => getJson(`/stats/${s}`)),
      );
      return Object.assign({}, ...parts);
    },
    // not percent-encoded: Tap (echo) matches the raw path, and a DID is path-safe
    metricsUrl: `http://127.0.0.1:${metricsPort}`,
    async metrics() {
      const res = await fetch(`http://127.0.0.1:${metricsPort}/metrics`);
      if (!res.ok) throw new Error(`tap GET /metrics: ${res.status}`);
      const out: Record<string, number> = {};
      for (const line of (await res.text()).split('\n')) {
        const m = /^(tap_[a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
        if (m) out[m[1]!] = Number(m[2]);
      }
      return out;
    },
    info: (did) => getJson(`/info/${did}`),
    [Symbol.asyncDispose]: dispose,
  };
}

let setprivFound: boolean | undefined;
function hasSetpriv(): boolean {
  setprivFound ??= spawnSync('setpriv', ['--version'], { stdio: 'ignore' }).status === 0;
  return setprivFound;
}

function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => ok(port));
    });
  });
}

const sleep = (ms: number) => new Promise<void>((ok) => setTimeout(ok, ms));
