/**
 * Node 22 APIs that dev tools use and this machine's Node 20 lacks. Loaded by
 * the tests (test/setup.ts), the local stack (local/stepFunctions.ts, so
 * npm start and bench/local) and `npm run lake` only;
 * Lambda's nodejs22.x runtime has them natively.
 * - Promise.withResolvers (ES2024): aws-local-stepfunctions awaits Task states with it.
 * - The AWS SDK's notice that its Node 20 support ends: noise where Lambda runs Node 22.
 */

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
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
