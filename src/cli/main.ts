import { existsSync, statSync } from 'node:fs';

import { formatHelp, parseArgs, resolveFlags, UsageError, type FlagSpec } from './flags.ts';
import { enrichFlags, firehoseFlags, globalFlags, jetstreamFlags, kafkaFlags, ozoneFlags, reconnectFlags, relayFlags, replayFlags, tapFlags, wikimediaFlags } from '../config/flags.ts';
import { wikimediaConfig } from '../config/wikimedia-config.ts';
import { jetstreamConfig } from '../config/jetstream-config.ts';
import { checkLogLevel } from '../config/checks.ts';
import { ozoneConfig } from '../config/ozone-config.ts';
import { relayConfig } from '../config/relay-config.ts';
import { tapConfig } from '../config/tap-config.ts';
import { runJetstream } from './run-jetstream.ts';
import { runOzone } from './run-ozone.ts';
import { runRelay } from './run-relay.ts';
import { runReplay } from './run-replay.ts';
import { runTap } from './run-tap.ts';
import { runWikimedia } from './run-wikimedia.ts';
import type { Command } from './command.ts';
import { statsCommand, statsFlags } from './run-stats.ts';

const commands: Command[] = [
  {
    path: ['firehose', 'relay'],
    usage: 'atkafka firehose relay [flags]',
    description:
      'Reads the relay firehose (com.atproto.sync.subscribeRepos) and produces one Kafka message per record\n' +
      'operation plus account, identity, sync and info events, keyed by DID. Resumes from its cursor file\n' +
      'after a restart, so no event is lost.\n\n' +
      'An env var set to an empty value counts: a text or list flag is empty, a switch is off, and an\n' +
      'empty number or duration is refused. Exit codes: 0 clean stop, 1 runtime failure, 2 bad configuration,\n' +
      '130 a second SIGINT/SIGTERM.',
    groups: [
      { title: 'Relay', flags: [...firehoseFlags, ...relayFlags] },
      { title: 'Enrichment, Osprey and routing', flags: enrichFlags },
      { title: 'Kafka', flags: kafkaFlags },
      { title: 'Global', flags: globalFlags },
    ],
    run: (v) => runRelay(relayConfig(v as never)),
  },
  {
    path: ['replay'],
    usage: 'atkafka replay --file frames.bin[.zst] [flags]',
    description:
      'Serves a recorded frames file as a subscribeRepos endpoint on loopback, like a relay: honours\n' +
      '?cursor= (events with seq > cursor), optionally at a fixed rate or looping with rewritten seqs.',
    groups: [{ title: 'Replay', flags: replayFlags }, { title: 'Global', flags: globalFlags.filter((f) => f.name === 'debug') }],
    run: (v) => runReplay(v as never),
  },
  {
    path: ['firehose', 'tap'],
    usage: 'atkafka firehose tap [flags]',
    description:
      "Reads Tap (indigo's network backfill and sync service, its /channel) and produces one Kafka message per\n" +
      'record event and identity event, keyed by DID; acknowledges each event to Tap only once Kafka confirmed it,\n' +
      'so Tap sends again whatever was not: nothing is lost across crashes and outages (at least once).\n\n' +
      'Exit codes: 0 clean stop, 1 runtime failure, 2 bad configuration, 130 a second SIGINT/SIGTERM.',
    groups: [
      // The Go version takes the firehose flags (--relay-host too) before either subcommand.
      { title: 'Tap', flags: [...tapFlags, ...reconnectFlags, ...firehoseFlags] },
      { title: 'Enrichment, Osprey and routing', flags: enrichFlags },
      { title: 'Kafka', flags: kafkaFlags },
      { title: 'Global', flags: globalFlags },
    ],
    run: (v) => runTap(tapConfig(v as never)),
  },
  {
    path: ['firehose', 'jetstream'],
    usage: 'atkafka firehose jetstream [flags]',
    description:
      'Reads Jetstream (the light JSON firehose, its /subscribe) and produces one Kafka message per event, keyed by\n' +
      'DID: the at-kafka JSON (as relay mode, minus what Jetstream does not carry), the Osprey envelope, or\n' +
      "Jetstream's own shape. The collection and DID filters are asked of Jetstream. Resumes from its cursor file\n" +
      '(time_us and host); fails over across --jetstream-host, rewinding and dropping what comes twice, so a switch\n' +
      'loses nothing and repeats nothing.\n\n' +
      'Exit codes: 0 clean stop, 1 runtime failure, 2 bad configuration, 130 a second SIGINT/SIGTERM.',
    groups: [
      { title: 'Jetstream', flags: [...jetstreamFlags, ...firehoseFlags.filter((f) => f.name !== 'relay-host' && f.name !== 'tap-workers')] },
      { title: 'Enrichment, Osprey and routing', flags: enrichFlags },
      { title: 'Kafka', flags: kafkaFlags },
      { title: 'Global', flags: globalFlags },
    ],
    run: (v) => runJetstream(jetstreamConfig(v as never)),
  },
  {
    path: ['ozone-events'],
    usage: 'atkafka ozone-events --pds-host URL --identifier ID --password-file FILE --labeler-did DID [flags]',
    description:
      "Tails a moderation service's event log (tools.ozone.moderation.queryEvents, through the moderator's PDS)\n" +
      "into Kafka: one message per event, the event view as Ozone returns it, keyed by the subject's DID, the\n" +
      "event id in the header id. Pages in Ozone's own (createdAt, id) order; the cursor file moves only after\n" +
      'Kafka confirmed a whole page, so nothing is lost or skipped across restarts and outages.\n\n' +
      'Exit codes: 0 clean stop, 1 runtime failure, 2 bad configuration, 130 a second SIGINT/SIGTERM.',
    groups: [
      { title: 'Ozone', flags: [...ozoneFlags, ...reconnectFlags.map((f) => ({ ...f, help: f.help.replace('reconnect', 'retry') }))] },
      { title: 'Osprey and routing', flags: enrichFlags.filter((f) => ['osprey-worker-id', 'osprey-epoch', 'kafka-headers', 'topic-template'].includes(f.name)).concat(firehoseFlags.filter((f) => f.name === 'osprey-compatible')) },
      // The Go version creates this topic with 4 partitions.
      { title: 'Kafka', flags: kafkaFlags.map((f) => (f.name === 'topic-partitions' ? { ...f, default: '4' } : f)) },
      { title: 'Global', flags: globalFlags },
    ],
    run: (v) => runOzone(ozoneConfig(v as never)),
  },
  {
    path: ['wikimedia'],
    usage: 'atkafka wikimedia [--stream recentchange,...] [flags]',
    description:
      "Reads Wikimedia EventStreams (server-sent events, https://stream.wikimedia.org/v2/stream/<streams>) into Kafka:\n" +
      'one message per event, the event JSON as sent, keyed by wiki (or page). The SSE id (Wikimedia\'s own Kafka\n' +
      'positions) of the last event Kafka confirmed is saved and sent back as Last-Event-ID, so a restart loses nothing.\n\n' +
      'Exit codes: 0 clean stop, 1 runtime failure, 2 bad configuration, 130 a second SIGINT/SIGTERM.',
    groups: [
      { title: 'Wikimedia', flags: wikimediaFlags },
      { title: 'Routing', flags: enrichFlags.filter((f) => ['kafka-headers', 'topic-template'].includes(f.name)) },
      { title: 'Kafka', flags: kafkaFlags },
      { title: 'Global', flags: globalFlags },
    ],
    run: (v) => runWikimedia(wikimediaConfig(v as never)),
  },
  statsCommand,
];

