// HERALD_FUZZ_CHECK: the fuzz targets' assert. A failed check prints where and what, then aborts,
// which libFuzzer reports as a crash and a corpus replay test as a failure. Unlike assert() it
// stays on in release builds, where the replay tests run.
#pragma once

#include <cstdio>
#include <cstdlib>

#define HERALD_FUZZ_CHECK(cond)                                                     \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (false)
