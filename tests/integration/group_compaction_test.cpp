// __consumer_offsets is compacted: a million commits for ten groups leave
// it small, and a coordinator loads it again in well under a second.

#include <doctest/doctest.h>

#include <thread>

#include "runnel/admin.h"
#include "runnel/consumer.h"
#include "tests/support/broker_process.h"
#include "tests/support/eventually.h"
#include "tests/support/temp_dir.h"

using namespace runnel;
using runnel::testing::broker_process;
using runnel::testing::temp_dir;

TEST_CASE("group compaction: 1,000,000 commits for 10 groups stay bounded and load in well under a second") {
  temp_dir dir;
  const std::vector<std::string> args{"--set", "offsets.topic.num.partitions=1", "--set",
                                      "offsets.topic.segment.bytes=1048576", "--set", "log.cleaner.backoff.ms=200"};
  auto broker = std::make_unique<broker_process>(dir / "data", args);
  admin_config ac;
  ac.bootstrap = broker->bootstrap();
  auto admin = admin::connect(ac);
  REQUIRE(admin.has_value());
  constexpr int groups = 10;
  constexpr int partitions = 100;
  constexpr int rounds = 1000;  // groups * partitions * rounds = 1,000,000 offset records
  REQUIRE((*admin)->create_topic("cmp", partitions).has_value());

  std::atomic<std::int64_t> max_size{0};
  std::atomic<bool> sampling{true};
  std::thread sampler([&] {
    while (sampling) {
      if (auto s = (*admin)->partition_size("__consumer_offsets", 0)) max_size = std::max(max_size.load(), *s);
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
  });
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> committers;
  std::atomic<int> failures{0};
  for (int g = 0; g < groups; ++g) {
    committers.emplace_back([&, g] {
      consumer_config cc;
      cc.bootstrap = broker->bootstrap();
      cc.group_id = "cmp-" + std::to_string(g);
      cc.enable_auto_commit = false;
      auto c = consumer::connect(cc);
      if (!c) {
        ++failures;
        return;
      }
      for (int r = 1; r <= rounds; ++r) {
        std::map<topic_partition_ref, offset_and_metadata> offsets;
        for (int p = 0; p < partitions; ++p) offsets[{"cmp", p}] = offset_and_metadata{r, "m", -1, -1};
        if (!(*c)->commit_sync(offsets)) ++failures;
      }
    });
  }
  for (auto& t : committers) t.join();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(failures.load() == 0);
  // The cleaner catches up: what is left is about one active segment plus
  // the live keys (1,000 offsets), far below the ~100 bytes x 1,000,000 written.
  std::int64_t size = -1;
  const bool small = runnel::testing::eventually(
      [&] {
        auto s = (*admin)->partition_size("__consumer_offsets", 0);
        size = s ? *s : -1;
        return s && *s < 4 * 1024 * 1024;
      },
      std::chrono::seconds(30), std::chrono::milliseconds(200));
  sampling = false;
  sampler.join();
  MESSAGE("1,000,000 commit records in " << secs << " s; __consumer_offsets peaked at " << max_size.load()
                                         << " bytes, settled at " << size << " bytes");
  CHECK(small);
  CHECK(max_size.load() < 64LL * 1024 * 1024);

  // A fresh coordinator: stop the broker, start it on the same data; the
  // first OffsetFetch loads the partition.
  admin->reset();
  CHECK(broker->stop() == 0);
  broker = std::make_unique<broker_process>(dir / "data", args);
  consumer_config cc;
  cc.bootstrap = broker->bootstrap();
  cc.group_id = "cmp-7";
  auto c = consumer::connect(cc);
  REQUIRE(c.has_value());
  const auto t0 = std::chrono::steady_clock::now();
  auto got = (*c)->committed({"cmp", 42});
  const auto load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  REQUIRE(got.has_value());
  REQUIRE(got->has_value());
  CHECK((**got).offset == rounds);
  CHECK((**got).metadata == "m");
  MESSAGE("first OffsetFetch after the restart (the load included): " << load_ms << " ms");
  CHECK(load_ms < 1000);
  for (int g = 0; g < groups; ++g) {
    consumer_config gc = cc;
    gc.group_id = "cmp-" + std::to_string(g);
    auto gcons = consumer::connect(gc);
    REQUIRE(gcons.has_value());
    for (int p : {0, 57, 99}) {
      auto o = (*gcons)->committed({"cmp", p});
      REQUIRE(o.has_value());
      REQUIRE(o->has_value());
      CHECK((**o).offset == rounds);
    }
  }
}
