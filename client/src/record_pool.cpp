#include "client/src/record_pool.h"

#include <utility>

namespace runnel {

namespace detail {

std::vector<record_view> record_vector_pool::take() {
  std::lock_guard lock(mu_);
  if (free_.empty()) return {};
  auto v = std::move(free_.back());
  free_.pop_back();
  return v;
}

void record_vector_pool::give_back(std::vector<record_view>&& v) {
  if (v.capacity() == 0) return;
  v.clear();
  std::lock_guard lock(mu_);
  if (free_.size() < max_kept) free_.push_back(std::move(v));
}

}  // namespace detail

consumer_records::~consumer_records() {
  if (recycle_) recycle_->give_back(std::move(records_));
}

consumer_records& consumer_records::operator=(consumer_records&& o) noexcept {
  if (this != &o) {
    if (recycle_) recycle_->give_back(std::move(records_));
    buffers_ = std::move(o.buffers_);
    records_ = std::move(o.records_);
    recycle_ = std::move(o.recycle_);
  }
  return *this;
}

}  // namespace runnel
