// For `npm run bench` only: replays a Tap backfill over Tap's /channel protocol (docs/tap-protocol.md) as
// fast as the client acknowledges, so atkafka's side of a backfill can be measured beyond what a real Tap
// on this machine delivers. The tests run the real Tap.
//   node bench/tap-stand-in.ts EVENTS WINDOW   -> prints ws://127.0.0.1:PORT; on stdin close exits
// Events: record creates of the real sample's records (test/fixtures/tap), spread over 2,000 DIDs, each id
// once; at most WINDOW unacked at a time (Tap's outbox sends ahead the same way). On exit it prints
// {"acked": N, "duplicateAcks": N, "unknownAcks": N} on stdout.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { WebSocketServer, type WebSocket } from 'ws';

const total = Number(process.argv[2] ?? 1_000_000);
const window = Number(process.argv[3] ?? 10_000);
const sample = readFileSync(fileURLToPath(new URL('../test/fixtures/tap/tap-channel-events.jsonl', import.meta.url)), 'utf8')
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l) as { type: string; record?: { action: string; record?: unknown; collection: string; cid?: string } })
  .filter((e) => e.type === 'record' && e.record!.action === 'create');

const TID = '234567abcdefghijklmnopqrstuvwxyz';
function tid(n: number): string {
  let v = BigInt(Date.parse('2026-12-01T00:00:00Z') * 1000 + n) << 10n;
  let s = '';
  for (let i = 0; i < 13; i++) {
    s = TID[Number(v & 31n)] + s;
    v >>= 5n;
  }
  return s;
}
const dids = Array.from({ length: 2000 }, (_, i) => `did:plc:${i.toString(32).replace(/[0189]/g, (d) => 'wxyz'['0189'.indexOf(d)]!).padStart(24, 'a')}`);

function event(id: number): string {
  const s = sample[id % sample.length]!.record!;
  return JSON.stringify({
    id,
    type: 'record',
    record: { live: false, did: dids[id % dids.length], rev: '3n3mi67dvik2z', collection: s.collection, rkey: tid(id), action: 'create', record: s.record, cid: s.cid },
  });
}

const acked = new Uint8Array(total + 1);
let ackCount = 0;
let duplicateAcks = 0;
let unknownAcks = 0;
let next = 1;

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, path: '/channel' });
wss.on('connection', (ws: WebSocket) => {
  const pump = () => {
    while (next <= total && next - 1 - ackCount < window && ws.bufferedAmount < 4 << 20) ws.send(event(next++));
  };
  ws.on('message', (data) => {
    const m = JSON.parse(data.toString()) as { type: string; id: number };
    if (m.type !== 'ack' || !(m.id >= 1 && m.id <= total)) unknownAcks++;
    else if (acked[m.id]) duplicateAcks++;
    else {
      acked[m.id] = 1;
      ackCount++;
    }
    pump();
  });
  pump();
  const timer = setInterval(pump, 5);
  ws.on('close', () => clearInterval(timer));
});
wss.on('listening', () => console.log(`ws://127.0.0.1:${(wss.address() as { port: number }).port}`));
process.stdin.on('close', () => {
  console.log(JSON.stringify({ acked: ackCount, duplicateAcks, unknownAcks }));
  process.exit(0);
});
process.stdin.resume();
