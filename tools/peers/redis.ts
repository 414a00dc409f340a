// A throwaway Redis (Debian's redis-server) for @atproto/dev-env's TestNetwork
// (it insists on REDIS_HOST) and the PDS's rate limiter: loopback only, no
// persistence, a temp folder as its cwd, gone when stopped or when this
// process dies (setpriv --pdeathsig).

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { LOOPBACK, freePort } from './common.ts';

export interface Redis {
  /** 127.0.0.1:PORT (the form REDIS_HOST and the PDS's redisScratchAddress take) */
  host: string;
  stop(): Promise<void>;
}

/** $REDIS_SERVER, else Debian's /usr/bin/redis-server. */
function binary(): string {
  const bin = process.env.REDIS_SERVER ?? '/usr/bin/redis-server';
  if (!existsSync(bin)) throw new Error(`no ${bin} (Debian package "redis-server"; or set REDIS_SERVER)`);
  return bin;
}

export async function startRedis(): Promise<Redis> {
  const bin = binary();
  const dir = mkdtempSync(join(tmpdir(), 'atkafka-peers-redis-'));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  const port = await freePort();
  // Not daemonized: a child of this process, killed by the kernel if this process dies.
  const child: ChildProcess = spawn(
    'setpriv',
    ['--pdeathsig=SIGTERM', '--', bin, '--port', String(port), '--bind', LOOPBACK, '--save', '', '--appendonly', 'no', '--dir', dir],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let log = '';
  const exited = new Promise<void>((ok) => child.once('exit', () => ok()));
  await new Promise<void>((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`redis-server not ready after 15 s:\n${log}`)), 15_000);
    const onData = (d: Buffer) => {
      log += d.toString();
      if (log.includes('Ready to accept connections')) {
        clearTimeout(timer);
        ok();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      fail(new Error(`redis-server exited with ${code ?? signal}:\n${log}`));
    });
  }).catch((err) => {
    child.kill('SIGKILL');
    cleanup();
    throw err;
  });
  child.stdout!.resume();
  child.stderr!.resume();

  return {
    host: `${LOOPBACK}:${port}`,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM'); // redis-server shuts down at once (nothing to save)
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([exited, new Promise((ok) => (timer = setTimeout(ok, 5000)))]);
        clearTimeout(timer); // else it holds the caller's event loop for 5 s after Redis is gone
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGKILL');
          await exited;
        }
      }
      cleanup();
    },
  };
}
