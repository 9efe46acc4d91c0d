#!/usr/bin/env bash
# Installs solc-js 0.8.19 (the npm package `solc`, which works offline) under DIR and writes a
# `solc` command there that answers `solc --bin -` and `solc --version` like the native
# compiler. Prints the directory to put on PATH. Idempotent.
#   usage: scripts/solc-setup.sh DIR
set -euo pipefail
dir=$(mkdir -p "${1:?usage: solc-setup.sh DIR}" && cd "$1" && pwd)
if [ ! -f "$dir/node_modules/solc/package.json" ]; then
  (cd "$dir" && npm install --no-audit --no-fund --silent solc@0.8.19 >&2)
fi
mkdir -p "$dir/bin"
cat > "$dir/bin/solc" <<JS
#!/usr/bin/env node
// solc --bin - with solc-js: Solidity on stdin, deployment bytecode on stdout.
const solc = require("$dir/node_modules/solc");
const args = process.argv.slice(2);
if (args.includes("--version")) {
  console.log("solc, the solidity compiler commandline interface\nVersion: " + solc.version());
  process.exit(0);
}
if (!(args.includes("--bin") && args.includes("-"))) {
  console.error("this solc (solc-js wrapper) supports only: solc --bin -   and   solc --version");
  process.exit(2);
}
let source = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (source += chunk));
process.stdin.on("end", () => {
  const input = {
    language: "Solidity",
    sources: { "<stdin>": { content: source } },
    settings: { outputSelection: { "*": { "*": ["evm.bytecode.object"] } } },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input)));
  const errors = (output.errors || []).filter((e) => e.severity === "error");
  if (errors.length > 0) {
    for (const e of errors) console.error(e.formattedMessage || e.message);
    process.exit(1);
  }
  for (const [file, contracts] of Object.entries(output.contracts || {})) {
    for (const [name, contract] of Object.entries(contracts)) {
      console.log("\n======= " + file + ":" + name + " =======\nBinary:\n" + contract.evm.bytecode.object);
    }
  }
});
JS
chmod +x "$dir/bin/solc"
echo "$dir/bin"
