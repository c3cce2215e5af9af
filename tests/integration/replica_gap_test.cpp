// A follower far behind a compacted leader copies its gapped batches
// (offsets the leader's cleaner removed) and rejoins the ISR.

#include <doctest/doctest.h>

#include <thread>

#include "runnel/admin.h"
#include "runnel/producer.h"
#include "tests/integration/cluster_harness.h"

using namespace runnel;
using namespace std::chrono_literals;
using runnel::testing::cluster_harness;

TEST_CASE("replication: a follower behind a compacted leader copies the gapped batches and rejoins the ISR") {
  cluster_harness c(3, {"--set", "log.cleaner.backoff.ms=200", "--set", "replica.lag.time.max.ms=1000"});
  admin_config ac;
  ac.bootstrap = c.bootstrap();
  ac.timeout = 10s;
  auto a = admin::connect(ac);
  REQUIRE(a.has_value());
  REQUIRE((*a)->create_topic("cgap", 1, 3,
                             {{"cleanup.policy", "compact"}, {"segment.bytes", "1048576"},
                              {"min.cleanable.dirty.ratio", "0.01"}, {"segment.preallocate.bytes", "0"}})
              .has_value());
  auto t = c.describe("cgap");
  REQUIRE(t.has_value());
  const std::int32_t leader = t->partitions[0].leader;
  std::int32_t down = 0;
  for (std::int32_t id = 1; id <= 3; ++id) {
    if (id != leader) down = id;
  }
  c.kill9(down);
  // The ISR shrinks past the lag time; then ~4 MiB over 50 keys: the
  // leader's cleaner removes almost every record of the sealed segments.
  REQUIRE(c.wait_for("cgap", [](const topic_info& ti) { return ti.partitions[0].isr.size() == 2; }, 20s).has_value());
  producer_config pc;
  pc.bootstrap = c.bootstrap();
  pc.acks = -1;
  auto p = producer::connect(pc);
  REQUIRE(p.has_value());
  const std::string value(1000, 'v');
  std::vector<std::future<result<delivery>>> sent;
  for (int i = 0; i < 4000; ++i) sent.push_back((*p)->send("cgap", "key-" + std::to_string(i % 50), value));
  for (auto& f : sent) REQUIRE(f.get().has_value());
  // Judged against what was written (4000 records of 1000 B), not against
  // a size measured after the acks: the cleaner may already have cleaned
  // the first sealed segments by then (a slow machine produces slowly).
  constexpr std::int64_t written = 4000LL * 1000;
  bool cleaned = false;
  for (int i = 0; i < 100 && !cleaned; ++i) {
    std::this_thread::sleep_for(200ms);
    auto s = (*a)->partition_size("cgap", 0);
    cleaned = s && *s < written / 2;
  }
  REQUIRE(cleaned);
  c.start(down);
  auto healed = c.wait_for("cgap", [](const topic_info& ti) { return ti.partitions[0].isr.size() == 3; }, 30s);
  CHECK(healed.has_value());
  // Its log, gaps and all, opens again after a crash (recovery takes the
  // gaps below the cleaner checkpoint for cleaned ones): back in the ISR.
  c.kill9(down);
  REQUIRE(c.wait_for("cgap", [](const topic_info& ti) { return ti.partitions[0].isr.size() == 2; }, 20s).has_value());
  c.start(down);
  CHECK(c.wait_for("cgap", [](const topic_info& ti) { return ti.partitions[0].isr.size() == 3; }, 30s).has_value());
}
