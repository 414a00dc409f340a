import type { FramesFile } from './frames-file.ts';
import { createSeqRewriter } from './seq-rewriter.ts';
import type { SeqRewriter } from './seq-rewriter.ts';

/** A place in the (possibly endless) replay: frame `index` of pass `loop` over the file. */
export interface StreamPosition {
  readonly loop: number;
  readonly index: number;
}

export type StartPlan =
  | { readonly kind: 'start'; readonly position: StreamPosition }
  | { readonly kind: 'future-cursor'; readonly lastSeq: number };

export interface FrameIterator {
  /** Next frame to send, or undefined once the replay has nothing more (end of file, non-loop). */
  next(): Uint8Array | undefined;
}

/**
 * The virtual event sequence a replay serves: the file once, or (loop mode) the
 * file repeated forever with pass k shifting every seq by k * span so seqs keep
 * increasing across passes.
 */
export interface ReplaySource {
  readonly file: FramesFile;
  readonly loop: boolean;
  /** lastSeq - firstSeq + 1; undefined when no frame has a seq. */
  readonly span: number | undefined;
  planStart(cursor: number | undefined): StartPlan;
  open(start: StreamPosition): FrameIterator;
}

export function createReplaySource(file: FramesFile, loop: boolean): ReplaySource {
  const { frames, firstSeq, lastSeq } = file;
  const span = firstSeq !== undefined && lastSeq !== undefined ? lastSeq - firstSeq + 1 : undefined;
  const rewriter: SeqRewriter = createSeqRewriter(frames);
  const indexAfter = createIndexAfter(file);

  function planStart(cursor: number | undefined): StartPlan {
    // No cursor means "from the start of the file", not the live tip a real relay would use:
    // a replay exists to deliver the recording, and the tip of a finished recording is empty.
    if (cursor === undefined || firstSeq === undefined || lastSeq === undefined || span === undefined) {
      return { kind: 'start', position: { loop: 0, index: 0 } };
    }
    if (!loop) {
      if (cursor > lastSeq) return { kind: 'future-cursor', lastSeq };
      return { kind: 'start', position: { loop: 0, index: indexAfter(cursor) } };
    }
    if (cursor < firstSeq) return { kind: 'start', position: { loop: 0, index: 0 } };
    const pass = Math.floor((cursor - firstSeq) / span);
    const index = indexAfter(cursor - pass * span);
    return {
      kind: 'start',
      position: index >= frames.length ? { loop: pass + 1, index: 0 } : { loop: pass, index },
    };
  }

  function open(start: StreamPosition): FrameIterator {
    let pass = start.loop;
    let index = start.index;
    let shift = span === undefined ? 0 : pass * span;
    return {
      next() {
        if (index >= frames.length) {
          if (!loop || frames.length === 0) return undefined;
          pass++;
          index = 0;
          shift = span === undefined ? 0 : pass * span;
        }
        const i = index++;
        const frame = frames[i];
        if (frame === undefined) return undefined;
        if (shift === 0 || frame.seq === undefined) return frame.bytes;
        const seq = frame.seq + shift;
        // Past 2^53 seqs stop being exact; end the stream rather than send wrong numbers.
        if (!Number.isSafeInteger(seq)) {
          index = frames.length;
          return undefined;
        }
        return rewriter.bytesWithSeq(i, seq);
      },
    };
  }

  return { file, loop, span, planStart, open };
}

/**
 * Index just past the last frame (in file order) whose seq is <= cursor: everything
 * from there on is news to a client that has seen `cursor`. Seqless frames (#info)
 * keep their place. With ascending seqs this is exactly "seq > cursor".
 */
function createIndexAfter(file: FramesFile): (cursor: number) => number {
  const positions: number[] = [];
  const seqs: number[] = [];
  file.frames.forEach((frame, index) => {
    if (frame.seq === undefined) return;
    positions.push(index);
    seqs.push(frame.seq);
  });

  if (!file.seqsAscending) {
    return (cursor) => {
      for (let j = seqs.length - 1; j >= 0; j--) {
        if ((seqs[j] ?? Infinity) <= cursor) return (positions[j] ?? -1) + 1;
      }
      return 0;
    };
  }

  return (cursor) => {
    let lo = 0;
    let hi = seqs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((seqs[mid] ?? Infinity) <= cursor) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? 0 : (positions[lo - 1] ?? -1) + 1;
  };
}
