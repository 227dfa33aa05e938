const utf8 = new TextDecoder();

/**
 * Reads one header, case-insensitively, from a Fetch `Headers`, Node's headers or a plain object.
 * Returns the raw value: a string, an array (plain objects can hold one), or undefined.
 * Never throws: an unusable source reads as "no header".
 */
export function readHeader(headers: unknown, name: string): string | readonly string[] | undefined {
  if (typeof headers !== 'object' || headers === null) return undefined;
  try {
    if (typeof (headers as Headers).get === 'function' && typeof (headers as Headers).has === 'function') {
      const value = (headers as Headers).get(name);
      return value ?? undefined;
    }
    const record = headers as Record<string, unknown>;
    // Node lower-cases incoming names, so the exact lower-case key is the common, fast case.
    let value: unknown = Object.hasOwn(record, name) ? record[name] : undefined;
    if (value === undefined) {
      for (const key of Object.keys(record)) {
        if (key.length === name.length && key.toLowerCase() === name) {
          value = record[key];
          break;
        }
      }
    }
    if (typeof value === 'string') return value;
    // stripe-node accepts a header value given as bytes (a Buffer): read it as the text it holds.
    if (value instanceof Uint8Array) return utf8.decode(value);
    if (Array.isArray(value)) return value.filter((item): item is string => typeof item === 'string');
    return undefined;
  } catch {
    return undefined;
  }
}

/** One header as a single string: undefined when absent, `null` when present several times. */
export function readSingleHeader(headers: unknown, name: string): string | null | undefined {
  const value = readHeader(headers, name);
  if (value === undefined || typeof value === 'string') return value;
  if (value.length === 0) return undefined;
  return value.length === 1 ? value[0] : null;
}
