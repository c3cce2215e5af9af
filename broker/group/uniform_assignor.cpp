// The uniform (sticky) assignor. Three steps over an owner table:
//   1. keep: every member keeps the partitions it had in `previous` that it
//      may still own (topic exists, still subscribed, below the partition
//      count, not already kept by a member with a smaller id);
//   2. when every subscriber subscribes to the same topics (homogeneous),
//      pool the partitions: quotas of base or base + 1, the base + 1 ones to
//      the members that kept the most, trim to quota, fill the rest;
//   3. otherwise (heterogeneous), place each free partition on the least
//      loaded subscriber of its topic, then move partitions one at a time
//      from a loaded owner to a subscriber of the same topic holding at
//      least two fewer, until no such move is left.
#include <algorithm>
#include <cstddef>
#include <limits>
#include <numeric>
#include <set>
#include <utility>
#include <vector>

#include "broker/group/assignor.h"
#include "broker/group/subscribers.h"
#include "schemas/assert.h"

namespace runnel::group {
namespace {

constexpr std::size_t no_owner = std::numeric_limits<std::size_t>::max();

// owners[t][p]: the member index owning partition p of subs.topics[t].
using owner_table = std::vector<std::vector<std::size_t>>;

owner_table keep_previous(const assignor_input& in, const subscribers& subs) {
  owner_table owners;
  for (const auto& topic : subs.topics)
    owners.emplace_back(static_cast<std::size_t>(topic.partitions), no_owner);
  if (in.previous == nullptr) return owners;
  for (std::size_t m = 0; m < subs.members.size(); ++m) {
    auto had = in.previous->find(subs.members[m]);
    if (had == in.previous->end()) continue;
    for (const auto& tp : had->second) {
      const std::size_t t = subs.find_topic(tp.topic);
      if (t == subs.topics.size()) continue;  // topic gone or nobody subscribes
      const auto& topic = subs.topics[t];
      if (!std::binary_search(topic.subscribers.begin(), topic.subscribers.end(), m)) continue;
      const std::int32_t p = tp.partition.value();
      if (p < 0 || p >= topic.partitions)
        continue;  // the topic shrank (or the previous target was bad)
      auto& owner = owners[t][static_cast<std::size_t>(p)];
      if (owner == no_owner) owner = m;  // a partition listed twice stays with the smaller id
    }
  }
  return owners;
}

bool homogeneous(const subscribers& subs) {
  return std::all_of(subs.topics.begin(), subs.topics.end(), [&](const subscribed_topic& t) {
    return t.subscribers == subs.topics.front().subscribers;
  });
}

// Step 2. Moves exactly sum(max(0, kept - quota)) partitions, the fewest
// any balanced assignment can: the base + 1 quotas go to the largest keepers.
void balance_pooled(const subscribers& subs, owner_table& owners) {
  const auto& members = subs.topics.front().subscribers;
  std::size_t total = 0;
  for (const auto& t : subs.topics) total += static_cast<std::size_t>(t.partitions);
  const std::size_t base = total / members.size();
  const std::size_t extra = total % members.size();

  // held[m]: (topic, partition) pairs in ascending order.
  std::vector<std::vector<std::pair<std::size_t, std::size_t>>> held(subs.members.size());
  for (std::size_t t = 0; t < owners.size(); ++t) {
    for (std::size_t p = 0; p < owners[t].size(); ++p) {
      if (owners[t][p] != no_owner) held[owners[t][p]].emplace_back(t, p);
    }
  }

  std::vector<std::size_t> by_kept = members;
  std::stable_sort(by_kept.begin(), by_kept.end(),
                   [&](std::size_t a, std::size_t b) { return held[a].size() > held[b].size(); });
  std::vector<std::size_t> quota(subs.members.size(), 0);
  for (std::size_t rank = 0; rank < by_kept.size(); ++rank)
    quota[by_kept[rank]] = base + (rank < extra ? 1 : 0);

  for (std::size_t m : members) {
    while (held[m].size() > quota[m]) {  // trim the highest partitions
      const auto [t, p] = held[m].back();
      owners[t][p] = no_owner;
      held[m].pop_back();
    }
  }

  auto next = members.begin();  // fill in member id order
  for (std::size_t t = 0; t < owners.size(); ++t) {
    for (std::size_t p = 0; p < owners[t].size(); ++p) {
      if (owners[t][p] != no_owner) continue;
      while (next != members.end() && held[*next].size() >= quota[*next]) ++next;
      RUNNEL_ASSERT(next != members.end(), "quotas sum to the partition count {}", total);
      owners[t][p] = *next;
      held[*next].emplace_back(t, p);
    }
  }
}

// Step 3. Ends when, for every topic, no subscriber owning one of its
// partitions holds two or more partitions (over all topics) than any other
// subscriber of it: no single move narrows a gap. Terminates because every
// move lowers the sum of squared loads.
void balance_per_topic(const subscribers& subs, owner_table& owners) {
  std::vector<std::size_t> load(subs.members.size(), 0);
  // owned[t][k]: partitions of topic t owned by its k-th subscriber.
  std::vector<std::vector<std::vector<std::size_t>>> owned(subs.topics.size());
  for (std::size_t t = 0; t < subs.topics.size(); ++t) {
    const auto& topic = subs.topics[t];
    owned[t].resize(topic.subscribers.size());
    for (std::size_t p = 0; p < owners[t].size(); ++p) {
      const std::size_t m = owners[t][p];
      if (m == no_owner) continue;
      auto k = std::lower_bound(topic.subscribers.begin(), topic.subscribers.end(), m) -
               topic.subscribers.begin();
      owned[t][static_cast<std::size_t>(k)].push_back(p);
      ++load[m];
    }
  }

  // The most constrained topics (fewest subscribers) first, then by name.
  std::vector<std::size_t> order(subs.topics.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return subs.topics[a].subscribers.size() < subs.topics[b].subscribers.size();
  });

