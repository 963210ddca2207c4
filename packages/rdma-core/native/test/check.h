// CHECK for the native tests: a failed condition is printed with its place and counted in `failures`; main()
// fails the run when it is not zero (so one run reports every broken check, not only the first).
#pragma once

#include <cstdio>

static int failures = 0;
#define CHECK(cond)                                                                 \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                                   \
    }                                                                               \
  } while (0)
