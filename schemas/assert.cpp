#include "schemas/assert.h"

#include <cstdio>
#include <cstdlib>

namespace runnel::detail {

void assert_failed(const char* cond, const char* file, int line, const std::string& msg) {
  std::fprintf(stderr, "RUNNEL_ASSERT(%s) failed at %s:%d: %s\n", cond, file, line, msg.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace runnel::detail