/** Every ATKAFKA_* name any command reads, so a typo is caught wherever it is set. */
const knownEnv = new Set([
  ...[...globalFlags, ...kafkaFlags, ...firehoseFlags, ...relayFlags, ...enrichFlags, ...tapFlags, ...ozoneFlags, ...jetstreamFlags, ...wikimediaFlags, ...statsFlags].flatMap((f) => f.env),
  'ATKAFKA_KAFKA_CACHE',
  'ATKAFKA_TAP_BIN',
]);

const topHelp = `Usage: atkafka <command> [flags]

Streams AT Protocol (Bluesky) events into Apache Kafka.

Commands:
  firehose relay       relay firehose -> Kafka (lossless: resumes from a cursor file)
  replay               serve a recorded frames file as a local relay (tests, demo, benchmarks)
  firehose tap         Tap (network backfill and sync, with acks) -> Kafka (at least once)
  firehose jetstream   Jetstream (the light JSON firehose) -> Kafka (lossless: time_us cursor, host failover)
  ozone-events         Ozone moderation events -> Kafka (lossless: resumes from a cursor file)
  wikimedia            Wikimedia EventStreams (recentchange, ...) -> Kafka (lossless: Last-Event-ID cursor)
  stats                count a topic's events into Redis with a consumer group (exact, restartable)

Run 'atkafka <command> --help' for its flags. Every flag can also be set by the env var shown there;
a .env file in the working directory is read too. An env var set to an empty value is not ignored:
a text or list flag takes the empty value, a switch is off, and an empty number or duration is refused.
`;

