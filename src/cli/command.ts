import type { FlagSpec } from './flags.ts';

/** One `atkafka ...` command: its words, help, flag groups and what runs it (returns the exit code). */
export interface Command {
  path: string[];
  usage: string;
  description: string;
  groups: { title: string; flags: FlagSpec[] }[];
  run?: (values: Map<string, unknown>) => Promise<number>;
  /** Commands of the Go version that are not implemented yet. */
  notYet?: boolean;
}
