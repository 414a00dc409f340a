/**
 * Identity enrichment: the `eventMetadata` of the Go at-kafka (DID
 * document, verified handle, account age, profile), cached so the hot path
 * answers synchronously. Source-agnostic: a pipeline stage calls cached()
 * per event and resolve() on a miss.
 */
export { Enricher, metadataJson, type EnricherOptions, type EventMetadata } from './enricher.ts';
