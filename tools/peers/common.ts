// What every peer script here shares: loopback-only listening, one ready line
// on stdout, and a clean stop on SIGTERM/SIGINT (or when the parent goes away).

import net from 'node:net';

export const LOOPBACK = '127.0.0.1';

/**
 * Keep stdout for the ready line: the servers' libraries log with pino, off
 * unless LOG_ENABLED=true (then to stdout, or to the file LOG_DESTINATION; a
 * parent's stderr pipe is a socket, which pino cannot open by path), and some
 * call console.log. Call before importing any server package (their loggers
 * read the env at load).
 */
export function quietStdout(): void {
  process.env.LOG_ENABLED ??= 'false';
  console.log = console.error;
  console.info = console.error;
}

/**
 * Servers inside @atproto/pds, @atproto/bsky and @did-plc/server call
 * listen(port) with no host, which means every interface. A test peer has no
 * business there: default the host of every listen in this process to loopback.
 */
export function listenOnLoopbackOnly(): void {
  const orig = net.Server.prototype.listen;
  net.Server.prototype.listen = function (this: net.Server, ...args: unknown[]) {
    const [first, second] = args;
    if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
      if (typeof second !== 'string') args.splice(1, 0, LOOPBACK);
    } else if (first && typeof first === 'object' && !('path' in first) && !('fd' in first) && !('host' in first)) {
      args[0] = { ...first, host: LOOPBACK };
    } else if (first === undefined || typeof first === 'function') {
      args.unshift(0, LOOPBACK);
    }
    return (orig as (...a: unknown[]) => net.Server).apply(this, args);
  } as typeof net.Server.prototype.listen;
}

/** A free loopback port (0 asks the kernel). */
export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = net.createServer();
    srv.once('error', fail);
    srv.listen(0, LOOPBACK, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => ok(port));
    });
  });
}

/** The one line a parent waits for. */
export function ready(info: object): void {
  process.stdout.write(JSON.stringify(info) + '\n');
}

/**
 * Run `stop` once on SIGTERM/SIGINT, or when stdin closes if `withStdin`
 * (a parent that dies without signalling leaves no peer behind), then exit 0
 * (1 if stopping failed).
 */
export function onStop(stop: () => Promise<void>, withStdin: boolean): void {
  let stopping = false;
  const go = (why: string) => {
    if (stopping) return;
    stopping = true;
    const timer = setTimeout(() => {
      process.stderr.write(`peer: still stopping 10 s after ${why}; exiting\n`);
      process.exit(1);
    }, 10_000);
    timer.unref();
    stop().then(
      () => process.exit(0),
      (err) => {
        process.stderr.write(`peer: error while stopping: ${err?.stack ?? err}\n`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => go('SIGTERM'));
  process.once('SIGINT', () => go('SIGINT'));
  if (withStdin) {
    process.stdin.on('data', () => {});
    process.stdin.once('end', () => go('stdin closed'));
    process.stdin.once('error', () => go('stdin error'));
  }
}

/** Fail startup with one clear line on stderr and exit 1. */
export function die(msg: string): never {
  process.stderr.write(`peer: ${msg}\n`);
  process.exit(1);
}
