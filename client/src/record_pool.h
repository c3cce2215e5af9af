#pragma once
// record_vector_pool: the record vectors of a consumer's polls, reused. A
// catch-up poll holds tens of thousands of record_views (megabytes); a
// fresh vector each poll meant page faults on every one of its pages and
// stores into cold memory (docs/performance.md, "The read path").
// Thread-safe: vectors come back from wherever the user drops a poll.

#include <cstddef>
#include <mutex>
#include <vector>

#include "runnel/record.h"

namespace runnel::detail {

class record_vector_pool {
 public:
  // An empty vector, with the capacity of one given back if any.
  std::vector<record_view> take();
  // Keeps `v`'s memory (its records are destroyed) while fewer than
  // max_kept are waiting.
  void give_back(std::vector<record_view>&& v);

 private:
  static constexpr std::size_t max_kept = 2;  // one poll held, one decoding
  std::mutex mu_;
  std::vector<std::vector<record_view>> free_;  // guarded by mu_
};

}  // namespace runnel::detail
