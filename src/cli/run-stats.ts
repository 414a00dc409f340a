import type { FlagSpec } from './flags.ts';
import type { Command } from './command.ts';

/** `atkafka stats` (issue 12): being written; refused until then. */
export const statsFlags: FlagSpec[] = [];

export const statsCommand: Command = {
  path: ['stats'],
  usage: 'atkafka stats --topic T [flags]',
  description: 'Counts the events of a topic into Redis with a Kafka consumer group (not implemented yet).',
  groups: [],
  notYet: true,
};
