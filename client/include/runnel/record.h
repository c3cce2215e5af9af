#pragma once
// Records as the consumer sees them: views into the fetched batch bytes
// (no copy of keys or values). A record_view is valid as long as the
// consumer_records it came from.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace runnel {

struct topic_partition_ref {
  std::string topic;
  std::int32_t partition = 0;
  auto operator<=>(const topic_partition_ref&) const = default;
};

struct header_view {
  std::string_view key;
  std::string_view value;
};

struct record_view {
  std::string_view topic;
  std::int32_t partition = 0;
  std::int64_t offset = 0;
  std::int64_t timestamp_ms = 0;
  std::optional<std::string_view> key;    // nullopt: null key
  std::optional<std::string_view> value;  // nullopt: tombstone
  std::vector<header_view> headers;
  std::int32_t delivery_count = 0;  // share_consumer: 1 on a record's first delivery; 0 from consumer
};

namespace detail {
class record_vector_pool;
}  // namespace detail

// One poll's records; owns the response buffers the views point into.
// Dropping it hands its memory back to the consumer for a later poll.
class consumer_records {
 public:
  consumer_records() = default;
  ~consumer_records();
  consumer_records(const consumer_records&) = default;
  consumer_records& operator=(const consumer_records&) = default;
  consumer_records(consumer_records&&) noexcept = default;
  consumer_records& operator=(consumer_records&& o) noexcept;
  [[nodiscard]] const std::vector<record_view>& records() const { return records_; }
  [[nodiscard]] auto begin() const { return records_.begin(); }
  [[nodiscard]] auto end() const { return records_.end(); }
  [[nodiscard]] std::size_t size() const { return records_.size(); }
  [[nodiscard]] bool empty() const { return records_.empty(); }

 private:
  friend class consumer;
  friend class share_consumer;
  std::vector<std::shared_ptr<const void>> buffers_;
  std::vector<record_view> records_;
  std::shared_ptr<detail::record_vector_pool> recycle_;  // where records_' memory goes (may be null)
};

// Producer headers: owned strings.
struct header {
  std::string key;
  std::string value;
};

}  // namespace runnel