  for (std::size_t t : order) {  // free partitions to the least loaded subscriber
    const auto& topic = subs.topics[t];
    std::set<std::pair<std::size_t, std::size_t>> by_load;  // (load, k), ties by member id
    for (std::size_t k = 0; k < topic.subscribers.size(); ++k)
      by_load.emplace(load[topic.subscribers[k]], k);
    for (std::size_t p = 0; p < owners[t].size(); ++p) {
      if (owners[t][p] != no_owner) continue;
      auto [l, k] = *by_load.begin();
      by_load.erase(by_load.begin());
      const std::size_t m = topic.subscribers[k];
      owners[t][p] = m;
      owned[t][k].push_back(p);
      ++load[m];
      by_load.emplace(l + 1, k);
    }
  }

  for (bool moved = true; moved;) {
    moved = false;
    for (std::size_t t : order) {
      const auto& subs_of = subs.topics[t].subscribers;
      for (;;) {
        std::size_t hi = subs_of.size();  // the most loaded owner, smallest id on a tie
        std::size_t lo = 0;               // the least loaded subscriber, smallest id on a tie
        for (std::size_t k = 0; k < subs_of.size(); ++k) {
          if (!owned[t][k].empty() &&
              (hi == subs_of.size() || load[subs_of[k]] > load[subs_of[hi]]))
            hi = k;
          if (load[subs_of[k]] < load[subs_of[lo]]) lo = k;
        }
        if (hi == subs_of.size() || load[subs_of[hi]] < load[subs_of[lo]] + 2) break;
        const std::size_t p = owned[t][hi].back();
        owned[t][hi].pop_back();
        owned[t][lo].push_back(p);
        owners[t][p] = subs_of[lo];
        --load[subs_of[hi]];
        ++load[subs_of[lo]];
        moved = true;
      }
    }
  }
}

}  // namespace

assignment assign_uniform(const assignor_input& in) {
  const subscribers subs = resolve_subscribers(in);
  owner_table owners = keep_previous(in, subs);
  if (!subs.topics.empty()) {
    if (homogeneous(subs)) {
      balance_pooled(subs, owners);
    } else {
      balance_per_topic(subs, owners);
    }
  }

  assignment out = empty_assignment(subs);
  for (std::size_t t = 0; t < owners.size(); ++t) {
    for (std::size_t p = 0; p < owners[t].size(); ++p) {
      const std::size_t m = owners[t][p];
      RUNNEL_ASSERT(m != no_owner, "{}/{} left without an owner", subs.topics[t].name, p);
      out[subs.members[m]].emplace(subs.topics[t].name, partition_id(static_cast<std::int32_t>(p)));
    }
  }
  return out;
}

}  // namespace runnel::group
