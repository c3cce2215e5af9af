#pragma once
// The coordinator's side of share state (ADR 0016): what a share
// partition's leader reads when it loads the partition and writes after
// every change, served by the shard that owns the group's offsets
// partition on the broker that leads it. A leader on the same broker calls
// these through run_on; a leader on another broker through
// ReadShareGroupState / WriteShareGroupState (handlers/share_group_state.cpp).
// Both answers carry the group's members and configs as they are now, so a
// leader elsewhere learns of joins, departures and config changes.

#include <cstdint>
#include <expected>
#include <optional>
#include <set>
#include <string>

#include <asio/awaitable.hpp>

#include "broker/group/errc.h"
#include "broker/group/types.h"
#include "schemas/types.h"

namespace runnel::net {

class shard;

struct share_group_view {
  std::set<std::string> members;
  group::group_configs configs;
  bool operator==(const share_group_view&) const = default;
};

struct stored_share_state {
  std::optional<group::share_state> state;  // none written yet
  share_group_view group;
};

// On the owner shard of offsets partition `partition`: the state last
// written for (group, tp), once the group is known to be a share group;
// older leader epochs than `leader_epoch` are fenced from then on.
asio::awaitable<std::expected<stored_share_state, group::error>> read_share_state_on_owner(
    shard& s, std::int32_t partition, std::string group_id, topic_partition tp, std::int32_t leader_epoch);

// On the same shard: `st` written (acks=all on the offsets partition).
asio::awaitable<std::expected<share_group_view, group::error>> write_share_state_on_owner(
    shard& s, std::int32_t partition, std::string group_id, topic_partition tp, group::share_state st);

}  // namespace runnel::net
