// Mocha reporter: the spec reporter on the console, plus a JSON summary in
// reports/mocha-summary.json that scripts/test.ts turns into CI's closing line.
const fs = require("node:fs");
const path = require("node:path");
const Mocha = require("mocha");

class HothReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once(Mocha.Runner.constants.EVENT_RUN_END, () => {
      const s = runner.stats;
      const dir = path.join(__dirname, "..", "reports");
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(
        path.join(dir, "mocha-summary.json"),
        JSON.stringify({ passed: s.passes, failed: s.failures, pending: s.pending }),
      );
    });
  }
}
module.exports = HothReporter;
