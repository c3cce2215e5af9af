#pragma once
// share_partitions: the share partitions (group/share_partition.h) of the
// partitions one shard owns, one per (share group, partition) fetched
// (ADR 0016). A share partition is loaded on first use from its group's
// coordinator (the state written last, or a fresh one at the log start);
// every change other than an acquisition is written back through the
// coordinator (acks=all on __consumer_offsets) before the fetch or the
// acknowledgement that made it is answered: one write at a time per share
// partition, each with the state as it is when the write starts, so a
// later write never goes before an earlier one and a write covers every
// change made before it. The coordinator may be on this broker (run_on)
// or another (ReadShareGroupState / WriteShareGroupState over a
// peer_client, share_state.h). Cluster mode: only the partition's leader
// serves it, records up to the high watermark are handed out, and a share
// partition is loaded again when the leader epoch changes; the state it
// writes carries that epoch, so a deposed leader's writes are refused.
// Members and configs come from the coordinator's hook (same broker), from
// every read and write answer, and from a read every second in cluster
// mode. Locks that expire are found
// by a timer on the shard every 100 ms, and the change written the same
// way. Records archived in a group with a DLQ topic (share.dlq.topic) are
// copied there (group/dead_letter.h) once their archive is durable, and
// archived for good once the copy is: see dead_letter_loop. Everything on
// the shard's thread.

#include <cstdint>
#include <expected>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <asio/awaitable.hpp>
#include <asio/steady_timer.hpp>

#include "broker/group/errc.h"
#include "broker/group/types.h"
#include "broker/group/share_partition.h"
#include "broker/net/peer_client.h"
#include "broker/net/share_state.h"
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
  // On tp's owner shard: the share partition's counts now, loading it first.
  asio::awaitable<std::expected<group::share_stats, group::error>> describe(std::string group_id, topic_partition tp);
  // The members and configs of share group `group_id` now (the
  // coordinator's hook): records held by anyone else are released at once
  // (and that written), fetches or acknowledgements by anyone else are
  // refused (UNKNOWN_MEMBER_ID), and the configs' limits and DLQ apply.
  void set_group(const std::string& group_id, std::set<std::string> members, group::group_configs configs);
  // Timers end; later calls answer COORDINATOR_NOT_AVAILABLE.
  void stop();

 private:
  using key = std::pair<std::string, topic_partition>;
  using share_ptr = std::shared_ptr<group::share_partition>;
  struct slot {
    share_ptr sp;  // null while loading
    std::int32_t leader_epoch = -1;  // the epoch it was loaded in (cluster mode)
    bool loading = false;
    bool dead_lettering = false;  // dead_letter_loop runs for it
    std::vector<storage::completion> waiters;  // for the load
    // Writes of its state: one at a time; `wanted` counts the changes asked
    // to be written, `durable` the last of them a finished write covered.
    bool writing = false;
    std::uint64_t wanted = 0;
    std::uint64_t durable = 0;
    std::vector<storage::completion> write_waiters;
  };
  // The loaded share partition of (group, tp), loading it first (again
  // when the leader epoch moved); NOT_LEADER in cluster mode on a broker
  // that does not lead tp.
  asio::awaitable<std::expected<share_ptr, group::error>> get(const std::string& group_id, const topic_partition& tp);
  asio::awaitable<std::optional<group::error>> load(key k, std::int32_t leader_epoch);
  // Wakes whatever waits on the slot and forgets it (the leadership moved).
  void drop(std::map<key, slot>::iterator it);
  // -1 in standalone mode; the leader epoch of tp when this broker leads it.
  [[nodiscard]] std::expected<std::int32_t, group::error> leader_epoch_of(const topic_partition& tp) const;
  // Refused when the group's members are known and `member` is not one.
  [[nodiscard]] std::optional<group::error> check_member(const std::string& group_id, const std::string& member) const;
  // What a coordinator answered about the group: applied when it differs.
  void learn(const std::string& group_id, share_group_view g);
  asio::awaitable<void> persist_logged(key k);
  // What fetch and acknowledge share: the share partition of (group, tp),
  // `member` checked, `acks` applied in order (the first refused one stops
  // them: `refused`) and, when they changed the state, written.
  struct acknowledged {
    share_ptr sp;
    std::optional<group::error> refused;
  };
  asio::awaitable<std::expected<acknowledged, group::error>> apply_acks(std::string group_id, std::string member,
                                                                         topic_partition tp,
                                                                         std::vector<share_ack> acks);
  // Returns once a write of `sp`'s state that began after this call is
  // durable at the coordinator (NOT_LEADER when `sp` is no longer the
  // loaded share partition of `k`).
  asio::awaitable<std::optional<group::error>> persist(key k, share_ptr sp);
  // The coordinator's side, wherever it is.
  struct coordinator_at {
    topic_partition offsets;
    std::optional<std::string> remote;  // "host:port" when another broker leads the offsets partition
  };
  asio::awaitable<std::expected<coordinator_at, group::error>> coordinator_of(const std::string& group_id);
  asio::awaitable<std::expected<stored_share_state, group::error>> read_state(std::string group_id, topic_partition tp,
                                                                              std::int32_t leader_epoch);
  asio::awaitable<std::expected<share_group_view, group::error>> write_state(std::string group_id, topic_partition tp,
                                                                             group::share_state st);
  // One request to the broker at `address` over an idle connection to it
  // (a new one when all are busy).
  asio::awaitable<std::expected<peer_response, std::error_code>> call_peer(std::string address,
                                                                          flatbuffers::FlatBufferBuilder& fbb,
                                                                          wire::Request type, flatbuffers::Offset<void> body,
                                                                          std::span<const std::byte> payload = {});
  asio::awaitable<void> lock_loop();
  // Cluster mode: every second, each group with a loaded share partition
  // asks its coordinator for its members and configs.
  asio::awaitable<void> refresh_loop();
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
  // The DLQ copies in `batch` appended to `dest` with acks=all, on this
  // broker or at dest's leader.
  asio::awaitable<std::optional<group::error>> append_dead_letters(topic_partition dest, std::vector<std::byte> batch);
  [[nodiscard]] group::share_limits limits_of(const std::string& group_id) const;

  broker_state& b_;
  shard& s_;
  std::map<key, slot> slots_;
  std::map<std::string, share_group_view, std::less<>> groups_;  // by share group, as last known
  std::map<std::string, std::vector<std::unique_ptr<peer_client>>> idle_peers_;  // by address
  std::set<peer_client*> busy_peers_;
  asio::steady_timer timer_;
  bool timer_running_ = false;
  bool stopped_ = false;
};

}  // namespace runnel::net
