#include "broker/group/subscribers.h"

#include <algorithm>
#include <map>

namespace runnel::group {

std::size_t subscribers::find_topic(const std::string& name) const {
  auto it =
      std::lower_bound(topics.begin(), topics.end(), name,
                       [](const subscribed_topic& t, const std::string& n) { return t.name < n; });
  return it != topics.end() && it->name == name ? static_cast<std::size_t>(it - topics.begin())
                                                : topics.size();
}

subscribers resolve_subscribers(const assignor_input& in) {
  // First entry per id wins; std::map sorts the ids.
  std::map<std::string, const std::set<std::string>*> by_id;
  for (const auto& m : in.members) by_id.try_emplace(m.member_id, &m.topics);

  subscribers out;
  std::map<std::string, std::vector<std::size_t>> subscribers_of;
  for (const auto& [id, topics] : by_id) {
    const std::size_t index = out.members.size();
    out.members.push_back(id);
    for (const auto& topic : *topics) {
      auto count = in.partitions.find(topic);
      if (count == in.partitions.end() || count->second <= 0)
        continue;                              // unknown or empty: skipped
      subscribers_of[topic].push_back(index);  // ascending: members are visited in index order
    }
  }
  for (auto& [name, members] : subscribers_of) {
    out.topics.push_back(subscribed_topic{name, in.partitions.at(name), std::move(members)});
  }
  return out;
}

assignment empty_assignment(const subscribers& subs) {
  assignment out;
  for (const auto& id : subs.members) out.emplace_hint(out.end(), id, std::set<topic_partition>{});
  return out;
}

}  // namespace runnel::group
