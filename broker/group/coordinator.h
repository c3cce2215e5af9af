#pragma once
// coordinator: the consumer groups of one __consumer_offsets partition, on
// the shard that owns that partition (everything on its thread, no locks).
//
//   load:      every record of the partition, in log order --replay--> groups
//   heartbeat: membership.h on the group --changed?--> group record appended
//              (acks=all) --> answer
//   commit:    checks (member, epoch, ownership, topic) --> offset records
//              appended (acks=all) --> applied in memory --> answer
//   timer:     session and rebalance timeouts --> members removed --> group record
//   share groups (ADR 0016): share_heartbeat as heartbeat, with
//              share_membership.h; write_share_state --> the share
//              partition's state record appended (acks=all) --> applied;
//              alter_configs --> the group record with its configs
//
// What answers say is durable: a request is answered only after the
// records it implies are on the offsets partition's ISR (the hooks'
// append). A failed append means the log or the leadership is gone: the
// coordinator calls hooks.failed and its owner unloads it; a new one is
// loaded from the log, so memory never keeps what the log lacks.

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/steady_timer.hpp>

#include "broker/group/errc.h"
#include "broker/group/membership.h"
#include "broker/group/share_membership.h"
#include "broker/group/types.h"

namespace runnel::group {

class coordinator : public std::enable_shared_from_this<coordinator> {
 public:
  struct hooks {
    // Appends one batch to this partition durably (acks=all); an error when it failed.
    std::function<asio::awaitable<std::optional<error>>(std::vector<std::byte> batch)> append;
    // The topics groups may subscribe to and commit for.
    std::function<topic_counts()> topics;
    // An append failed: unload this coordinator.
    std::function<void(const error&)> failed;
    // A share group's members and configs as just made durable
    // (optional): the partitions' leaders release what departed members
    // held and take the group's settings.
    std::function<void(const std::string& group_id, std::set<std::string> members, group_configs configs)> share_group;
  };

  coordinator(asio::any_io_executor ex, std::int32_t partition, group_limits limits, hooks h);
  ~coordinator();
  coordinator(const coordinator&) = delete;             // coroutines hold it
  coordinator& operator=(const coordinator&) = delete;  // coroutines hold it
  coordinator(coordinator&&) = delete;                  // coroutines hold it
  coordinator& operator=(coordinator&&) = delete;       // coroutines hold it

  // Loading: one record of the partition (value nullopt: a tombstone).
  // Records that are not ours are skipped with a warning.
  void replay(std::span<const std::byte> key, std::optional<std::span<const std::byte>> value);
  // Sets hooks.failed (its owner may need the coordinator's pointer first).
  void set_failed(std::function<void(const error&)> f) { hooks_.failed = std::move(f); }
  // Loading is done: member timers start now.
  void start();
  // Timers end; later requests answer NOT_COORDINATOR.
  void stop();

  asio::awaitable<std::expected<heartbeat_result, error>> heartbeat(std::string group_id, heartbeat_request r);
  // A share group member's heartbeat; the group is created as a share group.
  asio::awaitable<std::expected<heartbeat_result, error>> share_heartbeat(std::string group_id,
                                                                          share_heartbeat_request r);
  // The state of share partition `tp` of share group `group_id`, from its
  // partition's leader: durable on the offsets partition's ISR, then
  // applied (in issue order) and answered. A state whose leader_epoch is
  // older than one seen for `tp` (written, or read by read_share_state)
  // is refused: FENCED_LEADER_EPOCH (a deposed leader).
  asio::awaitable<std::optional<error>> write_share_state(std::string group_id, topic_partition tp, share_state s);
  // For the leader of `tp` in `leader_epoch` loading its share partition:
  // the last state written (nullopt: none), once the writes in flight for
  // `tp` are applied. Older epochs are fenced from then on. The group must
  // be a share group (find_share_group).
  asio::awaitable<std::expected<std::optional<share_state>, error>> read_share_state(std::string group_id,
                                                                                     topic_partition tp,
                                                                                     std::int32_t leader_epoch);
  // The last state written for `tp` (nullopt: none; the partition's leader starts it afresh).
  [[nodiscard]] std::optional<share_state> share_state_of(std::string_view group_id, const topic_partition& tp) const;

