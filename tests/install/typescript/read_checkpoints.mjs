// Reads checkpoint files with the installed npm package @dsxir/checkpoint.
// One line per file: its name, session id, status number, trial count and
// whether the canonical re-encoding equals the bytes read.
import { readFileSync } from "node:fs";
import { basename } from "node:path";

import { decode, encode } from "@dsxir/checkpoint";

for (const path of process.argv.slice(2)) {
  const data = new Uint8Array(readFileSync(path));
  const cp = decode(data);
  const same = Buffer.from(encode(cp)).equals(Buffer.from(data)) ? "identical" : "different";
  const trials = cp.progress ? cp.progress.trialLog.length : 0;
  console.log(
    `${basename(path, ".binpb")} session_id=${cp.sessionId} status=${cp.status} trials=${trials} reencoded=${same}`,
  );
}
