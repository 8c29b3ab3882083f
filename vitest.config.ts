import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Tests run real loopback gRPC servers; a hung call should fail the test, not the whole run.
    testTimeout: 20_000,
    hookTimeout: 20_000,
  },
});
