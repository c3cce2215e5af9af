#pragma once
// eventually(ok, limit): polls `ok` until it holds or `limit` passes (then
// checks once more); for tests that wait on real processes.

#include <chrono>
#include <thread>

namespace runnel::testing {

template <class F>
bool eventually(F ok, std::chrono::milliseconds limit,
                std::chrono::milliseconds every = std::chrono::milliseconds(50)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (ok()) return true;
    std::this_thread::sleep_for(every);
  }
  return ok();
}

}  // namespace runnel::testing