  // Applies `changes` to the configs of `group_id` (group_config.h; an
  // empty value removes a key): durable, then answered. A group that does
  // not exist is created, empty, as a share group; a consumer group
  // answers INCONSISTENT_GROUP_TYPE.
  asio::awaitable<std::optional<error>> alter_configs(std::string group_id, group_configs changes, bool validate_only);

  struct commit_entry {
    topic_partition tp;
    committed_offset value;
  };
  // One result per entry, in order (nullopt: committed).
  asio::awaitable<std::vector<std::optional<error>>> commit(std::string group_id, std::string member_id,
                                                            std::int32_t member_epoch, std::vector<commit_entry> entries);
  // Committed offsets of `group_id` (all, or those of `tps`; absent ones are left out).
  [[nodiscard]] std::map<topic_partition, committed_offset> committed(
      std::string_view group_id, const std::optional<std::vector<topic_partition>>& tps) const;
  // Deletes an empty group and its offsets.
  asio::awaitable<std::optional<error>> remove_group(std::string group_id);

  [[nodiscard]] const group* find(std::string_view group_id) const;
  // The share group `group_id`: GROUP_ID_NOT_FOUND when it has neither a
  // record nor members, INCONSISTENT_GROUP_TYPE when it is a consumer group.
  [[nodiscard]] std::expected<const group*, error> find_share_group(std::string_view group_id) const;
  [[nodiscard]] const std::map<std::string, group, std::less<>>& groups() const { return groups_; }
  [[nodiscard]] std::int32_t partition() const { return partition_; }
  [[nodiscard]] bool stopped() const { return stopped_; }

 private:
  asio::awaitable<std::optional<error>> append(std::vector<std::byte> batch);
  asio::awaitable<std::optional<error>> persist(const std::string& group_id, std::vector<std::byte> value);
  // For heartbeat and share_heartbeat: `beat(group&)` (the membership
  // function) on the group, created when missing and refused when of the
  // other type than `type`; a group created for a refused beat goes again.
  // The answer, and the group's record from before (empty: it had none).
  struct beaten {
    heartbeat_result result;
    std::vector<std::byte> before;
  };
  template <typename Beat>
  std::expected<beaten, error> beat_group(const std::string& group_id, group_type type, Beat beat);
  // The group's record appended when it is no longer `before`.
  asio::awaitable<std::optional<error>> persist_if_changed(std::string group_id, std::vector<std::byte> before);
  asio::awaitable<void> timer_loop();
  void announce_share_group(const group& g) const;

  asio::any_io_executor ex_;
  std::int32_t partition_;
  group_limits limits_;
  hooks hooks_;
  std::map<std::string, group, std::less<>> groups_;
  asio::steady_timer timer_;
  std::uint64_t next_seq_ = 1;                           // commits and deletions, in issue order
  std::map<std::string, std::uint64_t, std::less<>> removed_seq_;  // group -> sequence of its deletion
  // (group, share partition) -> sequence of the write whose state is applied.
  std::map<std::pair<std::string, topic_partition>, std::uint64_t, std::less<>> share_applied_seq_;
  // (group, share partition) -> the newest leader epoch seen and the writes in flight.
  struct share_fence {
    std::int32_t epoch = -1;
    int writing = 0;
  };
  std::map<std::pair<std::string, topic_partition>, share_fence, std::less<>> share_fences_;
  // FENCED_LEADER_EPOCH when `epoch` is older than the newest seen for (group, tp); else that newest is `epoch` now.
  std::optional<error> fence(const std::string& group_id, const topic_partition& tp, std::int32_t epoch);
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace runnel::group
