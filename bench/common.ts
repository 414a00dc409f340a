// What the benchmarks share: a broker in a child process, the CLI's Kafka defaults, CPU from /proc.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import type { KafkaSinkOptions } from '../src/sink/kafka/types.ts';

/** The broker runs from a child process: its launcher's modules would otherwise count in the bridge's RSS. */
export async function startBroker(): Promise<{ bootstrap: string; pid: number | undefined; stop: () => Promise<void> }> {
  const script = fileURLToPath(new URL('../scripts/kafka/broker.ts', import.meta.url));
  const child = spawn(process.execPath, [script, '--full-jit'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  await new Promise<void>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const parts = buf.split('\n');
      buf = parts.pop()!;
      lines.push(...parts);
      if (lines.some((l) => l.startsWith('KAFKA_BROKER_PID='))) resolve();
    });
    child.once('exit', (code) => reject(new Error(`scripts/kafka/broker.ts exited ${code}`)));
  });
  const value = (name: string) => lines.find((l) => l.startsWith(`${name}=`))!.slice(name.length + 1);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    bootstrap: value('KAFKA_BOOTSTRAP_SERVERS'),
    pid: Number(value('KAFKA_BROKER_PID')) || undefined,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** The CLI defaults (src/config/flags.ts). */
export function kafkaOptions(bootstrap: string, topic: string, partitions: number, extra: string[] = []): KafkaSinkOptions {
  return {
    bootstrapServers: bootstrap.split(','),
    topic,
    partitions,
    replicationFactor: 1,
    compression: 'zstd',
    compressionLevel: 1,
    lingerMs: Number(process.env.BENCH_LINGER_MS ?? 20), // the CLI default; BENCH_LINGER_MS=50 to compare
    batchBytes: 1_048_576,
    maxMessageBytes: 20_971_520,
    clientId: 'atkafka-bench',
    extra: Object.fromEntries(extra.map((kv) => kv.split('=', 2) as [string, string])),
  };
}

/** utime + stime of a process from /proc, in seconds (Linux; CLK_TCK is 100 there). */
export function procCpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

/**
 * CPU seconds of each thread of a process, summed by thread name (/proc/PID/task/TID/{comm,stat}):
 * the main thread is the process's own name, Node's workers carry their `name` (atkafka-decode-0),
 * librdkafka's are rdk:main, rdk:broker1, ...; V8's and libuv's helpers are grouped as they are named.
 */
export function threadCpuSeconds(pid: number = process.pid): Map<string, number> {
  return perThread(pid, (tid) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  });
}

/**
 * Context switches of each thread (voluntary + involuntary, /proc/PID/task/TID/status), summed by
 * thread name like threadCpuSeconds: nearly every one is a wake-up, the fixed cost that per-event
 * CPU at a low rate is made of, and a count that does not depend on the machine's speed.
 */
export function threadSwitches(pid: number = process.pid): Map<string, number> {
  return perThread(pid, (tid) => {
    const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
    const count = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
    return count('voluntary_ctxt_switches') + count('nonvoluntary_ctxt_switches');
  });
}

function perThread(pid: number, read: (tid: string) => number): Map<string, number> {
  const out = new Map<string, number>();
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      const value = read(tid);
      // comm is cut at 15 bytes: "atkafka-decode-0" arrives as "atkafka-decode-".
      const key = tid === String(pid) ? 'main' : name.startsWith('atkafka-decode') ? 'decode' : name.replace(/\d+$/, (d) => (name.startsWith('rdk:') ? d : ''));
      out.set(key, (out.get(key) ?? 0) + value);
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/** What each thread spent between two snapshots, largest first. */
export function threadCpuDelta(before: Map<string, number>, after: Map<string, number>): [string, number][] {
  return [...after].map(([k, v]) => [k, v - (before.get(k) ?? 0)] as [string, number]).filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]);
}
