/**
 * Node 22 APIs that dev tools use and this machine's Node 20 lacks. Loaded by
 * the tests (test/setup.ts) and the local stack (local/stepFunctions.ts) only;
 * Lambda's nodejs22.x runtime has them natively.
 * - Promise.withResolvers (ES2024): aws-local-stepfunctions awaits Task states with it.
 */
type Resolvers<T> = {
  promise: Promise<T>;
  resolve: (value: T | PromiseLike<T>) => void;
  reject: (reason?: unknown) => void;
};

if (typeof (Promise as { withResolvers?: unknown }).withResolvers !== "function") {
  Object.defineProperty(Promise, "withResolvers", {
    configurable: true,
    writable: true,
    value: function withResolvers<T>(this: PromiseConstructor): Resolvers<T> {
      let resolve!: Resolvers<T>["resolve"];
      let reject!: Resolvers<T>["reject"];
      const promise = new this<T>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      return { promise, resolve, reject };
    },
  });
}
