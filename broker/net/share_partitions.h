#pragma once
// share_partitions: the share partitions (group/share_partition.h) of the
// partitions one shard owns, one per (share group, partition) fetched
// (ADR 0016). A share partition is loaded on first use from its group's
// coordinator (the state written last, or a fresh one at the log start);
// every change other than an acquisition is written back through the
// coordinator (acks=all on __consumer_offsets) before the fetch or the
// acknowledgement that made it is answered. Locks that expire are found
// by a timer on the shard every 100 ms, and the change written the same
// way. Records archived in a group with a DLQ topic (share.dlq.topic) are
// copied there (group/dead_letter.h) once their archive is durable, and
// archived for good once the copy is: see dead_letter_loop. Everything on
// the shard's thread.
//
// Standalone mode only so far (issue 13): in cluster mode the coordinator
// may be another broker's, which needs an inter-broker call not built yet.

#include <cstdint>
#include <expected>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/steady_timer.hpp>

#include "broker/group/errc.h"
#include "broker/group/types.h"
#include "broker/group/share_partition.h"
#include "broker/storage/types.h"
#include "broker/storage/waiters.h"
#include "schemas/types.h"

namespace runnel::net {

struct broker_state;
class shard;

struct share_ack {
  offset first{0};
  offset last{0};
  group::ack_kind kind = group::ack_kind::accept;
};

struct share_fetched {
  std::optional<group::error> ack_error;  // the acknowledgements were refused (none applied)
  std::vector<group::acquired_range> acquired;
  std::optional<storage::file_range> range;  // whole batches holding `acquired`
  offset log_end{0};  // the log's end as this fetch saw it (a long poll waits past it)
};

class share_partitions {
 public:
  share_partitions(broker_state& b, shard& s);
  ~share_partitions();
  share_partitions(const share_partitions&) = delete;             // coroutines hold `this`
  share_partitions& operator=(const share_partitions&) = delete;  // coroutines hold `this`
  share_partitions(share_partitions&&) = delete;                  // coroutines hold `this`
  share_partitions& operator=(share_partitions&&) = delete;       // coroutines hold `this`

  // On tp's owner shard: applies `acks` of `member`, then acquires up to
  // `max_records` for it from batches of at most `max_bytes`.
  asio::awaitable<std::expected<share_fetched, group::error>> fetch(std::string group_id, std::string member,
                                                                    topic_partition tp, std::vector<share_ack> acks,
                                                                    std::size_t max_records, std::uint32_t max_bytes);
  // On tp's owner shard: applies `acks` of `member` (all or nothing per
  // range, the ranges in order; the first refusal stops).
  asio::awaitable<std::optional<group::error>> acknowledge(std::string group_id, std::string member,
                                                           topic_partition tp, std::vector<share_ack> acks);
  // The members and configs of share group `group_id` now (the
  // coordinator's hook): records held by anyone else are released at once
  // (and that written), fetches or acknowledgements by anyone else are
  // refused (UNKNOWN_MEMBER_ID), and the configs' limits and DLQ apply.
  void set_group(const std::string& group_id, std::set<std::string> members, group::group_configs configs);
  // Timers end; later calls answer COORDINATOR_NOT_AVAILABLE.
  void stop();

 private:
  using key = std::pair<std::string, topic_partition>;
  struct slot {
    std::optional<group::share_partition> sp;  // empty while loading
    bool loading = false;
    bool dead_lettering = false;  // dead_letter_loop runs for it
    std::vector<storage::completion> waiters;
  };
  struct known_group {
    std::set<std::string> members;
    group::group_configs configs;
  };
  // The loaded share partition of (group, tp), loading it first.
  asio::awaitable<std::expected<group::share_partition*, group::error>> get(const std::string& group_id,
                                                                            const topic_partition& tp);
  asio::awaitable<std::optional<group::error>> load(key k);
  // Refused when the group's members are known and `member` is not one.
  [[nodiscard]] std::optional<group::error> check_member(const std::string& group_id, const std::string& member) const;
  asio::awaitable<void> persist_logged(std::string group_id, topic_partition tp);
  // What fetch and acknowledge share: the share partition of (group, tp),
  // `member` checked, `acks` applied in order (the first refused one stops
  // them: `refused`) and, when they changed the state, written.
  struct acknowledged {
    group::share_partition* sp = nullptr;
    std::optional<group::error> refused;
  };
  asio::awaitable<std::expected<acknowledged, group::error>> apply_acks(std::string group_id, std::string member,
                                                                         topic_partition tp,
                                                                         std::vector<share_ack> acks);
  // Writes the current state of (group, tp) through the coordinator.
  asio::awaitable<std::optional<group::error>> persist(std::string group_id, topic_partition tp);
  asio::awaitable<void> lock_loop();
  // Starts dead_letter_loop for (group, tp) when it has records waiting
  // for their DLQ copy and the group names a DLQ topic.
  void dead_letter_if_due(const key& k);
  // Until none is left: copies the records waiting for their DLQ copy to
  // the group's DLQ topic (acks=all), marks them archived and writes
  // that. Failures are retried with a growing pause.
  asio::awaitable<void> dead_letter_loop(key k);
  // The DLQ copies of `pending` (offset, delivery count), at most a batch
  // of them; the offsets that are done (copied, or gone from the log).
  asio::awaitable<std::expected<std::vector<offset>, group::error>> write_dead_letters(
      key k, std::string dlq, std::vector<std::pair<offset, std::uint16_t>> pending);
  [[nodiscard]] group::share_limits limits_of(const std::string& group_id) const;

  broker_state& b_;
  shard& s_;
  std::map<key, slot> slots_;
  std::map<std::string, known_group, std::less<>> groups_;  // by share group, as last known
  asio::steady_timer timer_;
  bool timer_running_ = false;
  bool stopped_ = false;
};

}  // namespace runnel::net
