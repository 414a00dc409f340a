// Runs the real `atkafka firehose relay` CLI as a child process, as a user would.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../bin/atkafka.js', import.meta.url));

export interface Bridge {
  readonly child: ChildProcess;
  readonly metricsUrl: string;
  /** stderr so far (JSON log lines) */
  logs(): string;
  /** Resolves with the exit code (or signal name). */
  readonly exited: Promise<number | string>;
  metrics(): Promise<string>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Enrichment is on by default and would ask https://plc.directory, which these
 * machines cannot reach: tests that are not about enrichment turn it off, tests
 * that are name their PLC (and so never reach the network). Only the firehose
 * commands enrich.
 */
function offlineByDefault(args: string[]): string[] {
  const aboutIdentity = args.some((a) => a === '--plc-host' || a.startsWith('--plc-host=') || a === '--enrich' || a.startsWith('--enrich='));
  return aboutIdentity ? args : ['--enrich=false', ...args];
}

export function startBridge(args: string[], env: Record<string, string> = {}): Promise<Bridge> {
  return startCommand(['firehose', 'relay'], args, env);
}

/** Any source command of the CLI (`['firehose', 'tap']`, ...), with metrics on a free port. */
export async function startCommand(command: string[], args: string[], env: Record<string, string> = {}): Promise<Bridge> {
  const port = await freePort();
  const child = spawn(process.execPath, [BIN, ...command, '--metrics-listen-address', `127.0.0.1:${port}`, ...(command[0] === 'firehose' ? offlineByDefault(args) : args)], {
    env: { ...cleanEnv(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout!.resume();
  const exited = new Promise<number | string>((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const metricsUrl = `http://127.0.0.1:${port}/metrics`;
  return {
    child,
    metricsUrl,
    logs: () => stderr,
    exited,
    metrics: async () => (await fetch(metricsUrl)).text(),
  };
}

/** The test runner's own ATKAFKA_* settings must not leak into the bridge. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('ATKAFKA_') || k === 'DEBUG' || k === 'METRICS_LISTEN_ADDRESS') delete env[k];
  return env;
}

/** Reads one sample of a Prometheus text exposition (sum over matching series). */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const labelText = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => labelText.includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}

export async function readCursor(path: string): Promise<number | undefined> {
  try {
    return (JSON.parse(await readFile(path, 'utf8')) as { seq: number }).seq;
  } catch {
    return undefined;
  }
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
