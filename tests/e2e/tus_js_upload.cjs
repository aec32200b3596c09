// A stock tus-js-client (the npm package the web page vendors), run by Node: given only an
// upload URL from create_task, a file and its filename, it uploads the file. Prints the upload
// URL on success; exits 1 with tus-js-client's error otherwise.
//   node tus_js_upload.cjs <tus-js-client dir> <endpoint> <file> <filename>
"use strict";
const fs = require("fs");
const [clientDir, endpoint, file, filename] = process.argv.slice(2);
const tus = require(clientDir);

const upload = new tus.Upload(fs.createReadStream(file), {
  endpoint,
  uploadSize: fs.statSync(file).size,
  chunkSize: 8 * 1024 * 1024, // a Node stream needs one
  metadata: { filename },
  retryDelays: [0, 1000],
  onError(error) {
    console.error(String(error));
    process.exit(1);
  },
  onSuccess() {
    console.log(upload.url);
  },
});
upload.start();
