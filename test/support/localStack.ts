import { type LocalStack, startStack } from "../../local/stack";

/**
 * One local stack for every test file that needs it (end to end, newman,
 * fuzzing): Spark starts once. Stopped by the root afterAll hook (test/setup.ts).
 */
let shared: Promise<LocalStack> | undefined;

export function localStack(): Promise<LocalStack> {
  shared ??= startStack({ stack: "dev" }).then(async (stack) => {
    await stack.sparkReady;
    return stack;
  });
  return shared;
}

export async function stopLocalStack(): Promise<void> {
  const s = shared;
  shared = undefined;
  await (await s?.catch(() => undefined))?.stop();
}
