// For `npm run bench` only: serves the relay capture's real DID documents and an audit log for each,
// after a fixed delay, like a PLC directory at that latency. (Tests use the real @did-plc/server.)
//   node bench/plc-stand-in.ts DELAY_MS   -> prints its URL
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { zstdDecompressSync } from 'node:zlib';

const delayMs = Number(process.argv[2] ?? 0);
const file = fileURLToPath(new URL('../test/fixtures/corpus/did_docs.json.zst', import.meta.url));
const docs = JSON.parse(zstdDecompressSync(readFileSync(file)).toString()) as Record<string, { id: string }>;

const didByHandle = new Map<string, string>();
for (const [did, doc] of Object.entries(docs) as [string, { alsoKnownAs?: string[] }][]) {
  const aka = doc.alsoKnownAs?.find((a) => a.startsWith('at://'));
  if (aka !== undefined) didByHandle.set(aka.slice(5).toLowerCase(), did);
}

const server = createServer((req, res) => {
  const [, did, log, audit] = (req.url ?? '').split('/');
  if (did === 'handle') {
    // Stands in for https://<handle>/.well-known/atproto-did.
    const owner = didByHandle.get(decodeURIComponent(log ?? ''));
    return void setTimeout(() => (owner === undefined ? res.writeHead(404).end() : res.writeHead(200, { 'content-type': 'text/plain' }).end(owner)), delayMs);
  }
  const doc = docs[decodeURIComponent(did ?? '')];
  setTimeout(() => {
    if (doc === undefined) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"DID not registered"}');
    const body = log === 'log' && audit === 'audit' ? JSON.stringify([{ did: doc.id, operation: {}, cid: 'bafy', nullified: false, createdAt: '2024-03-01T12:00:00.000Z' }]) : JSON.stringify(doc);
    res.writeHead(200, { 'content-type': 'application/json' }).end(body);
  }, delayMs);
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => console.log(`http://127.0.0.1:${(server.address() as { port: number }).port}`));
process.on('SIGTERM', () => process.exit(0));
