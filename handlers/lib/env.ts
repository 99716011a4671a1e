/** Reads a required setting at start-up, so a misconfigured function fails at once and says why. */
export function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`Environment variable ${name} is required`);
  return value;
}

/** Reads a whole number of seconds, with a default, rejecting anything else at start-up. */
export function envSeconds(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    throw new Error(`Environment variable ${name} must be a whole number of seconds, got '${raw}'`);
  }
  return n;
}

/** Reads a required positive whole number (a size, a count) at start-up. */
export function requirePositiveInt(name: string): number {
  const raw = requireEnv(name);
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new Error(`Environment variable ${name} must be a positive whole number, got '${raw}'`);
  }
  return n;
}
