/**
 * What the pipeline needs from Kafka. The confirmation handler gets a
 * message's token once the broker has acknowledged it (acks=all); a failed
 * delivery is retried inside the sink and never surfaces as a lost message
 * (docs/invariants.md, rule 2). A token instead of a callback per message:
 * no closure is allocated on the hot path.
 */
export interface MessageSink<T = unknown> {
  /** Set once, before the first send. */
  onConfirmed(handler: (token: T) => void): void;
  /**
   * `value`: the JSON, as a string or as UTF-8 bytes (which the sink may keep until confirmed).
   * `extra`: headers and/or a topic other than the default one; leave it out when neither is
   * needed (the cheapest path). The sink keeps `extra.headers` (by reference) until the message
   * is confirmed: do not change the array or its objects after the call.
   */
  send(key: string, value: string | Uint8Array, token: T, extra?: SendExtra): void;
  /** Messages sent and not yet confirmed. */
  readonly inFlight: number;
  /** Their value sizes (bytes; a string value counts its length). */
  readonly inFlightBytes: number;
  /** Whether the brokers answer now (readiness); a sink that cannot tell leaves it out. */
  readonly reachable?: boolean;
  /** Resolves when every message sent so far is confirmed. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/**
 * One Kafka header: an object with exactly one own key (the header's name) and its value, as
 * librdkafka's produce() takes them (it reads only the first key of each object). Names may
 * repeat across the array; order is kept.
 */
export type MessageHeader = Record<string, string | Buffer>;

export interface SendExtra {
  /**
   * The message's topic instead of the sink's default one; a valid name (see sanitizeTopic).
   * A topic not seen before is created, like the default one, before its first message goes.
   */
  topic?: string;
  headers?: MessageHeader[];
}

export interface KafkaSinkOptions {
  bootstrapServers: string[];
  topic: string;
  /** Created with these when missing. */
  partitions: number;
  replicationFactor: number;
  compression: 'zstd' | 'lz4' | 'gzip' | 'snappy' | 'none';
  /** -1: the codec's default */
  compressionLevel: number;
  lingerMs: number;
  batchBytes: number;
  /** Largest message the producer and a topic we create accept. */
  maxMessageBytes: number;
  clientId: string;
  /** Extra librdkafka properties (`--kafka-option key=value`). */
  extra: Record<string, string>;
  sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
  tls?: { enabled: boolean; caFile?: string };
}
