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
//            When all subscribers subscribe to the same topics, counts
//            differ by at most one and the number of partitions taken from
//            a member that could have kept them is the minimum any such
//            balanced result needs. Otherwise (heterogeneous) a greedy
//            balance: no member owning a partition of topic T holds two or
//            more partitions than any other subscriber of T, i.e. no single
//            move narrows a gap; the global optimum is not promised.
//            Kept: previous partitions of topics that still exist, the
//            member still subscribes to, below the partition count; one
//            claimed by two members stays with the smaller member id.
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

// Both are deterministic (the order of `in.members` does not matter); 1,000
// members over 10,000 partitions take milliseconds. A member id listed
// twice counts once, with the topics of its first entry.
//
// Every member of `in.members` has an entry (possibly empty); every
// partition of a topic with at least one subscriber goes to exactly one of
// its subscribers; no partition of an unsubscribed or unknown topic appears.
assignment assign_uniform(const assignor_input& in);
assignment assign_range(const assignor_input& in);

using assignor_fn = assignment (*)(const assignor_input&);
// "uniform" or "range"; nullptr for any other name.
assignor_fn find_assignor(std::string_view name);

}  // namespace runnel::group
