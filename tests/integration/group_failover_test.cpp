// Consumer groups in cluster mode: the coordinator is the leader of the
// group's __consumer_offsets partition (RF=3). Killing it loses no
// acknowledged commit, and the group keeps consuming.

#include <doctest/doctest.h>

#include <map>
#include <set>
#include <thread>

#include "broker/group/types.h"
#include "runnel/admin.h"
#include "runnel/consumer.h"
#include "runnel/producer.h"
#include "tests/integration/cluster_harness.h"
#include "tests/support/eventually.h"

using namespace runnel;
using namespace std::chrono_literals;
using runnel::testing::cluster_harness;

namespace {

void produce(const std::string& bootstrap, const std::string& topic, int from, int count) {
  producer_config pc;
  pc.bootstrap = bootstrap;
  pc.acks = -1;
  auto p = producer::connect(pc);
  REQUIRE(p.has_value());
  std::vector<std::future<result<delivery>>> sent;
  for (int n = from; n < from + count; ++n) sent.push_back((*p)->send(topic, "k" + std::to_string(n), "v" + std::to_string(n)));
  for (auto& f : sent) REQUIRE(f.get().has_value());
}

}  // namespace

TEST_CASE("group failover: kill -9 the coordinator's broker while the group commits: acknowledged commits survive") {
  cluster_harness c(3, {"--set", "group.consumer.heartbeat.interval.ms=200", "--set", "offsets.topic.num.partitions=4"});
  admin_config ac;
  ac.bootstrap = c.bootstrap();
  auto admin = admin::connect(ac);
  REQUIRE(admin.has_value());
  REQUIRE((*admin)->create_topic("fo", 4, 3).has_value());
  produce(c.bootstrap(), "fo", 0, 2000);

  consumer_config cc;
  cc.bootstrap = c.bootstrap();
  cc.group_id = "fo-group";
  cc.enable_auto_commit = false;
  cc.session_timeout = 10s;
  cc.fetch_max_wait = 100ms;
  auto cons = consumer::connect(cc);
  REQUIRE(cons.has_value());
  REQUIRE((*cons)->subscribe({"fo"}).has_value());

  std::map<std::int32_t, std::int64_t> acked;  // highest acknowledged commit per partition
  std::map<std::int32_t, std::int64_t> position;
  std::set<std::string> seen;
  std::size_t commit_failures = 0;
  auto consume_and_commit = [&](std::size_t until_seen, std::chrono::seconds limit) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (seen.size() < until_seen && std::chrono::steady_clock::now() < deadline) {
      auto recs = (*cons)->poll(100ms);
      if (!recs) continue;  // a coordinator or leader move: the next poll goes on
      if (recs->empty()) continue;
      std::map<topic_partition_ref, offset_and_metadata> offsets;
      for (const auto& r : *recs) {
        seen.insert(std::string(*r.value));
        position[r.partition] = r.offset + 1;
        offsets[{"fo", r.partition}] = offset_and_metadata{r.offset + 1, {}, -1, -1};
      }
      if (auto ok = (*cons)->commit_sync(offsets); ok) {
        for (const auto& [tp, o] : offsets) acked[tp.partition] = std::max(acked[tp.partition], o.offset);
      } else {
        ++commit_failures;
      }
    }
  };
  consume_and_commit(800, 30s);
  REQUIRE(seen.size() >= 800);

  // The coordinator: the leader of the group's offsets partition.
  auto offsets_topic = c.describe(std::string(group::offsets_topic));
  REQUIRE(offsets_topic.has_value());
  REQUIRE(offsets_topic->partitions.size() == 4);
  for (const auto& p : offsets_topic->partitions) CHECK(p.replicas.size() == 3);
  const auto part = group::offsets_partition_for("fo-group", 4);
  const std::int32_t coordinator = offsets_topic->partitions[static_cast<std::size_t>(part)].leader;
  REQUIRE(coordinator > 0);
  c.kill9(coordinator);

  // Right after the failover: the new coordinator has every commit
  // acknowledged before the kill.
  consumer_config wc;
  wc.bootstrap = c.bootstrap();
  wc.group_id = "fo-group";
  auto watcher = consumer::connect(wc);
  REQUIRE(watcher.has_value());
  for (const auto& [p, o] : acked) {
    auto got = (*watcher)->committed({"fo", p});
    REQUIRE(got.has_value());
    REQUIRE(got->has_value());
    CHECK((**got).offset >= o);
  }
  consume_and_commit(2000, 60s);
  CHECK(seen.size() == 2000);
  produce(c.bootstrap(), "fo", 2000, 500);
  consume_and_commit(2500, 60s);
  CHECK(seen.size() == 2500);  // the group kept consuming after the failover
  MESSAGE("commits refused or failed across the failover: " << commit_failures);

  // And at the end, every acknowledged commit.
  for (const auto& [p, o] : acked) {
    auto got = (*watcher)->committed({"fo", p});
    REQUIRE(got.has_value());
    REQUIRE(got->has_value());
    CHECK((**got).offset >= o);
  }
  std::int64_t total = 0;
  for (const auto& [p, o] : acked) total += o;
  CHECK(total == 2500);
}
