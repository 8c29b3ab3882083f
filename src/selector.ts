import { InvalidArgumentError } from "./errors.js";

/** Operator of one label-selector requirement, as Kubernetes names them. */
export type SelectorOperator = "=" | "!=" | "in" | "notin" | "exists" | "!" | ">" | "<";

/**
 * One requirement of a label selector. `values` is empty for `exists` and `!` (does not exist),
 * contains one value for `=` and `!=`, one integer for `>` and `<`, and one or more for `in` and
 * `notin`.
 */
export interface SelectorRequirement {
  /** Label key, such as `board` or `example.com/arch`. */
  key: string;
  /** Comparison between the label's value and `values`. */
  operator: SelectorOperator;
  /** Values to compare with; empty for `exists` and `!`. */
  values: string[];
}

/** A parsed label selector: every requirement must match (comma means AND). */
export interface ParsedSelector {
  /** Requirements in the order they were written. */
  requirements: SelectorRequirement[];
}

/**
 * Input of {@link buildSelector}: a string value means `key=value`, an array means `key in (...)`,
 * `true` means the key must exist and `false` that it must not.
 */
export type SelectorObject = Record<string, string | readonly string[] | boolean>;

// Label keys: an optional DNS subdomain prefix (at most 253 characters) and a slash, then a name of
// at most 63 characters that starts and ends with an alphanumeric character.
const NAME_PART = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const PREFIX_PART = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
// Label values: empty, or at most 63 characters that start and end with an alphanumeric character.
const VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;
// Values of `>` and `<`, which Kubernetes compares as 64-bit integers.
const INTEGER = /^-?[0-9]{1,18}$/;

/** Reports why `key` is not a valid Kubernetes label key, or `undefined` when it is valid. */
export function labelKeyProblem(key: string): string | undefined {
  const slash = key.indexOf("/");
  const name = slash === -1 ? key : key.slice(slash + 1);
  if (slash !== -1) {
    const prefix = key.slice(0, slash);
    if (prefix.length === 0 || prefix.length > 253 || !PREFIX_PART.test(prefix)) {
      return `the prefix "${prefix}" is not a DNS subdomain (lowercase letters, digits, "-" and ".", at most 253 characters)`;
    }
  }
  if (name.length === 0 || name.length > 63 || !NAME_PART.test(name)) {
    return `the name "${name}" must be 1 to 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit`;
  }
  return undefined;
}

/** Reports why `value` is not a valid Kubernetes label value, or `undefined` when it is valid. */
export function labelValueProblem(value: string): string | undefined {
  if (value.length > 63 || !VALUE.test(value)) {
    return `the value "${value}" must be at most 63 letters, digits, "-", "_" or ".", starting and ending with a letter or digit`;
  }
  return undefined;
}

/** Raised for a malformed selector; `position` is the zero-based offset of the problem. */
function selectorError(selector: string, position: number, problem: string): InvalidArgumentError {
  const pointer = `${" ".repeat(position)}^`;
  return new InvalidArgumentError(
    `invalid label selector at position ${position}: ${problem}\n  ${selector}\n  ${pointer}\n` +
      `Use Kubernetes label-selector syntax, for example "board=rpi4,env in (lab,ci),!reserved".`,
    { resource: selector },
  );
}

type Token =
  | { kind: "word"; text: string; start: number }
  | { kind: "op"; text: "=" | "==" | "!=" | "!" | ">" | "<"; start: number }
  | { kind: "punct"; text: "(" | ")" | ","; start: number };

function tokenize(selector: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < selector.length) {
    const ch = selector[i]!;
    if (ch === " " || ch === "\t") {
      i++;
      continue;
    }
    if (ch === "(" || ch === ")" || ch === ",") {
      tokens.push({ kind: "punct", text: ch, start: i });
      i++;
      continue;
    }
    if (ch === "!") {
      const isNotEqual = selector[i + 1] === "=";
      tokens.push({ kind: "op", text: isNotEqual ? "!=" : "!", start: i });
      i += isNotEqual ? 2 : 1;
      continue;
    }
    if (ch === ">" || ch === "<") {
      tokens.push({ kind: "op", text: ch, start: i });
      i++;
      continue;
    }
    if (ch === "=") {
      const isDouble = selector[i + 1] === "=";
      tokens.push({ kind: "op", text: isDouble ? "==" : "=", start: i });
      i += isDouble ? 2 : 1;
      continue;
    }
    const start = i;
    while (i < selector.length && !" \t(),!=<>".includes(selector[i]!)) i++;
    tokens.push({ kind: "word", text: selector.slice(start, i), start });
  }
  return tokens;
}

