/**
 * `--topic-template`: the topic of each message from what it is, e.g.
 * `atproto.{collection}` or `atproto.{kind}`. `{collection}` is the record's
 * NSID for ops and the event kind (identity, account, sync, info) otherwise,
 * so every message has a topic. Names are sanitised to Kafka's charset.
 */
export const TOPIC_PLACEHOLDERS = ['kind', 'collection', 'source'] as const;

export class TopicTemplateError extends Error {
  override name = 'TopicTemplateError';
}

/** Throws TopicTemplateError on an unknown placeholder or a template without one. */
export function checkTopicTemplate(template: string): void {
  const names = [...template.matchAll(/\{([^}]*)\}/g)].map((m) => m[1]!);
  if (names.length === 0) throw new TopicTemplateError(`"${template}" has no placeholder; use --output-topic for a single topic`);
  for (const n of names) {
    if (!(TOPIC_PLACEHOLDERS as readonly string[]).includes(n)) {
      throw new TopicTemplateError(`"${template}": unknown placeholder {${n}} (known: ${TOPIC_PLACEHOLDERS.map((p) => `{${p}}`).join(' ')})`);
    }
  }
  const rest = template.replace(/\{[^}]*\}/g, '');
  if (/[{}]/.test(rest)) throw new TopicTemplateError(`"${template}" has an unbalanced brace`);
}

export interface TopicRouterOptions {
  template: string;
  source: string;
  /** Maps an expanded name to a valid Kafka topic name. */
  sanitize: (name: string) => string;
  /**
   * Anyone can write records of any collection, so `{collection}` could fan
   * out into unbounded topics: past this many distinct topics, messages of a
   * new one go to `fallback` (the --output-topic) and `onOverflow` is told.
   */
  maxTopics: number;
  fallback: string;
  onOverflow: (wanted: string) => void;
}

/**
 * A record collection as the lexicon defines an NSID: letters, digits and
 * hyphens in dot-separated segments. Such a name is already a valid Kafka
 * topic name and has no `_`, so two collections can never collide in Kafka's
 * eyes (it treats `.` and `_` alike); anything else in a hostile stream could,
 * and a topic Kafka refuses to create stops the producer.
 */
const NSID = /^[a-zA-Z]([a-zA-Z0-9-]*[a-zA-Z0-9])?(\.[a-zA-Z]([a-zA-Z0-9-]*[a-zA-Z0-9])?){2,}$/;

/** Expands and memoises (bounded by maxTopics, then by the fallback). */
export function topicRouter(opts: TopicRouterOptions): (kind: string, collection: string) => string {
  const byKind = new Map<string, Map<string, string>>();
  const topics = new Set<string>();
  let overflowed = 0;
  return (kind, collection) => {
    let byCollection = byKind.get(kind);
    if (byCollection === undefined) byKind.set(kind, (byCollection = new Map()));
    let topic = byCollection.get(collection);
    if (topic === undefined) {
      if (collection !== '' && (collection.length > 317 || !NSID.test(collection))) {
        if (overflowed++ % 1000 === 0) opts.onOverflow(collection);
        return opts.fallback;
      }
      const values: Record<string, string> = { kind, collection: collection === '' ? kind : collection, source: opts.source };
      const wanted = opts.sanitize(opts.template.replace(/\{(kind|collection|source)\}/g, (_, n: string) => values[n]!));
      if (topics.has(wanted) || topics.size < opts.maxTopics) {
        topics.add(wanted);
        topic = wanted;
        byCollection.set(collection, topic);
      } else {
        // Not memoised: the memo would grow with every hostile collection.
        if (overflowed++ % 1000 === 0) opts.onOverflow(wanted);
        return opts.fallback;
      }
    }
    return topic;
  };
}
