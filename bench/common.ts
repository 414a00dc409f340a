// What the benchmarks share: a broker in a child process, the CLI's Kafka defaults, CPU from /proc.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
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
    lingerMs: 20,
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
