// ZooKeeper encodings of topic assignments and partition states, and the
// replica assignment of new topics (broker/cluster/topic_state.h).
#include <doctest/doctest.h>

#include <map>
#include <set>

#include "broker/cluster/topic_state.h"

using namespace runnel::cluster;

TEST_CASE("topic assignment round-trips through its ZooKeeper text") {
  topic_assignment a;
  a.replicas = {{1, 2, 3}, {2, 3, 1}};
  a.config = {{"min.insync.replicas", "2"}, {"retention.ms", "1000"}};
  auto back = decode_topic(encode_topic(a));
  REQUIRE(back.has_value());
  CHECK(back->replicas == a.replicas);
  CHECK(back->config == a.config);
}

TEST_CASE("malformed topic assignments are refused with the line that is wrong") {
  CHECK_FALSE(decode_topic("").has_value());
  CHECK_FALSE(decode_topic("runnel-topic 2\npartitions 1\nreplicas 0 1").has_value());
  auto missing = decode_topic("runnel-topic 1\npartitions 2\nreplicas 0 1");
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().message.find("partition 1 has no replicas") != std::string::npos);
  CHECK(missing.error().code == errc::malformed_state);
  auto twice = decode_topic("runnel-topic 1\npartitions 1\nreplicas 0 1,1");
  REQUIRE_FALSE(twice.has_value());
  CHECK(twice.error().message.find("line 3") != std::string::npos);
  CHECK_FALSE(decode_topic("runnel-topic 1\npartitions 1\nreplicas 1 1").has_value());
  CHECK_FALSE(decode_topic("runnel-topic 1\npartitions 0").has_value());
  CHECK_FALSE(decode_topic("runnel-topic 1\npartitions x").has_value());
  CHECK_FALSE(decode_topic("runnel-topic 1\npartitions 1\nreplicas 0 1\nbogus").has_value());
}

TEST_CASE("partition state round-trips, including an empty ISR and no leader") {
  for (const auto& s : {leader_state{1, 0, {1, 2, 3}}, leader_state{-1, 7, {2}}, leader_state{-1, 3, {}}}) {
    auto back = decode_state(encode_state(s));
    REQUIRE(back.has_value());
    CHECK(*back == s);
  }
  CHECK(decode_state("leader 1 epoch x isr 1").error().code == errc::malformed_state);
  CHECK_FALSE(decode_state("leader -2 epoch 0 isr 1").has_value());
  CHECK_FALSE(decode_state("leader 1 epoch 0 isr 1,-1").has_value());
  CHECK_FALSE(decode_state("epoch 0 leader 1 isr 1").has_value());
}

TEST_CASE("replica assignment spreads leaders and replicas and refuses too few brokers") {
  std::vector<broker_registration> live{{1, "h", 1, ""}, {2, "h", 2, ""}, {3, "h", 3, ""}};
  auto a = assign_replicas(live, 6, 3, 0);
  REQUIRE(a.has_value());
  std::map<std::int32_t, int> leaders;
  for (const auto& r : *a) {
    CHECK(r.size() == 3);
    CHECK(std::set<std::int32_t>(r.begin(), r.end()).size() == 3);
    ++leaders[r.front()];
  }
  CHECK(leaders == std::map<std::int32_t, int>{{1, 2}, {2, 2}, {3, 2}});
  auto too_many = assign_replicas(live, 1, 4, 0);
  REQUIRE_FALSE(too_many.has_value());
  CHECK(too_many.error().message.find("3 live brokers") != std::string::npos);
  CHECK(too_many.error().code == errc::not_enough_brokers);
  CHECK(assign_replicas(live, 1, 0, 0).error().code == errc::invalid_replication);
}

