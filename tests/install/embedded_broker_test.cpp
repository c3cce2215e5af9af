// A user's integration test, built against the installed package only
// (runnel::client, runnel::embedded_broker, doctest): a consumer group
// commits, the broker restarts, and the group resumes where it committed.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <runnel/admin.h>
#include <runnel/consumer.h>
#include <runnel/producer.h>
#include <runnel/testing/embedded_broker.h>

namespace {

constexpr std::int32_t partitions = 3;

// Sends values v<first>..v<first+count-1> with acks=all; every one acknowledged.
void produce(const std::string& bootstrap, const std::string& topic, int first, int count) {
  runnel::producer_config pc;
  pc.bootstrap = bootstrap;
  pc.acks = -1;
  auto p = runnel::producer::connect(pc);
  REQUIRE(p.has_value());
  std::vector<std::future<runnel::result<runnel::delivery>>> sent;
  for (int i = first; i < first + count; ++i) {
    sent.push_back((*p)->send(topic, "k" + std::to_string(i), "v" + std::to_string(i)));
  }
  for (auto& f : sent) REQUIRE(f.get().has_value());
}

std::unique_ptr<runnel::consumer> join(const std::string& bootstrap, const std::string& group,
                                       const std::string& topic) {
  runnel::consumer_config cc;
  cc.bootstrap = bootstrap;
  cc.group_id = group;
  cc.enable_auto_commit = false;  // only commit_sync() commits
  cc.fetch_max_wait = std::chrono::milliseconds(100);
  auto c = runnel::consumer::connect(cc);
  REQUIRE(c.has_value());
  REQUIRE((*c)->subscribe({topic}).has_value());
  return std::move(*c);
}

// Every record value polled, with repeats, until `want` records came or
// 20 s passed; then polls once more so that extra records would show.
std::map<std::string, int> read(runnel::consumer& c, std::size_t want) {
  std::map<std::string, int> seen;
  std::size_t n = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (n < want && std::chrono::steady_clock::now() < deadline) {
    auto r = c.poll(std::chrono::milliseconds(200));
    REQUIRE(r.has_value());
    for (const auto& rec : *r) {
      ++seen[std::string(rec.value.value_or("<null>"))];
      ++n;
    }
  }
  auto r = c.poll(std::chrono::milliseconds(500));
  REQUIRE(r.has_value());
  for (const auto& rec : *r) ++seen[std::string(rec.value.value_or("<null>"))];
  return seen;
}

std::map<std::string, int> values(int first, int count) {
  std::map<std::string, int> v;
  for (int i = first; i < first + count; ++i) v["v" + std::to_string(i)] = 1;
  return v;
}

// "v0 v1 v1*2 ...": what a failed CHECK prints.
std::string str(const std::map<std::string, int>& seen) {
  std::string s;
  for (const auto& [value, times] : seen) s += value + (times == 1 ? "" : "*" + std::to_string(times)) + " ";
  return s;
}

}  // namespace

TEST_CASE("a consumer group resumes from its committed offsets after the embedded broker restarts") {
  runnel::testing::embedded_broker_options options;
  options.config["group.consumer.heartbeat.interval.ms"] = "100";
  options.config["offsets.topic.num.partitions"] = "4";
  auto broker = runnel::testing::EmbeddedBroker::start(options);
  REQUIRE(broker.has_value());
  auto& b = **broker;

  runnel::admin_config ac;
  ac.bootstrap = b.bootstrap();
  auto admin = runnel::admin::connect(ac);
  REQUIRE(admin.has_value());
  REQUIRE((*admin)->create_topic("orders", partitions).has_value());
  produce(b.bootstrap(), "orders", 0, 100);

  {
    auto c = join(b.bootstrap(), "billing", "orders");
    CHECK(str(read(*c, 100)) == str(values(0, 100)));
    CHECK(c->assignment().size() == static_cast<std::size_t>(partitions));
    REQUIRE(c->commit_sync().has_value());
    REQUIRE(c->close().has_value());
  }

  REQUIRE(b.restart().has_value());
  produce(b.bootstrap(), "orders", 100, 20);

  // The same group reads only what came after its commit...
  auto resumed = join(b.bootstrap(), "billing", "orders");
  CHECK(str(read(*resumed, 20)) == str(values(100, 20)));
  // ...while a new group (negative control) reads everything, the records
  // from before the restart included.
  auto fresh = join(b.bootstrap(), "audit", "orders");
  CHECK(str(read(*fresh, 120)) == str(values(0, 120)));
}
