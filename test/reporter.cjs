// Mocha reporter: the spec reporter on the console, JUnit XML in
// reports/mocha.xml (CodeBuild test reports), and a JSON summary in
// reports/mocha-summary.json that scripts/test.ts turns into CI's closing line.
const fs = require("node:fs");
const path = require("node:path");
const Mocha = require("mocha");

const { EVENT_TEST_PASS, EVENT_TEST_FAIL, EVENT_TEST_PENDING, EVENT_RUN_END } =
  Mocha.Runner.constants;
const REPORTS = path.join(__dirname, "..", "reports");

const xml = (s) =>
  String(s).replace(
    /[<>&"']/g,
    (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;" })[c],
  );

class HothReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    const cases = [];
    const record = (test, body) =>
      cases.push({
        classname: test.parent.titlePath().join(" / "),
        name: test.title,
        seconds: ((test.duration ?? 0) / 1000).toFixed(3),
        body,
      });
    runner.on(EVENT_TEST_PASS, (t) => record(t, ""));
    runner.on(EVENT_TEST_PENDING, (t) => record(t, "<skipped/>"));
    runner.on(EVENT_TEST_FAIL, (t, err) =>
      record(
        t,
        `<failure message="${xml(err.message)}">${xml(err.stack ?? err.message)}</failure>`,
      ),
    );
    runner.once(EVENT_RUN_END, () => {
      const s = runner.stats;
      fs.mkdirSync(REPORTS, { recursive: true });
      const testcases = cases
        .map(
          (c) =>
            `    <testcase classname="${xml(c.classname)}" name="${xml(c.name)}" time="${c.seconds}">${c.body}</testcase>`,
        )
        .join("\n");
      fs.writeFileSync(
        path.join(REPORTS, "mocha.xml"),
        `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="mocha">\n  <testsuite name="mocha" tests="${cases.length}" failures="${s.failures}" skipped="${s.pending}" time="${(s.duration ?? 0) / 1000}">\n${testcases}\n  </testsuite>\n</testsuites>\n`,
      );
      fs.writeFileSync(
        path.join(REPORTS, "mocha-summary.json"),
        JSON.stringify({ passed: s.passes, failed: s.failures, pending: s.pending }),
      );
    });
  }
}
module.exports = HothReporter;
