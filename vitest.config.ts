import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

export default defineConfig({
  resolve: {
    // Examples and tests import the package by its public name; map it to the sources.
    alias: {
      "@jumpstarter/sdk/testing": fileURLToPath(new URL("./src/testing/index.ts", import.meta.url)),
      "@jumpstarter/sdk": fileURLToPath(new URL("./src/index.ts", import.meta.url)),
    },
  },
  test: {
    include: ["test/**/*.test.ts", "examples/**/*.test.ts"],
    // Tests run real loopback gRPC servers; a hung call should fail the test, not the whole run.
    testTimeout: 20_000,
    hookTimeout: 20_000,
  },
});
