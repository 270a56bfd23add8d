// For sdk_external.test.mjs: counts each run of the External command (one
// line appended to $CREDSYNC_TEST_EXTERNAL_RUNS), then runs
// deploy/examples/node-external/credsync-external.cjs with the same arguments.
'use strict';

const fs = require('fs');
const path = require('path');

fs.appendFileSync(process.env.CREDSYNC_TEST_EXTERNAL_RUNS, 'run\n');
require(path.resolve(__dirname, '..', '..', '..', 'deploy', 'examples', 'node-external', 'credsync-external.cjs'));
