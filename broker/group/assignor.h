#pragma once
// Server-side partition assignors of consumer groups (KIP-848): pure
// functions from the members' subscriptions and the topics' partition
// counts to a target assignment. The coordinator runs one whenever the
// group epoch passes the assignment epoch (docs/groups.md, "Assignors").
//
//   uniform  sticky: every member gets within one partition of every other
//            member subscribed to the same topics; a member keeps as many
//            of the partitions it had in the previous target as balance
//            allows, so a join or a leave moves only what it must.
//   range    per topic, partitions in order split into contiguous ranges
//            over the subscribed members sorted by member id (Kafka's
//            RangeAssignor); deterministic, not sticky.

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "schemas/types.h"

namespace runnel::group {

// member id -> the partitions it is to own.
using assignment = std::map<std::string, std::set<topic_partition>>;

struct member_subscription {
  std::string member_id;
  std::set<std::string> topics;  // resolved topic names (regex already expanded)
};

struct assignor_input {
  std::vector<member_subscription> members;
  std::map<std::string, std::int32_t> partitions;  // topic -> partition count; topics missing here are skipped
  const assignment* previous = nullptr;            // the last target, for stickiness (may be null)
};

// Every member of `in.members` has an entry (possibly empty); every
// partition of a topic with at least one subscriber goes to exactly one of
// its subscribers; no partition of an unsubscribed or unknown topic appears.
assignment assign_uniform(const assignor_input& in);
assignment assign_range(const assignor_input& in);

using assignor_fn = assignment (*)(const assignor_input&);
// "uniform" or "range"; nullptr for any other name.
assignor_fn find_assignor(std::string_view name);

}  // namespace runnel::group
