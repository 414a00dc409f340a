// A throwaway PostgreSQL (Debian's server binaries) for the AppView: its own
// data folder, loopback TCP, no durability, gone when stopped.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { LOOPBACK, freePort } from './common.ts';

export interface Postgres {
  url: string;
  stop(): Promise<void>;
}

/** The folder with initdb and postgres: $PG_BINDIR, else Debian's newest /usr/lib/postgresql/N/bin, else pg_config's. */
function binDir(): string {
  if (process.env.PG_BINDIR) return process.env.PG_BINDIR;
  const base = '/usr/lib/postgresql';
  const majors = existsSync(base) ? readdirSync(base).filter((d) => /^\d+$/.test(d)).sort((a, b) => Number(b) - Number(a)) : [];
  for (const m of majors) if (existsSync(join(base, m, 'bin', 'postgres'))) return join(base, m, 'bin');
  try {
    return execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error('no PostgreSQL server found (Debian package "postgresql"; or set PG_BINDIR)');
  }
}

export async function startPostgres(): Promise<Postgres> {
  const bin = binDir();
  const dir = mkdtempSync(join(tmpdir(), 'atkafka-peers-pg-'));
  const data = join(dir, 'data');
  // PostgreSQL refuses to run as root: then run it as the "postgres" user.
  const asRoot = process.getuid?.() === 0;
  let prefix: string[] = [];
  if (asRoot) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
    prefix = ['--reuid=postgres', '--regid=postgres', '--init-groups'];
  }
  const run = (args: string[]) => (asRoot ? ['setpriv', [...prefix, '--', ...args]] : [args[0]!, args.slice(1)]) as [string, string[]];

  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  try {
    const [cmd, argv] = run([join(bin, 'initdb'), '-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
    execFileSync(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    cleanup();
    throw new Error(`initdb failed: ${(err as { stderr?: Buffer }).stderr?.toString() ?? err}`);
  }

  const port = await freePort();
  // --pdeathsig: if this process dies without stopping it, the kernel stops the server.
  const [cmd, argv] = run([
    join(bin, 'postgres'),
    '-D', data, '-p', String(port), '-k', dir,
    '-c', `listen_addresses=${LOOPBACK}`,
    '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off',
  ]);
  const child: ChildProcess = asRoot
    ? spawn(cmd, ['--pdeathsig=SIGINT', ...argv], { stdio: ['ignore', 'ignore', 'pipe'] })
    : spawn('setpriv', ['--pdeathsig=SIGINT', '--', cmd, ...argv], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const exited = new Promise<void>((ok) => child.once('exit', () => ok()));
  await new Promise<void>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`postgres not ready after 30 s:\n${log}`)), 30_000);
    child.stderr!.on('data', (d: Buffer) => {
      log += d.toString();
      if (log.includes('database system is ready to accept connections')) {
        clearTimeout(timer);
        ok();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      fail(new Error(`postgres exited with ${code}:\n${log}`));
    });
  }).catch((err) => {
    child.kill('SIGKILL');
    cleanup();
    throw err;
  });
  child.stderr!.resume();

  return {
    url: `postgresql://postgres@${LOOPBACK}:${port}/postgres`,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGINT'); // fast shutdown
        await Promise.race([exited, new Promise((ok) => setTimeout(ok, 5000))]);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
      cleanup();
    },
  };
}
