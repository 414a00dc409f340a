// Reads a whole topic with kcat, an independent Kafka client (Debian's package).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);
const READ_TIMEOUT_MS = 120_000;
/** One kcat that hangs is killed after this and started again, so a poll does not spend its whole budget on it. */
const ATTEMPT_TIMEOUT_MS = 20_000;

async function kcat(args: string[], timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = deadline - Date.now();
    try {
      return (await run('kcat', args, { maxBuffer: 1 << 30, timeout: Math.max(1, Math.min(ATTEMPT_TIMEOUT_MS, left)) })).stdout;
    } catch (err) {
      if (!(err as { killed?: boolean }).killed || Date.now() >= deadline) throw err;
    }
  }
}

export interface ReadMessage {
  partition: number;
  offset: number;
  key: string;
  value: string;
  /** Kafka headers in order, as [name, value] pairs. */
  headers: [string, string][];
}

/**
 * `timeoutMs`: kill kcat and fail after that long. kcat can wait for ever for a topic that does
 * not exist yet or a partition without a leader yet, so a test polling it while the bridge creates
 * its topic hung until the runner's 600 s timeout once; the default bounds every read.
 */
export async function readTopic(bootstrap: string, topic: string, timeoutMs = READ_TIMEOUT_MS): Promise<ReadMessage[]> {
  const stdout = await kcat(['-b', bootstrap, '-t', topic, '-C', '-e', '-q', '-J'], timeoutMs);
  const out: ReadMessage[] = [];
  for (const line of stdout.split('\n')) {
    if (line.trim() === '') continue;
    const m = JSON.parse(line) as { partition: number; offset: number; key: string | null; payload: string | null; headers?: string[] };
    const headers: [string, string][] = [];
    for (let i = 0; m.headers !== undefined && i + 1 < m.headers.length; i += 2) headers.push([m.headers[i]!, m.headers[i + 1]!]);
    out.push({ partition: m.partition, offset: m.offset, key: m.key ?? '', value: m.payload ?? '', headers });
  }
  // Offsets order messages within a partition; that is the only order Kafka has.
  out.sort((a, b) => a.partition - b.partition || a.offset - b.offset);
  return out;
}

/** The Java client's murmur2 partitioner (positive hash modulo partitions), the test oracle for key placement. */
export function javaPartition(key: string, partitions: number): number {
  const data = Buffer.from(key);
  const seed = 0x9747b28c;
  const m = 0x5bd1e995;
  const length = data.length;
  let h = (seed ^ length) | 0;
  const length4 = length >> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k = (data[i4]! & 0xff) + ((data[i4 + 1]! & 0xff) << 8) + ((data[i4 + 2]! & 0xff) << 16) + ((data[i4 + 3]! & 0xff) << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m);
    h ^= k;
  }
  const rest = length % 4;
  const idx = length & ~3;
  if (rest === 3) h ^= (data[idx + 2]! & 0xff) << 16;
  if (rest >= 2) h ^= (data[idx + 1]! & 0xff) << 8;
  if (rest >= 1) {
    h ^= data[idx]! & 0xff;
    h = Math.imul(h, m);
  }
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return (h & 0x7fffffff) % partitions;
}

export interface RawMessage {
  partition: number;
  key: string;
  /** The payload's bytes as produced (kcat's JSON output cannot carry binary payloads). */
  value: Buffer;
  headers: [string, string][];
}

/** Reads a whole topic with kcat, payloads as bytes (e.g. zstd frames), in partition and offset order. */
export async function readTopicRaw(bootstrap: string, topic: string): Promise<RawMessage[]> {
  // Sizes before key and payload make the output parseable whatever the bytes are.
  const { stdout } = await run('kcat', ['-b', bootstrap, '-t', topic, '-C', '-e', '-q', '-f', '%p %K:%k%S:%s|%h\n'], { maxBuffer: 1 << 30, encoding: 'buffer', timeout: READ_TIMEOUT_MS });
  const out: RawMessage[] = [];
  let at = 0;
  const number = (end: number) => {
    const i = stdout.indexOf(end, at);
    const n = Number(stdout.subarray(at, i).toString());
    at = i + 1;
    return n;
  };
  while (at < stdout.length) {
    const partition = number(0x20);
    const keySize = number(0x3a);
    const key = keySize < 0 ? '' : stdout.subarray(at, at + keySize).toString();
    at += Math.max(0, keySize);
    const size = number(0x3a);
    const value = Buffer.from(stdout.subarray(at, at + Math.max(0, size)));
    at += Math.max(0, size) + 1;
    const nl = stdout.indexOf(0x0a, at);
    const h = stdout.subarray(at, nl).toString();
    at = nl + 1;
    const headers: [string, string][] = h === '' ? [] : h.split(',').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)] as [string, string]);
    out.push({ partition, key, value, headers });
  }
  return out;
}
