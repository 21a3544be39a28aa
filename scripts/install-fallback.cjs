// The package's install script runs this when node-gyp-build failed: no prebuilt addon fits this
// machine and the source build failed (no C compiler, make or Python 3, say). It warns and exits
// 0, so the install succeeds and the app runs on the portable backend.
console.warn(
  'node-gevent: no prebuilt native addon fits this machine and building it from source failed; ' +
    'the portable backend will be used. For the native backend, install a C compiler, make and Python 3, ' +
    'then run: npm rebuild node-gevent --build-from-source',
);
