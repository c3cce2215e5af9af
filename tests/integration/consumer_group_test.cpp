// Consumer groups through the SDK against a real (embedded) broker:
// subscribe, poll, commit, resume from committed offsets, rebalance.

#include <doctest/doctest.h>

#include <map>
#include <set>
#include <thread>

#include "runnel/admin.h"
#include "runnel/consumer.h"
#include "runnel/producer.h"
#include "runnel/testing/embedded_broker.h"
#include "tests/support/eventually.h"

using namespace runnel;

namespace {

std::unique_ptr<testing::EmbeddedBroker> start_broker() {
  testing::embedded_broker_options o;
  o.config["group.consumer.heartbeat.interval.ms"] = "100";
  o.config["group.consumer.session.timeout.ms"] = "3000";
  o.config["offsets.topic.num.partitions"] = "4";
  auto b = testing::EmbeddedBroker::start(o);
  REQUIRE(b.has_value());
  return std::move(*b);
}

void produce(const std::string& bootstrap, const std::string& topic, int count, int first = 0) {
  producer_config pc;
  pc.bootstrap = bootstrap;
  pc.acks = -1;
  auto p = producer::connect(pc);
  REQUIRE(p.has_value());
  std::vector<std::future<result<delivery>>> sent;
  for (int i = first; i < first + count; ++i) sent.push_back((*p)->send(topic, "k" + std::to_string(i), "v" + std::to_string(i)));
  for (auto& f : sent) REQUIRE(f.get().has_value());
}

consumer_config group_config(const std::string& bootstrap, const std::string& group) {
  consumer_config cc;
  cc.bootstrap = bootstrap;
  cc.group_id = group;
  cc.fetch_max_wait = std::chrono::milliseconds(100);
  return cc;
}

// Polls until `want` distinct values arrived or 15 s passed.
std::set<std::string> read_values(consumer& c, std::size_t want) {
  std::set<std::string> got;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (got.size() < want && std::chrono::steady_clock::now() < deadline) {
    auto r = c.poll(std::chrono::milliseconds(200));
    REQUIRE(r.has_value());
    for (const auto& rec : *r) got.insert(std::string(*rec.value));
  }
  return got;
}

}  // namespace

TEST_CASE("consumer group: a subscribed consumer reads everything, commits, and a new one resumes there") {
  auto b = start_broker();
  admin_config ac;
  ac.bootstrap = b->bootstrap();
  auto a = admin::connect(ac);
  REQUIRE(a.has_value());
  REQUIRE((*a)->create_topic("g1", 3).has_value());
  produce(b->bootstrap(), "g1", 300);
  {
    auto c = consumer::connect(group_config(b->bootstrap(), "readers"));
    REQUIRE(c.has_value());
    REQUIRE((*c)->subscribe({"g1"}).has_value());
    CHECK(read_values(**c, 300).size() == 300);
    CHECK((*c)->assignment().size() == 3);
    REQUIRE((*c)->commit_sync().has_value());
    std::int64_t total = 0;
    for (int p = 0; p < 3; ++p) {
      auto committed = (*c)->committed({"g1", p});
      REQUIRE(committed.has_value());
      REQUIRE(committed->has_value());
      total += (*committed)->offset;
    }
    CHECK(total == 300);
    REQUIRE((*c)->close().has_value());
  }
  produce(b->bootstrap(), "g1", 30, 1000);
  auto c2 = consumer::connect(group_config(b->bootstrap(), "readers"));
  REQUIRE(c2.has_value());
  REQUIRE((*c2)->subscribe({"g1"}).has_value());
  auto got = read_values(**c2, 30);
  CHECK(got.size() == 30);
  CHECK(got.contains("v1000"));
  CHECK_FALSE(got.contains("v0"));  // committed before: not read again
}
