// A Kafka broker for tests: a fresh single-node KRaft broker per call
// (scripts/kafka/local-broker.ts), or the external one named by
// KAFKA_BOOTSTRAP_SERVERS. With an external broker, tests must use their own
// topic names and skip crash tests: check `canRestart` first, e.g.
//   it('survives a broker crash', { skip: !broker.canRestart && 'needs a local broker' }, ...)
import { launchBroker, type LocalBrokerOptions } from '../../scripts/kafka/local-broker.ts';

export interface TestBroker {
  /** Comma-separated host:port list for clients. */
  readonly bootstrap: string;
  /** False with an external broker (KAFKA_BOOTSTRAP_SERVERS): halt/resume then throw. */
  readonly canRestart: boolean;
  /** Stop the broker and delete its data (a no-op for an external broker). */
  stop(): Promise<void>;
  /** Kill the broker process (default SIGKILL, i.e. a crash; SIGTERM = clean shutdown), keeping its data dir and port. */
  halt(signal?: 'SIGKILL' | 'SIGTERM'): Promise<void>;
  /** Start it again on the same port with the same data; resolves once it serves requests. */
  resume(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

export type TestBrokerOptions = Pick<LocalBrokerOptions, 'config' | 'logLevel' | 'keepFiles'>;

export async function startTestBroker(options: TestBrokerOptions = {}): Promise<TestBroker> {
  const external = process.env.KAFKA_BOOTSTRAP_SERVERS?.trim();
  if (external) return externalBroker(external);
  const b = await launchBroker(options);
  return {
    bootstrap: b.bootstrap,
    canRestart: true,
    stop: () => b.stop(),
    halt: (signal) => b.halt(signal),
    resume: () => b.resume(),
    [Symbol.asyncDispose]: () => b.stop(),
  };
}

function externalBroker(bootstrap: string): TestBroker {
  const unsupported = async (): Promise<never> => {
    throw new Error(`halt/resume are not supported with an external broker (KAFKA_BOOTSTRAP_SERVERS=${bootstrap}); check canRestart`);
  };
  const noop = async (): Promise<void> => {};
  return { bootstrap, canRestart: false, stop: noop, halt: unsupported, resume: unsupported, [Symbol.asyncDispose]: noop };
}

/** Host:port strings as @platformatic/kafka's bootstrapBrokers wants them. */
export function bootstrapList(broker: Pick<TestBroker, 'bootstrap'>): string[] {
  return broker.bootstrap.split(',').map((s) => s.trim()).filter(Boolean);
}
