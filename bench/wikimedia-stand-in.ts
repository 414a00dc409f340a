// For `npm run bench -- wikimedia` only: the Wikimedia EventStreams stand-in (test/support/wikimedia-server.ts)
// in its own process, so its CPU is not the bridge's.
//   node bench/wikimedia-stand-in.ts STORED RATE   -> prints http://127.0.0.1:PORT (the --url)
// STORED events (the real recentchange fixture looped with fresh offsets and ids) are served from `since`;
// then RATE fresh events per second are pushed, in 10 ms steps, until stdin closes.
import { loadWikimediaFixture, loopWikimediaEvents, startWikimediaServer, type WikimediaEvent } from '../test/support/wikimedia-server.ts';

const stored = Number(process.argv[2] ?? 100_000);
const rate = Number(process.argv[3] ?? 0);
const gen = loopWikimediaEvents(loadWikimediaFixture(), Number.MAX_SAFE_INTEGER, { stepMs: 1, startMs: Date.now() - stored - 60_000 });
const srv = await startWikimediaServer({ port: 0 });
for (let i = 0; i < stored; i += 10_000) {
  const batch: WikimediaEvent[] = [];
  for (let j = i; j < Math.min(stored, i + 10_000); j++) batch.push(gen.next().value as WikimediaEvent);
  srv.push(...batch);
}
process.stdout.write(`${srv.httpUrl}\n`);
if (rate > 0) {
  const t0 = performance.now();
  let sent = 0;
  setInterval(() => {
    const due = Math.floor(((performance.now() - t0) * rate) / 1000) - sent;
    if (due <= 0) return;
    const batch: WikimediaEvent[] = [];
    for (let i = 0; i < due; i++) batch.push(gen.next().value as WikimediaEvent);
    sent += due;
    srv.push(...batch);
  }, 10);
}
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
