// Runs __sys calls and engine paths while the heap sits at the 256 MiB limit, so that their out-of-memory
// paths run: native/smoke.sh builds it for the sanitizer variant, where a leak, use-after-free or refcount
// mistake on such a path is a report (and the engine's own leak assert at exit). Each level of free memory
// is tried a few times; any call may fail with an exception (null when even the error object could not be
// allocated). The run must end normally after the memory is released.
"use strict";
(function () {
  const S = __sys;
  const C = S.constants;
  const print = (s) => {
    const b = S.utf8Encode(s + "\n");
    S.write(1, b, 0, b.length);
  };
  const dfd = S.openat(C.AT_FDCWD, "/tmp", C.O_RDONLY | C.O_DIRECTORY | C.O_CLOEXEC, 0);
  const text = S.utf8Encode("h\u00e9llo \u{1F600} \ud800 world".repeat(50));
  const bad = new Uint8Array(300).fill(0xff);
  const calls = [
    () => S.fstat(dfd),
    () => S.fstatat(dfd, ".", 0),
    () => S.readdir(dfd),
    () => S.env(),
    () => S.argv(),
    () => S.utf8Encode("x\u00e9\u{1F600}".repeat(200)),
    () => S.utf8Decode(text, 0, text.length),
    () => S.utf8Decode(bad, 0, bad.length),
    () => S.openat(dfd, "nonexistent-\u00e9\ud800", 0, 0),
    () => S.hash32(text, 0, text.length),
    () => JSON.parse('{"a":[1,2,{"b":"' + "\u00e9".repeat(100) + '"}]}'),
    () => JSON.stringify({ a: [1, 2, { b: "x".repeat(100) }] }),
    () => { throw new Error("thrown while memory is short"); },
  ];
  let hog = [];
  let failures = 0;
  let successes = 0;
  for (let size = 1 << 20; size >= 16; size >>= 1) {
    try {
      for (;;) hog.push(new Uint8Array(size));
    } catch (e) {}
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < calls.length; i++) {
        try {
          calls[i]();
          successes++;
        } catch (e) {
          failures++;
        }
      }
    }
  }
  hog = null;
  for (const c of calls.slice(0, -1)) c();
  print("oom: " + successes + " calls succeeded and " + failures + " failed at the limit; all succeed after");
})();