TEST_CASE("with racks, each partition's replicas land on different racks") {
  std::vector<broker_registration> live{{1, "h", 1, "a"}, {2, "h", 2, "a"}, {3, "h", 3, "b"}, {4, "h", 4, "b"}};
  std::map<std::int32_t, std::string> rack{{1, "a"}, {2, "a"}, {3, "b"}, {4, "b"}};
  auto a = assign_replicas(live, 8, 2, 1);
  REQUIRE(a.has_value());
  for (const auto& r : *a) CHECK(rack[r[0]] != rack[r[1]]);
}

namespace {

topics_view one_partition(std::vector<std::int32_t> replicas, leader_state s, std::int32_t version = 4) {
  topics_view v;
  auto& t = v["t"];
  t.assignment.replicas = {std::move(replicas)};
  t.partitions = {partition_view{std::move(s), version, true}};
  return v;
}

const auto never = [](const topic_view&) { return false; };
const auto always = [](const topic_view&) { return true; };

}  // namespace

TEST_CASE("controller: a dead leader is replaced by the first live ISR member, epoch + 1") {
  auto v = one_partition({1, 2, 3}, {1, 5, {1, 2, 3}});
  auto plan = plan_elections(v, {2, 3}, never);
  REQUIRE(plan.size() == 1);
  CHECK(plan[0].next == leader_state{2, 6, {2, 3}});
  CHECK(plan[0].version == 4);
  CHECK(plan_elections(v, {1, 2, 3}, never).empty());  // all alive: nothing to do
}

TEST_CASE("controller: a dead follower leaves the ISR of a live leader, no epoch change") {
  auto v = one_partition({1, 2, 3}, {1, 5, {1, 2, 3}});
  auto plan = plan_elections(v, {1, 3}, never);
  REQUIRE(plan.size() == 1);
  CHECK(plan[0].next == leader_state{1, 5, {1, 3}});
}

TEST_CASE("controller: with no live ISR member the partition goes offline, and comes back with its ISR member") {
  auto v = one_partition({1, 2, 3}, {1, 5, {1}});
  auto plan = plan_elections(v, {2, 3}, never);
  REQUIRE(plan.size() == 1);
  CHECK(plan[0].next == leader_state{-1, 6, {1}});  // the ISR remembers who may lead
  auto offline = one_partition({1, 2, 3}, {-1, 6, {1}});
  CHECK(plan_elections(offline, {2, 3}, never).empty());
  auto back = plan_elections(offline, {1, 2, 3}, never);
  REQUIRE(back.size() == 1);
  CHECK(back[0].next == leader_state{1, 7, {1}});
}

TEST_CASE("controller: unclean election picks a live out-of-ISR replica only when allowed") {
  auto v = one_partition({1, 2, 3}, {1, 5, {1}});
  auto plan = plan_elections(v, {3}, always);
  REQUIRE(plan.size() == 1);
  CHECK(plan[0].next == leader_state{3, 6, {3}});
  CHECK(plan[0].why.find("UNCLEAN") != std::string::npos);
}

TEST_CASE("controller: partitions whose state is not read yet are left alone") {
  auto v = one_partition({1, 2}, {1, 0, {1, 2}});
  v["t"].partitions[0].known = false;
  CHECK(plan_elections(v, {2}, never).empty());
}

TEST_CASE("controlled shutdown hands each led partition to another live ISR member") {
  topics_view v;
  auto& t = v["t"];
  t.assignment.replicas = {{1, 2, 3}, {2, 1, 3}, {1, 3}};
  t.partitions = {partition_view{{1, 2, {1, 2, 3}}, 7, true}, partition_view{{2, 0, {2, 1}}, 1, true},
                  partition_view{{1, 0, {1}}, 0, true}};
  auto plan = plan_handover(v, 1, {1, 2, 3});
  REQUIRE(plan.size() == 1);  // partition 1 is led by 2; partition 2 has no one to take over
  CHECK(plan[0].partition == 0);
  CHECK(plan[0].next == leader_state{2, 3, {2, 3}});
  CHECK(plan[0].version == 7);
}
