// The shutdown helpers' one timing primitive, their own (see index.ts: they import nothing of the core at
// run time).

/** Waits for `work` at most `ms`: `'done'` when it settled in time, else `'late'` (the work goes on). */
export async function within(work: Promise<unknown>, ms: number): Promise<'done' | 'late'> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(resolve, ms, 'late');
  });
  const done = () => 'done' as const;
  try {
    return await Promise.race([work.then(done, done), late]);
  } finally {
    clearTimeout(timer);
  }
}
