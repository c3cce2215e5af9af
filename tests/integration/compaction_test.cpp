// Log compaction end to end: a real runnel-broker, a cleanup.policy=compact
// topic with 1 MiB segments, the SDK producer and consumer.

#include <doctest/doctest.h>

#include <future>
#include <map>
#include <string>
#include <thread>

#include "runnel/admin.h"
#include "runnel/consumer.h"
#include "runnel/producer.h"
#include "tests/support/broker_process.h"
#include "tests/support/temp_dir.h"

using namespace runnel;
using runnel::testing::broker_process;
using runnel::testing::temp_dir;

namespace {

struct seen {
  std::int64_t offset = -1;
  std::string value;
  bool tombstone = false;
};

// Everything the partition serves now, from the earliest offset to the
// high watermark: per key the last record, and how many records came.
std::pair<std::map<std::string, seen>, std::size_t> read_back(const broker_process& b, const std::string& topic,
                                                              std::int64_t end) {
  consumer_config c;
  c.bootstrap = b.bootstrap();
  c.fetch_max_wait = std::chrono::milliseconds(100);
  c.start_at_earliest = true;
  auto k = consumer::connect(c);
  REQUIRE(k.has_value());
  REQUIRE((*k)->assign({{topic, 0}}).has_value());
  std::map<std::string, seen> last;
  std::size_t count = 0;
  std::int64_t next = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (next < end && std::chrono::steady_clock::now() < deadline) {
    auto recs = (*k)->poll(std::chrono::milliseconds(200));
    REQUIRE(recs.has_value());
    for (const auto& r : *recs) {
      REQUIRE(r.offset >= next);  // offsets only grow, across the cleaner's gaps
      next = r.offset + 1;
      ++count;
      last[std::string(r.key.value_or(""))] = seen{r.offset, std::string(r.value.value_or("")), !r.value};
    }
  }
  CHECK(next == end);
  return {last, count};
}

}  // namespace

TEST_CASE("compaction: a compacted topic serves the latest value of every key after the cleaner ran") {
  temp_dir dir;
  broker_process b(dir / "data", {"--set", "log.cleaner.backoff.ms=100"});
  admin_config ac;
  ac.bootstrap = b.bootstrap();
  auto a = admin::connect(ac);
  REQUIRE(a.has_value());
  REQUIRE((*a)->create_topic("table", 1, 1,
                             {{"cleanup.policy", "compact"},
                              {"segment.bytes", "1048576"},
                              {"min.cleanable.dirty.ratio", "0.01"}})
              .has_value());

  producer_config pc;
  pc.bootstrap = b.bootstrap();
  pc.acks = -1;
  pc.linger = std::chrono::milliseconds(2);
  auto p = producer::connect(pc);
  REQUIRE(p.has_value());
  // 40 keys x 100 rounds of 1 KiB values: about 4 MiB, so 3 sealed segments.
  constexpr int keys = 40;
  constexpr int rounds = 100;
  std::map<std::string, std::string> latest;
  std::vector<std::future<result<delivery>>> acks;
  const std::string pad(1000, 'x');
  std::int64_t end = 0;
  for (int r = 0; r < rounds; ++r) {
    for (int k = 0; k < keys; ++k) {
      auto key = "key-" + std::to_string(k);
      auto value = "round-" + std::to_string(r) + "-" + pad;
      latest[key] = value;
      acks.push_back((*p)->send("table", key, value));
    }
  }
  for (auto& f : acks) {
    auto d = f.get();
    REQUIRE(d.has_value());
    end = std::max(end, d->offset + 1);
  }
  REQUIRE(end == keys * rounds);

  // The cleaner runs every 100 ms: wait (bounded) until the served log shrank.
  std::size_t count = 0;
  std::map<std::string, seen> last;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  do {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    std::tie(last, count) = read_back(b, "table", end);
  } while (count == static_cast<std::size_t>(end) && std::chrono::steady_clock::now() < deadline);
  CHECK(count < static_cast<std::size_t>(end));
  REQUIRE(last.size() == latest.size());
  for (const auto& [key, value] : latest) {
    CHECK(last[key].value == value);
  }

  // A restart (recovery over the cleaned segments) serves the same.
  CHECK(b.stop() == 0);
  broker_process again(dir / "data");
  auto [after, n] = read_back(again, "table", end);
  CHECK(n == count);
  for (const auto& [key, value] : latest) CHECK(after[key].value == value);
}
