#include "client/src/retry.h"

#include <algorithm>
#include <cmath>
#include <exception>

namespace runnel::client {

std::chrono::milliseconds retry_backoff(const retry_policy& p, int attempts, std::mt19937& rng) {
  double w = static_cast<double>(p.initial_backoff.count()) * std::pow(p.multiplier, std::max(0, attempts - 1));
  w = std::min(w, static_cast<double>(p.max_backoff.count()));
  std::uniform_real_distribution<double> j(1.0 - p.jitter, 1.0 + p.jitter);
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::max(0.0, w * j(rng))));
}

result<void> check_retry_policy(const retry_policy& p) {
  if (p.max_attempts < 1) return std::unexpected(error{errc::invalid_argument, "max_attempts must be >= 1"});
  if (p.jitter < 0 || p.jitter >= 1) return std::unexpected(error{errc::invalid_argument, "jitter must be in [0, 1)"});
  return {};
}

process_result call_handler(const std::function<process_result(const record_view&)>& h, const record_view& r) {
  try {
    return h(r);
  } catch (const std::exception& e) {
    return process_result::retry_later(e.what());
  } catch (...) {
    return process_result::retry_later("the handler threw a non-std exception");
  }
}

}  // namespace runnel::client
