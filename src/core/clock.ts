/** Source of the current time in epoch milliseconds; injected everywhere instead of `Date.now()`. */
export interface Clock {
  now(): number;
}

/** A clock that can be moved forward (fixture mode, tests); it never moves backwards. */
export interface AdjustableClock extends Clock {
  /** Moves the clock forward by `ms` (must be >= 0; throws RangeError otherwise) and returns the new time. */
  advance(ms: number): number;
}

/** The wall clock, shifted forward by whatever has been advanced. */
export function systemClock(): AdjustableClock {
  let offset = 0;
  return {
    now: () => Date.now() + offset,
    advance(ms: number) {
      if (!Number.isFinite(ms) || ms < 0) throw new RangeError('advance(ms) needs a finite ms >= 0');
      offset += ms;
      return Date.now() + offset;
    },
  };
}

/** A clock that stands still at `start` until advanced; for tests. */
export function manualClock(start = Date.UTC(2026, 0, 1)): AdjustableClock {
  let t = start;
  return {
    now: () => t,
    advance(ms: number) {
      if (!Number.isFinite(ms) || ms < 0) throw new RangeError('advance(ms) needs a finite ms >= 0');
      t += ms;
      return t;
    },
  };
}
