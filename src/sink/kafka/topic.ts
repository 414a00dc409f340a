import type { IAdminClient, LibrdKafkaError } from '@confluentinc/kafka-javascript';

import { KafkaSetupError } from './errors.ts';

const TOPIC_ALREADY_EXISTS = 36;

/** Creates the topic when missing (as the Go version does); an existing topic is left as it is. */
export async function ensureTopic(
  admin: IAdminClient,
  topic: string,
  partitions: number,
  replicationFactor: number,
  maxMessageBytes: number,
): Promise<'created' | 'exists'> {
  const err = await new Promise<LibrdKafkaError | undefined>((resolve) => {
    admin.createTopic(
      {
        topic,
        num_partitions: partitions,
        replication_factor: replicationFactor,
        config: { 'max.message.bytes': String(maxMessageBytes) },
      },
      15_000,
      (e) => resolve(e ?? undefined),
    );
  });
  if (err === undefined) return 'created';
  if (err.code === TOPIC_ALREADY_EXISTS) return 'exists';
  throw new KafkaSetupError(`cannot create topic ${topic}: ${err.message}`, { cause: err });
}
