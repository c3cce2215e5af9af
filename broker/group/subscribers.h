#pragma once
// The part of an assignor_input both assignors read the same way: the
// members, unique and sorted by id, and for every topic that exists (count
// > 0) and has at least one subscriber, its partition count and its
// subscribers. Internal to runnel_group.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "broker/group/assignor.h"

namespace runnel::group {

struct subscribed_topic {
  std::string name;
  std::int32_t partitions;               // > 0
  std::vector<std::size_t> subscribers;  // indexes into subscribers::members, ascending, non-empty
};

struct subscribers {
  // Sorted, unique. A member id listed twice in the input counts once, with
  // the topics of its first entry.
  std::vector<std::string> members;
  std::vector<subscribed_topic> topics;  // sorted by name

  // The index of `name` in topics, or topics.size() if it has no entry.
  [[nodiscard]] std::size_t find_topic(const std::string& name) const;
};

subscribers resolve_subscribers(const assignor_input& in);

// Every member with an empty set: the result before anything is placed.
assignment empty_assignment(const subscribers& subs);

}  // namespace runnel::group
