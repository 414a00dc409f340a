/**
 * Loop-mode throughput of the replay relay to one fast local client that only
 * counts. The client runs in a child process so its websocket parsing does not
 * share the server's event loop. Usage:
 *   node test/replay/loop-throughput.bench.ts [frames=1000000] [frames-file]
 */
import { fork } from 'node:child_process';
import { WebSocket } from 'ws';
import { startReplayServer } from '../../src/replay/server.ts';
import { CORPUS_FRAMES } from './helpers.ts';

const args = process.argv.slice(2);

if (args[0] === 'client') {
  const [, url = '', countArg = '0'] = args;
  const target = Number(countArg);
  let frames = 0;
  let bytes = 0;
  let started = 0;
  const ws = new WebSocket(url);
  ws.on('open', () => {
    started = performance.now();
  });
  ws.on('message', (data: Buffer) => {
    frames++;
    bytes += data.byteLength;
    if (frames === target) {
      const seconds = (performance.now() - started) / 1000;
      process.send?.({ frames, bytes, seconds });
      ws.terminate();
    }
  });
} else {
  const target = Number(args[0] ?? 1_000_000);
  const path = args[1] ?? CORPUS_FRAMES;
  await using server = await startReplayServer({ frames: path, loop: true, limit: target });
  const cpuBefore = process.cpuUsage();
  const child = fork(import.meta.filename, ['client', server.subscribeUrl, String(target)]);
  const result = await new Promise<{ frames: number; bytes: number; seconds: number }>((resolve) => child.once('message', resolve as never));
  const cpu = process.cpuUsage(cpuBefore);
  child.kill();
  const mb = result.bytes / 1e6;
  console.log(
    `${result.frames} frames, ${mb.toFixed(0)} MB in ${result.seconds.toFixed(2)} s: ` +
      `${Math.round(result.frames / result.seconds)} frames/s, ${(mb / result.seconds).toFixed(0)} MB/s; ` +
      `server CPU ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s, peak RSS ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`,
  );
}
