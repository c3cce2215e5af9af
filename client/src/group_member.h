#pragma once
// group_member: a consumer's side of the consumer group protocol
// (KIP-848, docs/groups.md). A thread of its own sends
// ConsumerGroupHeartbeat to the group's coordinator every heartbeat
// interval, whether or not the application polls, and at once when the
// consumer reports a change (a subscription, partitions released):
//
//   heartbeat thread                          poll() thread (consumer)
//   ----------------                          ------------------------
//   join (epoch 0) --> member id, epoch,       snapshot(): the assignment the
//   assignment; keeps it current;   ------->   coordinator allows now; revokes
//   reports what the consumer owns  <-------   (listener, commit), adds
//   (report_owned)                              (committed offsets), reports
//
// Fenced (FENCED_MEMBER_EPOCH, UNKNOWN_MEMBER_ID) or past
// max.poll.interval.ms without a poll: the partitions are lost (the
// coordinator gives them away); `losses` counts it and the member joins
// again. Thread-safe.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "client/src/address.h"
#include "client/src/connection_pool.h"
#include "runnel/errors.h"
#include "runnel/record.h"

namespace runnel::client {

struct group_member_config {
  std::string group_id;
  std::string instance_id;  // static membership; empty: dynamic
  std::string assignor;     // empty: the group's
  std::chrono::milliseconds session_timeout{-1};  // -1: the broker's default
  std::chrono::milliseconds rebalance_timeout{60'000};
  std::chrono::milliseconds max_poll_interval{300'000};
};

class group_member {
 public:
  struct view {
    std::set<topic_partition_ref> assignment;  // what the member may consume now
    std::uint64_t losses = 0;                  // times its partitions were lost
    std::optional<error> fatal;                // a refusal no retry cures (bad regex, bad group id)
  };

  // `on_change` runs (on the heartbeat thread) whenever view() changed.
  group_member(connection_pool& pool, group_member_config cfg, std::function<void()> on_change);
  ~group_member();  // stop() without leaving
  group_member(const group_member&) = delete;             // owns a thread
  group_member& operator=(const group_member&) = delete;  // owns a thread
  group_member(group_member&&) = delete;                  // the thread holds `this`
  group_member& operator=(group_member&&) = delete;       // the thread holds `this`

  // Subscribes by names and/or pattern (replacing the last subscription).
  void subscribe(std::vector<std::string> topics, std::string regex);
  [[nodiscard]] view snapshot() const;
  // What the consumer consumes now; reported in the next heartbeat (sent at once).
  void report_owned(std::set<topic_partition_ref> owned);
  // poll() was called (max.poll.interval.ms counts from here).
  void polled();
  // Member id and epoch for commits (empty id and -1 before joining).
  [[nodiscard]] std::pair<std::string, std::int32_t> identity() const;
  // Sends the leave heartbeat (epoch -1, or -2 for a static member) and
  // stops the thread. Blocking.
  void leave();

 private:
  void run();
  void stop();

  connection_pool& pool_;
  const group_member_config cfg_;
  std::function<void()> on_change_;

  mutable std::mutex mu_;  // guards what follows
  std::condition_variable wake_;
  bool stopping_ = false;
  bool wake_now_ = false;
  bool subscribed_ = false;
  std::vector<std::string> topics_;
  std::string regex_;
  std::string member_id_;
  std::int32_t epoch_ = 0;
  std::set<topic_partition_ref> assignment_;
  std::set<topic_partition_ref> owned_;
  std::uint64_t losses_ = 0;
  std::optional<error> fatal_;
  std::optional<host_port> coordinator_;
  std::chrono::steady_clock::time_point last_poll_ = std::chrono::steady_clock::now();
  bool left_for_poll_timeout_ = false;
  std::thread thread_;
};

}  // namespace runnel::client