/**
 * Parses a Kubernetes label selector such as `board=rpi4,env in (lab,ci),!reserved`.
 *
 * Accepts `key=value`, `key==value`, `key!=value`, `key in (v1,v2)`, `key notin (v1)`, `key`,
 * `!key`, and the integer comparisons `key>3` and `key<3`, joined by commas. The empty string is a valid selector that matches everything.
 *
 * @throws InvalidArgumentError naming the selector and the zero-based position of the problem.
 */
export function parseSelector(selector: string): ParsedSelector {
  const tokens = tokenize(selector);
  const requirements: SelectorRequirement[] = [];
  let pos = 0;
  const end = selector.length;
  const peek = (): Token | undefined => tokens[pos];
  const at = (token: Token | undefined): number => token?.start ?? end;

  const readKey = (): string => {
    const token = peek();
    if (token?.kind !== "word") throw selectorError(selector, at(token), "expected a label key");
    const problem = labelKeyProblem(token.text);
    if (problem) throw selectorError(selector, token.start, `invalid label key: ${problem}`);
    pos++;
    return token.text;
  };

  const readValue = (): string => {
    const token = peek();
    // An empty value is allowed after `=` and `!=` (Kubernetes accepts `key=`).
    if (token === undefined || (token.kind === "punct" && token.text !== "(")) return "";
    if (token.kind !== "word") throw selectorError(selector, token.start, "expected a label value");
    const problem = labelValueProblem(token.text);
    if (problem) throw selectorError(selector, token.start, `invalid label value: ${problem}`);
    pos++;
    return token.text;
  };

  const readValueSet = (): string[] => {
    const open = peek();
    if (open?.kind !== "punct" || open.text !== "(") {
      throw selectorError(selector, at(open), 'expected "(" to start the value set');
    }
    pos++;
    const first = peek();
    if (first?.kind === "punct" && first.text === ")") {
      throw selectorError(selector, first.start, '"in" and "notin" need at least one value');
    }
    const values: string[] = [];
    for (;;) {
      const token = peek();
      if (token?.kind === "word") {
        const problem = labelValueProblem(token.text);
        if (problem) throw selectorError(selector, token.start, `invalid label value: ${problem}`);
        values.push(token.text);
        pos++;
      } else if (token?.kind === "punct" && (token.text === "," || token.text === ")")) {
        // Kubernetes allows an empty value inside a set, as in `key in (a,)`.
        values.push("");
      } else {
        throw selectorError(selector, at(token), 'expected a label value or ")"');
      }
      const next = peek();
      if (next?.kind === "punct" && next.text === ",") {
        pos++;
        continue;
      }
      if (next?.kind === "punct" && next.text === ")") {
        pos++;
        return values;
      }
      throw selectorError(selector, at(next), 'expected "," or ")" in the value set');
    }
  };

  if (tokens.length === 0) return { requirements };

  for (;;) {
    const first = peek();
    if (first?.kind === "op" && first.text === "!") {
      pos++;
      requirements.push({ key: readKey(), operator: "!", values: [] });
    } else {
      const key = readKey();
      const op = peek();
      if (op === undefined || (op.kind === "punct" && op.text === ",")) {
        requirements.push({ key, operator: "exists", values: [] });
      } else if (op.kind === "op" && (op.text === ">" || op.text === "<")) {
        pos++;
        const token = peek();
        if (token?.kind !== "word" || !INTEGER.test(token.text)) {
          throw selectorError(selector, at(token), `expected an integer after "${op.text}"`);
        }
        pos++;
        requirements.push({ key, operator: op.text, values: [token.text] });
      } else if (op.kind === "op" && op.text !== "!") {
        pos++;
        const operator = op.text === "!=" ? "!=" : "=";
        requirements.push({ key, operator, values: [readValue()] });
      } else if (op.kind === "word" && (op.text === "in" || op.text === "notin")) {
        pos++;
        requirements.push({ key, operator: op.text, values: readValueSet() });
      } else {
        throw selectorError(selector, op.start, 'expected an operator ("=", "==", "!=", ">", "<", "in" or "notin")');
      }
    }

    const separator = peek();
    if (separator === undefined) return { requirements };
    if (separator.kind !== "punct" || separator.text !== ",") {
      throw selectorError(selector, separator.start, 'expected "," between requirements');
    }
    pos++;
    if (peek() === undefined) throw selectorError(selector, end, "expected a requirement after the comma");
  }
}

