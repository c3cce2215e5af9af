#pragma once
// replica_manager: cluster mode's partition roles on one shard (DESIGN.md §6).
//
// Every topics snapshot (from ZooKeeper, via membership) is applied on each
// shard: for the partitions this shard owns and this broker replicates, it
// becomes leader or follower as the partition state says.
//
// Leader: appends stamp its leader epoch; it tracks each follower's log end
// and durable (fdatasync'ed) end from their fetches; the high watermark is
// the lowest log end in the ISR (consumers read below it); acks=all waits
// until every ISR member holds the batch durably, with at least
// min.insync.replicas in the ISR. It shrinks the ISR of followers that have
// not caught up for replica.lag.time.max.ms and adds back those that did,
// by compare-and-set in ZooKeeper (membership on shard 0).
//
// Follower: one fetcher per leader broker per shard. On becoming follower
// it asks the leader where its own latest epoch ends there
// (OffsetForLeaderEpoch) and truncates its divergent tail (KIP-101/279),
// then fetches (replica_id = this broker), appends the leader's batches
// unchanged, fsyncs, and reports its durable end in the next fetch.
//
// Everything on the shard's thread.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/steady_timer.hpp>

#include "broker/meta/types.h"
#include "broker/storage/waiters.h"
#include "schemas/protocol_generated.h"
#include "schemas/types.h"

namespace runnel::net {

struct broker_state;
class shard;

using clock_type = std::chrono::steady_clock;

struct follower_progress {
  offset leo{0};      // its log end, from its last fetch
  offset durable{0};  // its fdatasync'ed end, from its last fetch
  clock_type::time_point caught_up{};  // when it last had everything the leader had
  clock_type::time_point last_fetch{};
  offset leader_leo_at_last_fetch{0};
};

// This broker's replica of one partition.
struct replica {
  bool leader = false;
  std::int32_t epoch = -1;
  std::int32_t leader_id = -1;
  std::int32_t version = -1;  // znode version of the state we act on
  std::vector<std::int32_t> replicas;
  std::vector<std::int32_t> isr;
  std::int32_t min_isr = 1;
  // Leader.
  std::map<std::int32_t, follower_progress> followers;
  offset hw{0};
  std::multimap<offset, std::move_only_function<void(wire::ErrorCode)>> ack_waiters;  // acks=all
  bool isr_write_in_flight = false;
  // An ISR expansion written (or being written) to ZooKeeper but not yet
  // back through the watch: counted already for the high watermark and
  // acks=all, so nothing is acknowledged that the new member lacks once the
  // controller may elect it (Kafka's "maximal ISR").
  std::vector<std::int32_t> pending_isr;
  // Follower.
  bool needs_truncation = true;
  bool truncating = false;  // a truncation is in flight: no appends (NOT_LEADER)
};

class replica_manager {
 public:
  replica_manager(broker_state& b, shard& s);
  ~replica_manager();
  replica_manager(const replica_manager&) = delete;             // coroutines hold `this`
  replica_manager& operator=(const replica_manager&) = delete;  // coroutines hold `this`
  replica_manager(replica_manager&&) = delete;                  // coroutines hold `this`
  replica_manager& operator=(replica_manager&&) = delete;       // coroutines hold `this`

  // Applies a new topics snapshot: role changes, new and deleted partitions.
  // `listed` (only with a complete view): every topic name in ZooKeeper,
  // including those whose node did not decode. A local log is stray when
  // its topic is not listed, or is in `topics` without this broker among
  // the partition's replicas; strays are removed when the broker allows.
  void apply(const meta::topics_snapshot& topics, const std::shared_ptr<const std::map<std::int32_t, std::string>>& brokers,
             const std::shared_ptr<const std::set<std::string>>& listed);
  void start();  // the ISR timer
  void stop();   // fetchers and timers end; acks=all waiters fail

  [[nodiscard]] std::shared_ptr<replica> find(const topic_partition& tp) const;
  // "host:port" of live broker `id`, as the last apply() knew it.
  [[nodiscard]] std::optional<std::string> address_of(std::int32_t id) const;
  [[nodiscard]] std::int32_t me() const { return me_; }

  // Leader, after appends (and flushes): high watermark and acks=all waiters.
  void appended(const topic_partition& tp);
  // Leader: resumes when every ISR member holds [.., end) durably; NONE and
  // the ISR size, or NOT_ENOUGH_REPLICAS / NOT_LEADER / REQUEST_TIMED_OUT.
  asio::awaitable<std::pair<wire::ErrorCode, std::int32_t>> wait_replicated(const topic_partition& tp, offset end,
                                                                            clock_type::time_point deadline);
  // Leader: a follower's fetch arrived. NONE, or why it is refused.
  wire::ErrorCode follower_fetched(const topic_partition& tp, std::int32_t replica_id, std::int32_t epoch,
                                   offset fetch_offset, offset durable);

 private:
  struct fetcher;
  void become_leader(const topic_partition& tp, replica& r);
  void become_follower(const topic_partition& tp, replica& r);
  void detach(const topic_partition& tp);
  // Closes and deletes the partition's log (once; in the background).
  void remove_log(const topic_partition& tp);
  void recompute(const topic_partition& tp, replica& r);
  void propose_isr(const topic_partition& tp, replica& r, std::vector<std::int32_t> isr, const char* why);
  asio::awaitable<void> isr_loop();
  asio::awaitable<void> fetch_loop(std::shared_ptr<fetcher> f);
  asio::awaitable<void> truncate(fetcher& f, const topic_partition& tp);
  asio::awaitable<void> fetch_once(fetcher& f);

  broker_state& b_;
  shard& s_;
  std::int32_t me_;
  std::map<topic_partition, std::shared_ptr<replica>> replicas_;
  std::map<std::int32_t, std::shared_ptr<fetcher>> fetchers_;  // by leader id
  std::shared_ptr<const std::map<std::int32_t, std::string>> brokers_;
  std::unique_ptr<asio::steady_timer> isr_timer_;
  bool stopped_ = false;
  std::set<topic_partition> removing_;  // logs being deleted
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace runnel::net
