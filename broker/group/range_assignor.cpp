// Kafka's RangeAssignor, per topic: subscribers in member id order,
// partitions 0..n-1 in contiguous ranges, the first n % m members one longer.
#include "broker/group/assignor.h"
#include "broker/group/subscribers.h"

namespace runnel::group {

assignment assign_range(const assignor_input& in) {
  const subscribers subs = resolve_subscribers(in);
  assignment out = empty_assignment(subs);
  for (const auto& topic : subs.topics) {
    const auto members = static_cast<std::int32_t>(topic.subscribers.size());
    const std::int32_t base = topic.partitions / members;
    const std::int32_t longer = topic.partitions % members;
    std::int32_t next = 0;
    for (std::int32_t i = 0; i < members; ++i) {
      auto& owned = out[subs.members[topic.subscribers[static_cast<std::size_t>(i)]]];
      for (std::int32_t end = next + base + (i < longer ? 1 : 0); next < end; ++next) {
        owned.emplace_hint(owned.end(), topic.name, partition_id(next));
      }
    }
  }
  return out;
}

}  // namespace runnel::group
