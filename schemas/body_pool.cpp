#include "schemas/body_pool.h"

#include <algorithm>
#include <utility>

namespace runnel::schemas {

namespace {
// Capacities in steps of 256 KiB, so answers of nearly one size share blocks.
constexpr std::size_t capacity_step = 256 * 1024;
}  // namespace

std::shared_ptr<body_pool> body_pool::make(std::size_t max_free_bytes) {
  return std::shared_ptr<body_pool>(new body_pool(max_free_bytes));
}

frame_body body_pool::take(std::size_t n) {
  if (n < min_pooled_bytes) {
    auto small = std::make_shared_for_overwrite<std::byte[]>(n);
    return frame_body{small, std::span<std::byte>(small.get(), n)};
  }
  block b;
  {
    std::lock_guard lock(mu_);
    // The smallest free block that holds n.
    auto best = free_.end();
    for (auto it = free_.begin(); it != free_.end(); ++it) {
      if (it->capacity >= n && (best == free_.end() || it->capacity < best->capacity)) best = it;
    }
    if (best != free_.end()) {
      b = std::move(*best);
      free_.erase(best);
      free_bytes_ -= b.capacity;
    }
  }
  if (!b.data) {
    b.capacity = (n + capacity_step - 1) / capacity_step * capacity_step;
    b.data = std::make_unique_for_overwrite<std::byte[]>(b.capacity);
  }
  std::byte* data = b.data.get();
  std::weak_ptr<body_pool> home = weak_from_this();
  // The owner hands the block back (or frees it) when the last holder goes.
  std::shared_ptr<const void> owner(data, [home = std::move(home), b = std::make_shared<block>(std::move(b))](const void*) mutable {
    if (auto pool = home.lock()) pool->give_back(std::move(*b));
  });
  return frame_body{std::move(owner), std::span<std::byte>(data, n)};
}

void body_pool::give_back(block b) {
  std::lock_guard lock(mu_);
  if (b.capacity > max_free_bytes_) return;  // freed as it goes out of scope
  // Room for it: the smallest blocks go first (the larger the block, the
  // more answers it can hold).
  std::sort(free_.begin(), free_.end(), [](const block& x, const block& y) { return x.capacity < y.capacity; });
  while (free_bytes_ + b.capacity > max_free_bytes_ && !free_.empty()) {
    free_bytes_ -= free_.front().capacity;
    free_.erase(free_.begin());
  }
  free_bytes_ += b.capacity;
  free_.push_back(std::move(b));
}

std::size_t body_pool::free_bytes() const {
  std::lock_guard lock(mu_);
  return free_bytes_;
}

}  // namespace runnel::schemas
