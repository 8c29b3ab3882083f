// Runs the examples that are meant to run against the embedded mock controller, one after the
// other with tsx, and fails when one exits non-zero, prints nothing or runs past its time limit.
//
// To add an example, add a line to RUN below; an example that needs hardware or a real controller
// goes into SKIP with the reason. A file in examples/ that is in neither list fails the run, so a new
// example cannot be forgotten.
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** Examples to run: file name in examples/, command-line arguments and extra environment. */
const RUN = [
  { file: "quickstart.ts", args: [] },
  // A short step keeps the run quick; the default step lasts 5 s.
  { file: "automation.ts", args: [], env: { AUTOMATION_STEP_MS: "300" } },
  { file: "list-exporters.ts", args: [] },
  { file: "list-exporters.ts", args: ["board in (rpi4,jetson-orin),location!=lab-b"] },
];

/** Examples that are type-checked but not run here, with the reason. */
const SKIP = {
  "test-harness.test.ts": "a vitest file, run by npm test",
};

/** Time limit of one example, in ms. Each takes a few seconds. */
const TIMEOUT_MS = 60_000;

const root = fileURLToPath(new URL("..", import.meta.url));
const examplesDir = new URL("../examples/", import.meta.url);

const listed = new Set([...RUN.map((example) => example.file), ...Object.keys(SKIP)]);
const unlisted = readdirSync(examplesDir).filter((file) => file.endsWith(".ts") && !listed.has(file));
if (unlisted.length > 0) {
  console.error(`examples not listed in scripts/run-examples.mjs: ${unlisted.join(", ")}; add each to RUN or SKIP.`);
  process.exit(1);
}

// Without these the examples start the embedded mock controller instead of calling a real one.
const env = { ...process.env };
for (const name of ["JMP_ENDPOINT", "JMP_NAMESPACE", "JMP_TOKEN", "JMP_NAME"]) delete env[name];

let failed = 0;
for (const { file, args, env: extraEnv } of RUN) {
  const label = [file, ...args.map((arg) => JSON.stringify(arg))].join(" ");
  const startedAt = performance.now();
  const { code, output } = await runExample(file, args, extraEnv);
  const seconds = ((performance.now() - startedAt) / 1000).toFixed(1);

  if (code === 0 && output.trim() !== "") {
    console.log(`ok    ${label} (${seconds} s)`);
    continue;
  }
  failed += 1;
  let reason = `exited with code ${code}`;
  if (code === 0) reason = "printed nothing";
  if (code === null) reason = `timed out after ${TIMEOUT_MS} ms`;
  console.log(`FAIL  ${label} ${reason} (${seconds} s); its output:\n${output}`);
}

console.log(`${RUN.length - failed} passed, ${failed} failed`);
process.exitCode = failed === 0 ? 0 : 1;

/** Runs one example with tsx; `code` is null when it ran past TIMEOUT_MS and was killed. */
function runExample(file, args, extraEnv = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", `examples/${file}`, ...args], { cwd: root, env: { ...env, ...extraEnv } });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, TIMEOUT_MS);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code: timedOut ? null : code, output });
    });
  });
}
