#include "broker/storage/dedup_window.h"

#include <algorithm>

namespace runnel::storage {

std::optional<offset> dedup_window::find(std::string_view id, std::int64_t now_ms) const {
  auto it = ids_.find(id);
  if (it == ids_.end() || it->second.ts < now_ms - window_.count()) return std::nullopt;
  return it->second.at;
}

void dedup_window::add(std::string_view id, offset at, std::int64_t ts_ms) {
  auto [it, inserted] = ids_.try_emplace(std::string(id), entry{at, ts_ms});
  if (!inserted) {
    if (it->second.ts >= ts_ms - window_.count()) return;  // still in the window: the first copy stays
    it->second = entry{at, ts_ms};                         // expired: this is a new first copy
    std::erase(order_, it->first);
  }
  order_.push_back(it->first);
  while (ids_.size() > max_ids_) {
    drop_oldest();
    ++evicted_early_;
  }
}

void dedup_window::drop_oldest() {
  ids_.erase(order_.front());
  order_.pop_front();
}

void dedup_window::expire(std::int64_t now_ms) {
  // Ids come mostly in timestamp order: stop at the first one in the window.
  while (!order_.empty()) {
    auto it = ids_.find(order_.front());
    if (it != ids_.end() && it->second.ts >= now_ms - window_.count()) break;
    drop_oldest();
  }
}

void dedup_window::truncate(offset from) {
  std::erase_if(order_, [&](const std::string& id) {
    auto it = ids_.find(id);
    if (it == ids_.end() || it->second.at < from) return false;
    ids_.erase(it);
    return true;
  });
}

void dedup_window::set_limits(std::chrono::milliseconds window, std::size_t max_ids) {
  window_ = window;
  max_ids_ = max_ids;
  while (ids_.size() > max_ids_) {
    drop_oldest();
    ++evicted_early_;
  }
}

void dedup_window::clear() {
  ids_.clear();
  order_.clear();
}

}  // namespace runnel::storage
