// The message-id window (dedup.window.ms) through the SDK, runnelctl and
// real brokers: repeats dropped and answered with the first copy's offset,
// across producers, a kill -9 restart and a leader failover; accepted again
// past the window; a mixed batch keeps exactly the new records in order.

#include <doctest/doctest.h>

#include <thread>

#include "runnel/admin.h"
#include "runnel/consumer.h"
#include "runnel/producer.h"
#include "tests/integration/cluster_harness.h"
#include "tests/support/broker_process.h"
#include "tests/support/eventually.h"
#include "tests/support/temp_dir.h"

using namespace runnel;
using runnel::testing::broker_process;

namespace {

void create_topic(const std::string& bootstrap, const std::string& topic, const std::string& window_ms, int replicas = 1,
                  std::map<std::string, std::string> extra = {}) {
  admin_config ac;
  ac.bootstrap = bootstrap;
  ac.timeout = std::chrono::seconds(10);
  auto a = admin::connect(ac);
  REQUIRE(a.has_value());
  extra["dedup.window.ms"] = window_ms;
  auto r = (*a)->create_topic(topic, 1, static_cast<std::int16_t>(replicas), extra);
  REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().what()));
}

std::unique_ptr<producer> connect_producer(const std::string& bootstrap, std::chrono::milliseconds linger = std::chrono::milliseconds(0)) {
  producer_config pc;
  pc.bootstrap = bootstrap;
  pc.acks = -1;
  pc.linger = linger;
  pc.request_timeout = std::chrono::seconds(5);
  auto p = producer::connect(pc);
  REQUIRE(p.has_value());
  return std::move(*p);
}

delivery send_id(producer& p, const std::string& topic, const std::string& id, const std::string& value) {
  auto r = p.send_with_id(topic, std::nullopt, value, id).get();
  if (!r) FAIL("send " << id << ": " << r.error().what());
  return *r;
}

// The values in partition 0 of `topic`, in offset order.
std::vector<std::string> values_of(const std::string& bootstrap, const std::string& topic) {
  auto stored = runnel::testing::read_partitions(bootstrap, topic, 1);  // named: a range-for over [0] of a temporary dangles
  std::vector<std::string> out;
  for (const auto& [off, v] : stored[0]) out.push_back(v);
  return out;
}

}  // namespace

TEST_CASE("msg-id window: a repeat within the window is dropped with the first copy's offset, across producers and a kill -9 restart") {
  runnel::testing::temp_dir dir;
  auto broker = std::make_unique<broker_process>(dir / "data");
  const std::vector<std::string> same_port{"--listen", "127.0.0.1:" + std::to_string(broker->port())};
  create_topic(broker->bootstrap(), "orders", "600000");
  {
    auto p = connect_producer(broker->bootstrap());
    auto a = send_id(*p, "orders", "order-1", "first");
    CHECK_FALSE(a.duplicate);
    auto again = send_id(*p, "orders", "order-1", "second");
    CHECK(again.duplicate);
    CHECK(again.offset == a.offset);
    CHECK_FALSE(send_id(*p, "orders", "order-2", "third").duplicate);
  }
  {
    auto other = connect_producer(broker->bootstrap());  // another producer: the same window
    CHECK(send_id(*other, "orders", "order-2", "again").duplicate);
  }
  broker->kill9();
  broker = std::make_unique<broker_process>(dir / "data", same_port);
  auto p = connect_producer(broker->bootstrap());
  auto after = send_id(*p, "orders", "order-1", "after restart");
  CHECK(after.duplicate);
  CHECK(after.offset == 0);
  CHECK(values_of(broker->bootstrap(), "orders") == std::vector<std::string>{"first", "third"});
}

