#pragma once
// RUNNEL_ASSERT(cond, "fmt", args...): guards our own invariants. Logs and
// aborts in every build. Never use it on bytes from disk or the network:
// those get an error code.

#include <fmt/format.h>

namespace runnel::detail {
[[noreturn]] void assert_failed(const char* cond, const char* file, int line, const std::string& msg);
}

#define RUNNEL_ASSERT(cond, ...)                                                          \
  do {                                                                                    \
    if (!(cond)) [[unlikely]] {                                                           \
      ::runnel::detail::assert_failed(#cond, __FILE__, __LINE__, fmt::format(__VA_ARGS__)); \
    }                                                                                     \
  } while (false)
