#!/usr/bin/env bash
# 更新控制台的第三方浏览器库 (vendors the console's browser libraries from npm).
# Run only when console/package.json changes: the copied files are kept in the tree, so running the
# product needs no npm and no internet. --ignore-scripts: no install script of a dependency runs here.
set -euo pipefail
cd "$(dirname "$0")/../console"
npm ci --ignore-scripts --no-audit --no-fund
dest=../service/console/static/vendor
mkdir -p "$dest"
cp node_modules/echarts/dist/echarts.min.js "$dest/echarts.min.js"
cp node_modules/echarts/LICENSE "$dest/echarts.LICENSE.txt"
echo "vendored echarts $(node -p 'require("./node_modules/echarts/package.json").version') into $dest"
