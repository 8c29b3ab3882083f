// ESLint settings: the recommended JavaScript and typescript-eslint rules, without type-aware
// rules so that the lint step stays fast. gen/ is generated and is not linted.
import js from "@eslint/js";
import globals from "globals";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["gen/**", "dist/**", "docs/**", "temp/**", "node_modules/**"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  { languageOptions: { globals: globals.node } },
  {
    rules: {
      // Unused arguments keep callback signatures readable; a leading underscore marks them.
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }],
    },
  },
  {
    files: ["test/**", "bench/**", "examples/**"],
    rules: {
      // Tests read decoded wire messages and grpc-js responses, which are untyped.
      "@typescript-eslint/no-explicit-any": "off",
      // vitest reads a fixture's dependencies from its destructured first parameter, even an empty one.
      "no-empty-pattern": ["error", { allowObjectPatternsAsParameters: true }],
    },
  },
);
