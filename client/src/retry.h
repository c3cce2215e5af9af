#pragma once
// What runnel::processor and runnel::share_processor share: the wait
// before a retry, and a handler call that turns an exception into a retry.

#include <chrono>
#include <functional>
#include <random>

#include "runnel/processor.h"

namespace runnel::client {

// The wait after `attempts` failed calls: initial_backoff * multiplier^(attempts-1),
// at most max_backoff, with the policy's jitter.
std::chrono::milliseconds retry_backoff(const retry_policy& p, int attempts, std::mt19937& rng);

// invalid_argument when the policy cannot work: max_attempts < 1, a jitter
// outside [0, 1).
result<void> check_retry_policy(const retry_policy& p);

// One handler call; a thrown exception is a retry with its text.
process_result call_handler(const std::function<process_result(const record_view&)>& h, const record_view& r);

}  // namespace runnel::client
