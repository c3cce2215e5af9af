#pragma once
// runnel::consumer: reads partitions the caller assigns (assign + seek),
// or, with a group id and subscribe(), the partitions its consumer group's
// coordinator assigns it (docs/groups.md). poll() returns record views into the fetched bytes,
// CRC-verified; the next fetch is already on its way while the caller
// handles the current records (pipelining). Each partition is read from its
// leader, one fetch stream per leader broker; when the leader moves (not
// leader, fenced epoch, a lost connection) the consumer looks the leader up
// again and continues from the same position. Not thread-safe: one thread
// polls.
//
// In a group, a thread of the consumer's own heartbeats to the coordinator;
// poll() applies assignment changes (revoked partitions go after the
// listener's on_partitions_revoked and, with auto-commit, a commit of their
// positions; added ones start at the group's committed offsets). At least
// once: what is committed is only ever the position after records that an
// earlier poll() returned.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runnel/errors.h"
#include "runnel/group.h"
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

  // Consumer groups (docs/groups.md).
  std::string group_id;                 // empty: no group (assign/seek only, no commits)
  std::string group_instance_id;        // static membership (group.instance.id)
  std::string group_assignor;           // "uniform" or "range"; empty: the group's (broker default)
  std::chrono::milliseconds session_timeout{-1};        // -1: the broker's group.consumer.session.timeout.ms
  std::chrono::milliseconds max_poll_interval{300'000};  // no poll() for this long: leave the group
  bool enable_auto_commit = true;                        // commit positions every interval, on revocation and close
  std::chrono::milliseconds auto_commit_interval{5'000};
  // OffsetCommit requests on the wire at once (commits stay in order).
  std::size_t max_in_flight_commits = 5;
};

class consumer;

// Called from poll() (and close()) on the polling thread.
class rebalance_listener {
 public:
  rebalance_listener() = default;
  virtual ~rebalance_listener() = default;
  rebalance_listener(const rebalance_listener&) = default;
  rebalance_listener& operator=(const rebalance_listener&) = default;
  rebalance_listener(rebalance_listener&&) = default;
  rebalance_listener& operator=(rebalance_listener&&) = default;

  // Before the partitions go to another member: commit what was processed
  // (commit_sync), release what belongs to them.
  virtual void on_partitions_revoked(consumer& /*c*/, const std::vector<topic_partition_ref>& /*partitions*/) {}
  // After the partitions came; positions are at the committed offsets.
  virtual void on_partitions_assigned(consumer& /*c*/, const std::vector<topic_partition_ref>& /*partitions*/) {}
  // The member was fenced (or stopped polling for max.poll.interval): the
  // partitions are someone else's already and commits for them are refused.
  virtual void on_partitions_lost(consumer& /*c*/, const std::vector<topic_partition_ref>& /*partitions*/) {}
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

  // Consumer groups: needs consumer_config::group_id. Subscribes by names,
  // or by a pattern (ECMAScript, matching whole topic names, internal
  // "__" topics excluded); replaces the last subscription.
  result<void> subscribe(const std::vector<std::string>& topics, rebalance_listener* listener = nullptr);
  result<void> subscribe_pattern(const std::string& regex, rebalance_listener* listener = nullptr);
  // The partitions this consumer reads now (assigned or from its group).
  [[nodiscard]] std::vector<topic_partition_ref> assignment() const;
  // Commits the position of every partition read (the offset after the
  // last record poll() returned), or the given offsets. Blocks until the
  // coordinator made them durable. A consumer with a group id that uses
  // assign() commits without a member (allowed while the group is empty).
  result<void> commit_sync();
  result<void> commit_sync(const std::map<topic_partition_ref, offset_and_metadata>& offsets);
  // Commits in the background: sent at once, after every earlier commit,
  // with up to max_in_flight_commits requests on the wire. `done` runs from
  // a later poll(), commit_sync(), commit_async() or close(); commit_sync()
  // returns after every earlier commit's callback ran.
  void commit_async(std::function<void(const result<void>&)> done = {});
  void commit_async(const std::map<topic_partition_ref, offset_and_metadata>& offsets,
                    std::function<void(const result<void>&)> done = {});
  // The group's committed offset of `tp` (nullopt: none).
  result<std::optional<offset_and_metadata>> committed(const topic_partition_ref& tp);
  // Commits (auto-commit), calls the listener's on_partitions_revoked and
  // leaves the group at once. The destructor closes too.
  result<void> close();
  // This member's id and epoch in its group (empty and -1 outside one).
  [[nodiscard]] std::pair<std::string, std::int32_t> group_member() const;

  struct impl;

 private:
  explicit consumer(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

}  // namespace runnel
