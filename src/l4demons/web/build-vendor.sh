#!/usr/bin/env bash
# Rebuild the vendored board library of the web page (vendor.js, vendor.css,
# pieces.svg, markers.svg, vendor-licenses.txt) from npm. Run from anywhere:
#     bash src/l4demons/web/build-vendor.sh
# Needs node + npm and the npm registry; nothing else. The outputs are
# committed, so serving the page needs no network and no CDN.
#   cm-chessboard (MIT)    the board: SVG, drag and click input, markers, promotion dialog
#   chess.js (BSD-2)       move legality and PGN on the page
#   esbuild (MIT)          bundles the two into one minified ES module
set -euo pipefail
CM_CHESSBOARD=8.15.1
CHESS_JS=1.4.0
ESBUILD=0.28.2
out="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm init -y >/dev/null
npm install --no-audit --no-fund --silent "cm-chessboard@$CM_CHESSBOARD" "chess.js@$CHESS_JS" "esbuild@$ESBUILD"
cat > entry.js <<'JS'
export {Chessboard, COLOR, INPUT_EVENT_TYPE, BORDER_TYPE, FEN} from "cm-chessboard/src/Chessboard.js"
export {Markers, MARKER_TYPE} from "cm-chessboard/src/extensions/markers/Markers.js"
export {PromotionDialog, PROMOTION_DIALOG_RESULT_TYPE} from "cm-chessboard/src/extensions/promotion-dialog/PromotionDialog.js"
export {Chess} from "chess.js"
JS
npx esbuild entry.js --bundle --format=esm --minify --target=es2020 --legal-comments=none \
    --banner:js="/* cm-chessboard $CM_CHESSBOARD (MIT, Stefan Haack) + chess.js $CHESS_JS (BSD-2-Clause, Jeff Hlywa); see vendor-licenses.txt */" \
    --outfile="$out/vendor.js"
assets=node_modules/cm-chessboard/assets
{
    echo "/* cm-chessboard $CM_CHESSBOARD styles (MIT, Stefan Haack); see vendor-licenses.txt */"
    cat "$assets/chessboard.css" "$assets/extensions/markers/markers.css" "$assets/extensions/promotion-dialog/promotion-dialog.css"
} | sed '/sourceMappingURL/d' > "$out/vendor.css"
cp "$assets/pieces/standard.svg" "$out/pieces.svg"
cp "$assets/extensions/markers/markers.svg" "$out/markers.svg"
{
    echo "cm-chessboard $CM_CHESSBOARD -- vendor.js, vendor.css, pieces.svg, markers.svg"; echo
    cat node_modules/cm-chessboard/LICENSE; echo; echo "----"; echo
    echo "chess.js $CHESS_JS -- vendor.js"; echo
    cat node_modules/chess.js/LICENSE
} > "$out/vendor-licenses.txt"
ls -l "$out"
