/** Kafka could not be reached or the topic could not be made ready at startup. */
export class KafkaSetupError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KafkaSetupError';
  }
}

/** The producer hit an error it cannot recover from (librdkafka "fatal"). */
export class KafkaFatalError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KafkaFatalError';
  }
}
