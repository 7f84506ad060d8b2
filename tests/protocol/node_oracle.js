// Test oracle: answers each JSON line on stdin with what ECMAScript itself computes.
// The Python port of the Cloak x402 encoding is checked against a real JS engine.
const readline = require("readline");

function fnv(text) {
  let h1 = 0x811c9dc5;
  let h2 = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) {
    const unit = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ unit, 0x01000193);
    h2 = Math.imul(h2 ^ unit, 0x27d4eb2d);
  }
  const part = (h) => (h >>> 0).toString(16).padStart(8, "0");
  return (part(h1) + part(h2)).repeat(4);
}

function answer(request) {
  switch (request.op) {
    case "stringify":
      return JSON.stringify(request.value);
    case "fnv":
      return fnv(request.value);
    case "bigint":
      try {
        return BigInt(request.value).toString();
      } catch (error) {
        return null;
      }
    case "date": {
      const ms = Date.parse(request.value);
      return Number.isNaN(ms) ? null : ms;
    }
    case "parse":
      try {
        return JSON.stringify(JSON.parse(request.value));
      } catch (error) {
        return null;
      }
    default:
      throw new Error("unknown op " + request.op);
  }
}

const lines = readline.createInterface({ input: process.stdin });
lines.on("line", (line) => {
  process.stdout.write(JSON.stringify({ result: answer(JSON.parse(line)) }) + "\n");
});
