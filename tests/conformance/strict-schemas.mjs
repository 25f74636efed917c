// Compiles every tool's inputSchema and outputSchema from a `tools/list` result (JSON on stdin: the result
// object or its `tools` array) with Ajv in strict mode, as clients such as Claude Code do, and prints each
// warning or error ("unknown format \"uint64\" ignored in schema at path …"). Exit status 1 when there is any.
//
// Usage: SLUICE_NODE_MODULES=<node_modules of install.sh's prefix> node strict-schemas.mjs < tools.json
// (Ajv comes from the pinned tree install.sh installs, next to the conformance suite.)
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const modules = process.env.SLUICE_NODE_MODULES;
if (!modules) {
  console.error("strict-schemas.mjs: set SLUICE_NODE_MODULES to the node_modules install.sh filled");
  process.exit(2);
}
const require = createRequire(join(modules, "ajv", "package.json"));
const Ajv2020 = require("ajv/dist/2020").default;
const addFormats = require("ajv-formats").default;

const input = JSON.parse(readFileSync(0, "utf8"));
const tools = Array.isArray(input) ? input : input.tools;
const problems = [];
for (const tool of tools) {
  for (const which of ["inputSchema", "outputSchema"]) {
    const schema = tool[which];
    if (schema === undefined) continue;
    const where = `${tool.name}.${which}`;
    const logger = {
      log: () => {},
      warn: (...args) => problems.push(`${where}: warning: ${args.join(" ")}`),
      error: (...args) => problems.push(`${where}: error: ${args.join(" ")}`),
    };
    // strict: unknown keywords and formats, ignored defaults and the like are reported. Union types
    // (`"type": ["string", "null"]`) are standard JSON Schema, so they are allowed. Only the formats JSON
    // Schema itself defines are known: OpenAPI's `int64` or `double` are as foreign to a client as
    // schemars' `uint64`.
    const ajv = new Ajv2020({ strict: true, allowUnionTypes: true, logger });
    addFormats(ajv, ["date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uri", "uri-reference", "uri-template", "uuid", "json-pointer", "relative-json-pointer", "regex"]);
    try {
      ajv.compile(schema);
    } catch (e) {
      problems.push(`${where}: ${e.message}`);
    }
  }
}
for (const p of problems) console.log(p);
console.log(`checked ${tools.length} tools: ${problems.length} problems`);
process.exit(problems.length ? 1 : 0);
