export { startReplayServer, SUBSCRIBE_REPOS_PATH, DEFAULT_HIGH_WATER_MARK } from './server.ts';
export type { ReplayServer, ReplayServerOptions, ReplayServerStats } from './server.ts';
export { readFramesFile, indexFrames, splitLengthPrefixed, frameSeq } from './frames-file.ts';
export type { FramesFile, ReplayFrame } from './frames-file.ts';
export { rewriteFrameSeq } from './seq-rewriter.ts';
export { encodeErrorFrame } from './error-frame.ts';
