/**
 * A request's time budget. Every AWS call of a request gets the budget's
 * AbortSignal, and every retry sleeps only within it, so a handler answers
 * (503 at worst) before Lambda's timeout ends the invocation mid-way.
 */
export class Deadline {
  private readonly at: number;
  private controller?: AbortController;

  constructor(budgetMs: number, now = Date.now()) {
    this.at = now + Math.max(0, budgetMs);
  }

  /** The budget of a Lambda invocation: its remaining time less a margin to answer in. */
  static forInvocation(
    context: { getRemainingTimeInMillis?: () => number } | undefined,
    fallbackMs: number,
    marginMs = 1500,
  ): Deadline {
    const remaining = context?.getRemainingTimeInMillis?.() ?? fallbackMs;
    return new Deadline(Math.min(fallbackMs, remaining - marginMs));
  }

  remainingMs(): number {
    return Math.max(0, this.at - Date.now());
  }

  /** Aborts when the budget is spent. */
  signal(): AbortSignal {
    if (!this.controller) {
      const controller = new AbortController();
      this.controller = controller;
      const timer = setTimeout(
        () => controller.abort(new Error("The request's time budget is spent")),
        this.remainingMs(),
      );
      timer.unref?.();
    }
    return this.controller.signal;
  }

  /** Waits `ms`, or rejects at once when that would overrun the budget. */
  sleep(ms: number): Promise<void> {
    if (ms >= this.remainingMs()) {
      return Promise.reject(new Error("The request's time budget is spent"));
    }
    return new Promise((resolve) => setTimeout(resolve, ms));
  }
}
