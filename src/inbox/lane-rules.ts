// What both engines' ordering lanes share.

/**
 * A lane member whose job does not exist is taken for one whose write failed (the web side joins the lane
 * before it writes the job) only after this long; until then the key waits for it.
 */
export const LANE_WRITE_GRACE_MS = 60_000;

/** A job's turn in its key's lane: it heads the lane (or is in none), or an earlier job comes first. */
export type LaneVerdict = 'run' | 'wait';

/**
 * How long a job that waits for its turn is left before it is looked at again: as long as it has waited
 * so far (at least `deferMs`, at most a minute unless `deferMs` is longer). The job ahead promotes it as it
 * leaves; these looks only find a head that died without leaving, so a long wait costs a few looks rather
 * than one every `deferMs` (a backlog of thousands of waiting jobs would otherwise crowd out the heads).
 */
export function turnRecheckMs(deferMs: number, waitedMs: number): number {
  return Math.min(Math.max(deferMs, waitedMs), Math.max(deferMs, 60_000));
}