/**
 * Formats a parsed selector in canonical form: `key=value`, `key!=value`, `key in (a,b)`,
 * `key notin (a)`, `key`, `!key`, joined by commas with no spaces except around `in` and `notin`.
 * The output parses back to an equal selector.
 */
export function formatSelector(selector: ParsedSelector): string {
  return selector.requirements
    .map(({ key, operator, values }) => {
      switch (operator) {
        case "=":
        case "!=":
        case ">":
        case "<":
          return `${key}${operator}${values[0] ?? ""}`;
        case "in":
        case "notin":
          return `${key} ${operator} (${values.join(",")})`;
        case "exists":
          return key;
        case "!":
          return `!${key}`;
      }
    })
    .join(",");
}

/**
 * Tells whether `labels` satisfy `selector`, with Kubernetes semantics: `!=` and `notin` match
 * when the key is absent, and `>` and `<` match only a label whose value is an integer. A string selector is parsed first and throws when malformed.
 */
export function selectorMatches(
  selector: string | ParsedSelector,
  labels: Readonly<Record<string, string>>,
): boolean {
  const parsed = typeof selector === "string" ? parseSelector(selector) : selector;
  return parsed.requirements.every(({ key, operator, values }) => {
    const has = Object.hasOwn(labels, key);
    const value = labels[key];
    switch (operator) {
      case "=":
        return has && value === values[0];
      case "!=":
        return !has || value !== values[0];
      case "in":
        return has && values.includes(value!);
      case "notin":
        return !has || !values.includes(value!);
      case "exists":
        return has;
      case "!":
        return !has;
      case ">":
      case "<": {
        if (!has || !INTEGER.test(value!)) return false;
        const difference = BigInt(value!) - BigInt(values[0]!);
        return operator === ">" ? difference > 0n : difference < 0n;
      }
    }
  });
}

/**
 * Builds a selector string from an object: `{ board: "rpi4", env: ["lab", "ci"], reserved: false }`
 * gives `board=rpi4,env in (lab,ci),!reserved`. Keys keep their insertion order.
 *
 * @throws InvalidArgumentError for an invalid key or value, or an empty value list.
 */
export function buildSelector(labels: SelectorObject): string {
  const requirements: SelectorRequirement[] = [];
  for (const [key, wanted] of Object.entries(labels)) {
    const keyProblem = labelKeyProblem(key);
    if (keyProblem) {
      throw new InvalidArgumentError(`invalid label key "${key}" in selector object: ${keyProblem}.`);
    }
    if (typeof wanted === "boolean") {
      requirements.push({ key, operator: wanted ? "exists" : "!", values: [] });
      continue;
    }
    const values = typeof wanted === "string" ? [wanted] : [...wanted];
    if (values.length === 0) {
      throw new InvalidArgumentError(
        `the value list for label "${key}" is empty; give at least one value, or false to require that the label is absent.`,
      );
    }
    for (const value of values) {
      const valueProblem = labelValueProblem(value);
      if (valueProblem) {
        throw new InvalidArgumentError(`invalid value for label "${key}" in selector object: ${valueProblem}.`);
      }
    }
    requirements.push(
      values.length === 1 ? { key, operator: "=", values } : { key, operator: "in", values },
    );
  }
  return formatSelector({ requirements });
}
