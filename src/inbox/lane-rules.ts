// What both engines' ordering lanes share.

/**
 * A lane member whose job does not exist is taken for one whose write failed (the web side joins the lane
 * before it writes the job) only after this long; until then the key waits for it.
 */
export const LANE_WRITE_GRACE_MS = 60_000;

/** A job's turn in its key's lane: it heads the lane (or is in none), or an earlier job comes first. */
export type LaneVerdict = 'run' | 'wait';
