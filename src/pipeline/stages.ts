import { Resolver } from 'node:dns/promises';

import type { StagesConfig } from '../config/stages-config.ts';
import { Enricher } from '../enrich/index.ts';
import { serviceMatcher } from '../filter/index.ts';
import { JetstreamCompressor } from '../format/jetstream-compress.ts';
import { Snowflake } from '../format/snowflake.ts';
import { topicRouter } from '../format/topic-template.ts';
import { sanitizeTopic } from '../sink/kafka/index.ts';
import type { Logger } from '../telemetry/logger.ts';
import type { OutboxOptions } from './outbox.ts';

/** Distinct topics a --topic-template may create before new ones fall back to --output-topic. */
export const MAX_ROUTED_TOPICS = 1000;

export type Stages<T> = Pick<OutboxOptions<T>, 'enricher' | 'enrich' | 'keepService' | 'deadlineMs' | 'osprey' | 'topicFor' | 'headers' | 'compress'>;

/** The shared stages of a source, built from the validated config. */
export function buildStages<T>(config: StagesConfig, opts: { source: string; defaultTopic: string; userAgent: string; logger: Logger }): Stages<T> & { close(): void } {
  const keepService = config.services === undefined ? undefined : serviceMatcher(config.services);
  let enricher: Enricher | undefined;
  // The Jetstream shape has no eventMetadata: lookups only for a service filter.
  const enrich = config.enrich && config.format !== 'jetstream';
  if (enrich || keepService !== undefined) {
    let resolveTxt: ((name: string) => Promise<string[][]>) | undefined;
    if (config.dnsServers.length > 0) {
      const resolver = new Resolver({ timeout: 3000, tries: 2 });
      resolver.setServers(config.dnsServers);
      resolveTxt = (name) => resolver.resolveTxt(name);
    }
    enricher = new Enricher({
      plcHost: config.plcHost,
      // Only the PDS host matters to the service filter: no profile requests without enrichment.
      apiHost: enrich ? config.apiHost : undefined,
      logger: opts.logger.child({ component: 'identity' }),
      userAgent: opts.userAgent,
      plcRateLimit: config.plcRateLimit,
      apiRateLimit: config.plcRateLimit,
      maxConcurrentLookups: config.enrichConcurrency,
      cacheEntries: config.identityCacheEntries,
      allowPrivateAddresses: config.allowPrivateIdentityHosts,
      resolveTxt,
      wellKnownUrl: (handle) => config.handleWellKnownUrl.replace('{handle}', handle),
      didWebUrl: (host) => config.didWebUrl.replace('{host}', host),
    });
  }
  const log = opts.logger;
  const topicFor =
    config.topicTemplate === undefined
      ? undefined
      : topicRouter({
          template: config.topicTemplate,
          source: opts.source,
          sanitize: sanitizeTopic,
          maxTopics: MAX_ROUTED_TOPICS,
          fallback: opts.defaultTopic,
          onOverflow: (wanted) =>
            log.warn({ wanted, fallback: opts.defaultTopic, maxTopics: MAX_ROUTED_TOPICS }, 'topic template: a collection that is no NSID, or past the topic limit; producing to --output-topic instead (rate-limited: 1 in 1000)'),
        });
  return {
    enricher,
    enrich,
    keepService,
    deadlineMs: config.enrichTimeoutMs,
    osprey: config.osprey === undefined ? undefined : new Snowflake({ epochMs: config.osprey.epochMs, workerId: config.osprey.workerId }),
    topicFor,
    headers: config.kafkaHeaders,
    compress: config.jetstreamCompress ? new JetstreamCompressor() : undefined,
    close: () => enricher?.close(),
  };
}