TEST_CASE("msg-id window: a batch mixing new and repeated ids keeps exactly the new ones, in order") {
  runnel::testing::temp_dir dir;
  broker_process broker(dir / "data");
  create_topic(broker.bootstrap(), "mixed", "600000");
  auto p = connect_producer(broker.bootstrap());
  send_id(*p, "mixed", "b", "b1");
  auto batcher = connect_producer(broker.bootstrap(), std::chrono::milliseconds(100));  // one batch
  std::vector<std::future<result<delivery>>> sent;
  for (const auto* id : {"a", "b", "c", "a", "d"}) {
    sent.push_back(batcher->send_with_id("mixed", std::nullopt, std::string(id) + "2", id));
  }
  std::vector<delivery> got;
  for (auto& f : sent) {
    auto r = f.get();
    REQUIRE(r.has_value());
    got.push_back(*r);
  }
  CHECK_FALSE(got[0].duplicate);
  CHECK(got[1].duplicate);
  CHECK(got[1].offset == 0);
  CHECK_FALSE(got[2].duplicate);
  CHECK(got[3].duplicate);
  CHECK(got[3].offset == got[0].offset);
  CHECK_FALSE(got[4].duplicate);
  CHECK(values_of(broker.bootstrap(), "mixed") == std::vector<std::string>{"b1", "a2", "c2", "d2"});
}

TEST_CASE("msg-id window: past the window an id is accepted again, an id over 256 bytes is refused and the broker keeps serving") {
  runnel::testing::temp_dir dir;
  broker_process broker(dir / "data");
  create_topic(broker.bootstrap(), "short", "500");
  auto p = connect_producer(broker.bootstrap());
  send_id(*p, "short", "x", "1");
  CHECK(send_id(*p, "short", "x", "2").duplicate);
  std::this_thread::sleep_for(std::chrono::milliseconds(700));
  CHECK_FALSE(send_id(*p, "short", "x", "3").duplicate);
  auto too_long = p->send_with_id("short", std::nullopt, "4", std::string(257, 'i')).get();
  REQUIRE_FALSE(too_long.has_value());
  CHECK(too_long.error().code == errc::invalid_record);
  CHECK_FALSE(send_id(*p, "short", std::string(256, 'i'), "5").duplicate);
  CHECK(values_of(broker.bootstrap(), "short") == std::vector<std::string>{"1", "3", "5"});
}

TEST_CASE("msg-id window: runnelctl produce --msg-id-from-key twice writes each key once") {
  runnel::testing::temp_dir dir;
  broker_process broker(dir / "data");
  create_topic(broker.bootstrap(), "ctl", "600000");
  const std::string input = "k1:a\nk2:b\nk1:c\n";
  const std::vector<std::string> argv{RUNNELCTL_BIN, "--bootstrap", broker.bootstrap(), "produce", "ctl",
                                      "--key-separator", ":", "--acks", "all", "--msg-id-from-key"};
  auto first = runnel::testing::run_command(argv, input);
  CHECK(first.exit_code == 0);
  CHECK(first.err.find("produced 2 records to ctl (1 more were repeats") != std::string::npos);
  auto second = runnel::testing::run_command(argv, input);
  CHECK(second.exit_code == 0);
  CHECK(second.err.find("produced 0 records to ctl (3 more were repeats") != std::string::npos);
  CHECK(values_of(broker.bootstrap(), "ctl") == std::vector<std::string>{"a", "b"});
  auto bad = runnel::testing::run_command({RUNNELCTL_BIN, "--bootstrap", broker.bootstrap(), "produce", "ctl", "--msg-id-from-key"});
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("--msg-id-from-key needs --key-separator") != std::string::npos);
}

TEST_CASE("msg-id window: after a leader failover the new leader still drops the repeats") {
  runnel::testing::cluster_harness c(3);
  REQUIRE(runnel::testing::eventually(
      [&] {
        auto info = c.cluster();
        return info && info->brokers.size() == 3;
      },
      std::chrono::seconds(20)));
  create_topic(c.bootstrap(), "fo", "600000", 3, {{"min.insync.replicas", "2"}});
  auto p = connect_producer(c.bootstrap());
  auto first = send_id(*p, "fo", "pay-7", "once");
  auto t = c.describe("fo");
  REQUIRE(t.has_value());
  const std::int32_t old = t->partitions[0].leader;
  REQUIRE(old > 0);
  c.kill9(old);
  auto moved = c.wait_for("fo", [&](const topic_info& i) { return i.partitions[0].leader > 0 && i.partitions[0].leader != old; },
                          std::chrono::seconds(15));
  REQUIRE(moved.has_value());
  auto again = send_id(*p, "fo", "pay-7", "twice");
  CHECK(again.duplicate);
  CHECK(again.offset == first.offset);
  CHECK(values_of(c.bootstrap(), "fo") == std::vector<std::string>{"once"});
}
