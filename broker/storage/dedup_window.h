#pragma once
// dedup_window: one partition's message-id window (topic config
// dedup.window.ms, what NATS JetStream calls Nats-Msg-Id): the ids that
// records carried in their `runnel.msg.id` header within the window, each
// with the offset of its first copy. The leader drops a record whose id
// is in the window and answers that offset instead.
//
// Time is the records' own timestamps: the leader, a follower replicating
// and a rebuild reading the log back see the same window. Bounded by
// max_ids (dedup.window.max.ids): past it the oldest ids leave early and
// evicted_early() counts them.
//
// On the log's shard; not thread-safe.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "broker/storage/types.h"

namespace runnel::storage {

inline constexpr std::string_view msg_id_header = "runnel.msg.id";
inline constexpr std::size_t max_msg_id_bytes = 256;

class dedup_window {
 public:
  dedup_window(std::chrono::milliseconds window, std::size_t max_ids) : window_(window), max_ids_(max_ids) {}

  // The offset of `id`'s first copy, when it was seen within the window
  // that ends at `now_ms`.
  [[nodiscard]] std::optional<offset> find(std::string_view id, std::int64_t now_ms) const;
  // Records the first copy of `id` at offset `at` with timestamp `ts_ms`
  // (a later copy of an id in the window changes nothing).
  void add(std::string_view id, offset at, std::int64_t ts_ms);
  // Forgets ids older than the window that ends at `now_ms`.
  void expire(std::int64_t now_ms);
  // Forgets ids whose first copy is at or after `from` (a truncation).
  void truncate(offset from);
  void clear();
  // New settings (an altered topic config); a smaller bound evicts now.
  void set_limits(std::chrono::milliseconds window, std::size_t max_ids);

  [[nodiscard]] std::size_t size() const { return ids_.size(); }
  [[nodiscard]] std::uint64_t evicted_early() const { return evicted_early_; }
  [[nodiscard]] std::chrono::milliseconds window() const { return window_; }

 private:
  struct entry {
    offset at{0};
    std::int64_t ts = 0;
  };
  void drop_oldest();
  // Heterogeneous lookup: find(string_view) builds no string.
  struct id_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };

  std::chrono::milliseconds window_;
  std::size_t max_ids_;
  std::unordered_map<std::string, entry, id_hash, std::equal_to<>> ids_;
  std::deque<std::string> order_;  // ids in the order they were added (oldest first)
  std::uint64_t evicted_early_ = 0;
};

}  // namespace runnel::storage
