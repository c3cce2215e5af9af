#pragma once
// Topic assignment and partition state as stored in ZooKeeper
// (docs/zookeeper.md), and the replica assignment of new topics.
//
//   /topics/<t>                          "runnel-topic 1" then one line each:
//                                        "partitions N", "replicas P a,b,c"
//                                        per partition, "config KEY VALUE"
//   /topics/<t>/partitions/<p>/state     "leader L epoch E isr a,b,c"
//
// Decoding is strict: anything unexpected is an error naming the problem,
// never a guess.

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <expected>
#include <string>
#include <string_view>
#include <vector>

#include "broker/cluster/controller.h"
#include "broker/cluster/errc.h"
#include "broker/meta/topic_store.h"
#include "broker/meta/types.h"

namespace runnel::cluster {

struct topic_assignment {
  std::vector<std::vector<std::int32_t>> replicas;  // per partition, preferred leader first
  meta::config_overrides config;
};

struct leader_state {
  std::int32_t leader = -1;
  std::int32_t leader_epoch = 0;
  std::vector<std::int32_t> isr;
  friend bool operator==(const leader_state&, const leader_state&) = default;
};

// What ZooKeeper holds for one partition's state, with the znode version
// that a compare-and-set must name.
struct partition_view {
  leader_state state;
  std::int32_t version = -1;
  bool known = false;  // false until the state node was read
};
struct topic_view {
  topic_assignment assignment;
  std::vector<partition_view> partitions;  // one per assigned partition
};
using topics_view = std::map<std::string, topic_view, std::less<>>;

// A partition state write the controller (or a leader) wants to make.
struct state_change {
  std::string topic;
  std::int32_t partition = 0;
  leader_state next;
  std::int32_t version = -1;  // expected znode version
  std::string why;            // for the log
};

// The controller's decisions for the current view and live brokers:
// partitions whose leader is gone get a new one from the live ISR (the
// first in assignment order), epoch + 1; with none alive the partition goes
// offline (leader -1) unless `unclean` allows a live out-of-ISR replica.
// Live leaders lose dead brokers from their ISR (no epoch change); an
// offline partition is led again as soon as an ISR member returns.
std::vector<state_change> plan_elections(const topics_view& topics, const std::set<std::int32_t>& live,
                                         const std::function<bool(const topic_view&)>& unclean);

// Controlled shutdown of `me`: every partition it leads moves to another
// live ISR member (epoch + 1, `me` out of the ISR). Partitions with no such
// member stay.
std::vector<state_change> plan_handover(const topics_view& topics, std::int32_t me, const std::set<std::int32_t>& live);

std::string topic_path(std::string_view topic);
std::string partitions_path(std::string_view topic);
std::string partition_path(std::string_view topic, std::int32_t partition);
std::string state_path(std::string_view topic, std::int32_t partition);

std::string encode_topic(const topic_assignment& a);
std::expected<topic_assignment, error> decode_topic(std::string_view data);
std::string encode_state(const leader_state& s);
std::expected<leader_state, error> decode_state(std::string_view data);

// Replicas for a new topic over the live brokers: partition p's preferred
// leader is the (start + p)-th broker and its followers the next ones, so
// leadership and replicas spread evenly. With racks set, brokers are
// ordered alternating between racks first, so a partition's replicas land
// on as many racks as possible. Errors: replication_factor < 1 or more
// than the live brokers.
std::expected<std::vector<std::vector<std::int32_t>>, error> assign_replicas(
    const std::vector<broker_registration>& live, std::int32_t partitions, std::int32_t replication_factor,
    std::uint32_t start);

}  // namespace runnel::cluster