export async function main(argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  if (argv.includes('--version') || argv[0] === 'version') {
    process.stdout.write('atkafka 0.1.0\n');
    return 0;
  }
  try {
    const words = commandWords(argv);
    const command = commands
      .filter((c) => c.path.every((p, i) => words[i] === p))
      .sort((a, b) => b.path.length - a.path.length)[0];
    if (command === undefined) {
      if (argv.length === 0 || argv.includes('--help') || argv.includes('-h') || words[0] === 'help') {
        process.stdout.write(topHelp);
        return argv.length === 0 ? 2 : 0;
      }
      throw new UsageError(`unknown command "${words.join(' ')}"`);
    }
    if (command.notYet) throw new UsageError(`"atkafka ${command.path.join(' ')}" is not implemented in this version yet`);
    const specs = command.groups.flatMap((g) => g.flags);
    const parsed = parseArgs(argv, specs);
    if (parsed.help) {
      process.stdout.write(formatHelp(command.usage, command.description, command.groups));
      return 0;
    }
    const extra = parsed.positionals.slice(command.path.length);
    if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
    for (const name of Object.keys(env)) {
      if (name.startsWith('ATKAFKA_') && !knownEnv.has(name)) throw new UsageError(`unknown environment variable ${name}`);
    }
    checkLogLevel(env);
    const values = resolveFlags(parsed, specs, env);
    return await command.run!(values);
  } catch (err) {
    if (err instanceof UsageError) {
      // One line whatever the message holds (librdkafka's end in a newline).
      process.stderr.write(`atkafka: ${err.message.trim().replace(/\s*\n\s*/g, '; ')}\nRun 'atkafka --help' for usage.\n`);
      return 2;
    }
    throw err;
  }
}

/** Flags that take a value, over all commands: the word after one of them is not a command word. */
const valueFlags = new Set(commands.flatMap((c) => c.groups.flatMap((g) => g.flags)).filter((f) => f.kind !== 'bool').map((f) => f.name));

/**
 * The positional words of the line. Flags may come before or between command words, as urfave
 * allows (`atkafka --bootstrap-servers k:9092 firehose --relay-host wss://x relay`), so a flag's
 * separate value must not be taken for a command word.
 */
function commandWords(argv: string[]): string[] {
  const words: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      words.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') words.push(arg);
    else if (!arg.includes('=') && valueFlags.has(arg.replace(/^--?/, ''))) i++;
  }
  return words;
}

/** The Go version autoloads .env; so do we, without overriding the real environment. */
export function loadDotEnv(): void {
  if (!existsSync('.env')) return;
  // Node's own message for a directory is "Contents of '.env' should be a valid string".
  if (!statSync('.env').isFile()) throw new UsageError('.env in the working directory is not a file');
  try {
    process.loadEnvFile('.env');
  } catch (err) {
    throw new UsageError(`cannot read .env in the working directory: ${(err as Error).message}`);
  }
}
