// Answers requests about circomlib's primitives with circomlibjs itself, for the Rust tests that
// compare proofmill's implementation with one no one here wrote.
//
//   PROOFMILL_CIRCOMLIB_DIR=DIR node circuits/tests/js/circomlib.mjs < request.json
//
// DIR is where scripts/circomlib-setup.sh installed circomlibjs. The request is one JSON object
// whose keys are optional lists:
//   poseidon: [[x, ...], ...]            -> poseidon: ["h", ...]
//   prv2pub:  ["hex32", ...]             -> prv2pub: [["Ax", "Ay"], ...]
//   sign:     [{prv: "hex32", msg: "m"}] -> sign: [{R8: ["x", "y"], S: "s"}, ...]
//   verify:   [{msg, R8: [x, y], S, A: [x, y]}] -> verify: [true|false, ...]
//   blake512: ["hex", ...]               -> blake512: ["hex64", ...]
// Numbers are decimal strings (0x-hex accepted on input); the answer is one JSON object on stdout.
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";

const dir = process.env.PROOFMILL_CIRCOMLIB_DIR;
if (!dir) {
  console.error("circomlib.mjs: set PROOFMILL_CIRCOMLIB_DIR to the directory scripts/circomlib-setup.sh printed");
  process.exit(2);
}
const lib = path.join(path.resolve(dir), "node_modules", "circomlibjs");
const { buildPoseidon, buildEddsa } = await import(pathToFileURL(path.join(lib, "main.js")).href);
const createBlakeHash = createRequire(path.join(lib, "package.json"))("blake-hash");

let text = "";
for await (const chunk of process.stdin) text += chunk;
const request = JSON.parse(text);

const poseidon = await buildPoseidon();
const eddsa = await buildEddsa();
const F = eddsa.F;
const big = (x) => BigInt(x);
const dec = (element) => F.toObject(element).toString();
const point = (p) => [F.e(big(p[0])), F.e(big(p[1]))];

const answer = {};
if (request.poseidon) {
  answer.poseidon = request.poseidon.map((inputs) => poseidon.F.toObject(poseidon(inputs.map(big))).toString());
}
if (request.prv2pub) {
  answer.prv2pub = request.prv2pub.map((prv) => eddsa.prv2pub(Buffer.from(prv, "hex")).map(dec));
}
if (request.sign) {
  answer.sign = request.sign.map(({ prv, msg }) => {
    const sig = eddsa.signPoseidon(Buffer.from(prv, "hex"), F.e(big(msg)));
    return { R8: sig.R8.map(dec), S: sig.S.toString() };
  });
}
if (request.verify) {
  answer.verify = request.verify.map(({ msg, R8, S, A }) =>
    eddsa.verifyPoseidon(F.e(big(msg)), { R8: point(R8), S: big(S) }, point(A)),
  );
}
if (request.blake512) {
  answer.blake512 = request.blake512.map((hex) =>
    createBlakeHash("blake512").update(Buffer.from(hex, "hex")).digest().toString("hex"),
  );
}
process.stdout.write(JSON.stringify(answer) + "\n");
