#pragma once
// group_coordinators: the consumer group coordinators of one shard, one per
// __consumer_offsets partition the shard owns and this broker leads
// (standalone: every partition). A coordinator is loaded from its
// partition's log on first use, or again after the leadership moved here
// anew (a new leader epoch) or a write failed; while loading, requests for
// its groups wait for it. Everything on the shard's thread.
//
// locate_group() runs on any shard: it finds a group's offsets partition
// and creates __consumer_offsets on first use.

#include <cstdint>
#include <expected>
#include <map>
#include <memory>
#include <string_view>
#include <vector>

#include <asio/awaitable.hpp>

#include "broker/group/coordinator.h"
#include "broker/group/errc.h"
#include "broker/storage/waiters.h"
#include "schemas/types.h"

namespace runnel::net {

struct broker_state;
class shard;

class group_coordinators {
 public:
  group_coordinators(broker_state& b, shard& s);
  ~group_coordinators();
  group_coordinators(const group_coordinators&) = delete;             // coroutines hold `this`
  group_coordinators& operator=(const group_coordinators&) = delete;  // coroutines hold `this`
  group_coordinators(group_coordinators&&) = delete;                  // coroutines hold `this`
  group_coordinators& operator=(group_coordinators&&) = delete;       // coroutines hold `this`

  // The loaded coordinator of offsets partition `partition` (owned by this
  // shard), loading it first; NOT_COORDINATOR when this broker does not
  // lead the partition.
  asio::awaitable<std::expected<std::shared_ptr<group::coordinator>, group::error>> get(std::int32_t partition);
  // Every offsets partition this shard owns and this broker leads, loaded.
  asio::awaitable<std::vector<std::shared_ptr<group::coordinator>>> all(std::int32_t partitions);
  // Stops every coordinator (the broker is stopping); get() refuses after.
  void stop_all();

 private:
  struct slot {
    std::shared_ptr<group::coordinator> c;  // null while loading
    std::int32_t leader_epoch = -1;
    bool loading = false;
    std::vector<storage::completion> waiters;
  };
  asio::awaitable<std::optional<group::error>> load(std::int32_t partition, std::int32_t leader_epoch);
  void unload(std::int32_t partition, const std::shared_ptr<group::coordinator>& c);

  broker_state& b_;
  shard& s_;
  std::map<std::int32_t, slot> slots_;
  bool stopped_ = false;
};

// On the home shard: the __consumer_offsets partition of `group_id`.
// Creates the topic first when `create` (FindCoordinator, heartbeats,
// commits); otherwise a missing topic is GROUP_ID_NOT_FOUND's business of
// the caller (nullopt).
asio::awaitable<std::expected<std::optional<topic_partition>, group::error>> locate_group(broker_state& b, shard& home,
                                                                                          std::string_view group_id,
                                                                                          bool create);

// Checks a group id: 1..255 bytes (INVALID_GROUP_ID otherwise).
std::optional<group::error> check_group_id(std::string_view group_id);

}  // namespace runnel::net
