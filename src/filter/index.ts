export { collectionFilter, collectionMatcher, FilterPatternError, type CollectionFilter } from './collections.ts';
export { serviceFilter, serviceMatcher, type ServiceFilter } from './services.ts';
