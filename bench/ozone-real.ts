// ozone-events against the real Ozone (tools/peers/ozone.ts): the real CLI tailing a large event log
// into a real broker. Reports the backfill rate and atkafka's CPU per 1,000 events, then its cost at
// the rates moderation services really see: idle (a poll a second) and a steady few events per second.
//   node bench/ozone-real.ts [--events N] [--steady-rate R] [--seconds S]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';

import { metricValue, startCommand, waitFor } from '../test/support/bridge.ts';
import { repoRef, startOzone } from '../test/support/ozone.ts';
import { procCpuSeconds, startBroker } from './common.ts';

const { values } = parseArgs({ options: { events: { type: 'string', default: '20000' }, 'steady-rate': { type: 'string', default: '5' }, seconds: { type: 'string', default: '30' } } });
const N = Number(values.events);
const RATE = Number(values['steady-rate']);
const SECONDS = Number(values.seconds);

const rss = (pid: number) => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;

await using ozone = await startOzone({ rateLimits: false });
const broker = await startBroker();
const mod = await ozone.login(ozone.moderator.handle, ozone.moderator.password);
const comment = (i: number) => ozone.emit(mod, { $type: 'tools.ozone.moderation.defs#modEventComment', comment: `bench ${i}` }, repoRef(ozone.users[i % ozone.users.length]!.did));
for (let i = 0; i < 50; i++) await comment(i);
await ozone.cloneEvents(N - 50);
const q0 = performance.now();
const all = await ozone.queryAll();
const qS = (performance.now() - q0) / 1000;
console.log(`Ozone log: ${all.length.toLocaleString()} events (50 emitted, the rest cloned rows, a few automatic tags)`);
console.log(`Ozone alone (paging through it, 100 per page, one page at a time): ${qS.toFixed(1)} s = ${Math.round(all.length / qS).toLocaleString()} events/s`);

const b = await startCommand(
  ['ozone-events'],
  ['--bootstrap-servers', broker.bootstrap, '--output-topic', `bench-ozone-${Date.now()}`, '--pds-host', ozone.pdsUrl, '--identifier', ozone.moderator.handle, '--labeler-did', ozone.ozoneDid, '--settle-lag', '1s', '--cursor-file', ''],
  // BENCH_CHILD_NODE_OPTIONS: e.g. --cpu-prof for the bridge alone.
  { ATKAFKA_OZONE_PASSWORD: ozone.moderator.password, ...(process.env.BENCH_CHILD_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_CHILD_NODE_OPTIONS } : {}) },
);
const pid = b.child.pid!;
const produced = async () => {
  try {
    return metricValue(await b.metrics(), 'atkafka_produced_events', { status: 'ok' });
  } catch {
    return 0;
  }
};
await waitFor('the first poll', async () => {
  try {
    return metricValue(await b.metrics(), 'atkafka_ozone_polls') >= 1;
  } catch {
    return false;
  }
}, 60_000, 20);
const cpuStart = procCpuSeconds(pid);
const t0 = performance.now();
await waitFor('the backfill', async () => (await produced()) >= all.length, 600_000, 50);
const backfillS = (performance.now() - t0) / 1000;
const cpuBackfill = procCpuSeconds(pid) - cpuStart;
console.log(
  `backfill: ${all.length.toLocaleString()} events in ${backfillS.toFixed(1)} s = ${Math.round(all.length / backfillS).toLocaleString()} events/s; ` +
    `atkafka CPU ${cpuBackfill.toFixed(2)} s after start-up (${cpuStart.toFixed(2)} s) = ${((cpuBackfill / all.length) * 1e6).toFixed(0)} CPU-ms per 1,000 events; peak RSS ${rss(pid).toFixed(0)} MB`,
);

await sleep(2000);
let c0 = procCpuSeconds(pid);
await sleep(SECONDS * 1000);
const idle = procCpuSeconds(pid) - c0;
console.log(`idle (polling every 1 s): ${((idle / SECONDS) * 100).toFixed(2)}% of a core = ${((idle / SECONDS) * 3600).toFixed(1)} CPU-s per hour`);

c0 = procCpuSeconds(pid);
const before = await produced();
const start = performance.now();
let i = 0;
while (performance.now() - start < SECONDS * 1000) {
  await comment(100_000 + i++);
  await sleep(Math.max(0, start + (i * 1000) / RATE - performance.now()));
}
await waitFor('the steady events', async () => (await produced()) >= before + i, 60_000, 50);
const steady = procCpuSeconds(pid) - c0;
console.log(`steady ${RATE} events/s for ${SECONDS} s (${i} events): ${((steady / SECONDS) * 100).toFixed(2)}% of a core = ${((steady / i) * 1000).toFixed(2)} CPU-ms per event`);
console.log(`peak RSS ${rss(pid).toFixed(0)} MB`);

b.child.kill('SIGTERM');
await b.exited;
await broker.stop();
process.exit(0);
