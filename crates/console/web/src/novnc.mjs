/*! noVNC 1.4.0 (@novnc/novnc from the npm registry), MPL-2.0: its RFB class,
 * bundled for the hvnode console; with pako (MIT) for the zlib encodings. */
// The one noVNC script the console serves (/static/novnc.js): the RFB class as
// window.RFB. `npm run bundle` (esbuild, an IIFE) writes dist/novnc.js, which
// crates/console/build.rs copies into the binary.
import RFB from "@novnc/novnc/core/rfb.js";

window.RFB = RFB;
