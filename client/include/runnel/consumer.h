#pragma once
// runnel::consumer: reads assigned partitions from positions the caller
// sets (assign + seek). poll() returns record views into the fetched bytes,
// CRC-verified; the next fetch is already on its way while the caller
// handles the current records (pipelining). Each partition is read from its
// leader, one fetch stream per leader broker; when the leader moves (not
// leader, fenced epoch, a lost connection) the consumer looks the leader up
// again and continues from the same position. Not thread-safe: one thread
// polls.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runnel/errors.h"
#include "runnel/record.h"

namespace runnel {

struct consumer_config {
  std::string bootstrap = "127.0.0.1:9292";  // host:port[,host:port...]: the first that answers
  std::string client_id = "runnel-consumer";
  std::chrono::milliseconds fetch_max_wait{500};
  std::int32_t fetch_min_bytes = 1;
  std::int32_t max_partition_fetch_bytes = 1 << 20;
  std::int32_t fetch_max_bytes = 50 << 20;
  bool start_at_earliest = true;  // where assign() starts; seek() overrides
  std::chrono::milliseconds request_timeout{30'000};
  std::chrono::milliseconds retry_backoff{100};  // after a leader change, before the partition's next lookup
};

class consumer {
 public:
  static result<std::unique_ptr<consumer>> connect(consumer_config cfg);
  ~consumer();
  consumer(const consumer&) = delete;             // owns its connections
  consumer& operator=(const consumer&) = delete;  // owns its connections
  consumer(consumer&&) = delete;                  // the I/O thread holds `this`
  consumer& operator=(consumer&&) = delete;       // the I/O thread holds `this`

  result<void> assign(const std::vector<topic_partition_ref>& partitions);
  result<void> seek(const topic_partition_ref& tp, std::int64_t offset);
  result<void> seek_to_beginning(const topic_partition_ref& tp);
  result<void> seek_to_end(const topic_partition_ref& tp);
  // First offset whose timestamp is >= timestamp_ms (the end if none).
  result<void> seek_to_timestamp(const topic_partition_ref& tp, std::int64_t timestamp_ms);
  [[nodiscard]] std::int64_t position(const topic_partition_ref& tp) const;
  // The high watermark seen by the last fetch (-1 before any).
  [[nodiscard]] std::int64_t high_watermark(const topic_partition_ref& tp) const;

  // Records from every assigned partition, waiting up to `timeout` for some.
  result<consumer_records> poll(std::chrono::milliseconds timeout);

  struct impl;

 private:
  explicit consumer(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

}  // namespace runnel
