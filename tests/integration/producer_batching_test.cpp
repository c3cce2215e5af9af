// How the producer forms batches while a partition's previous batch is in
// flight, against the embedded broker with its responses delayed (so "in
// flight" lasts long enough to observe). The batches are counted on disk.

#include <doctest/doctest.h>

#include <atomic>
#include <future>
#include <optional>
#include <memory>
#include <thread>
#include <vector>

#include "runnel/admin.h"
#include "runnel/producer.h"
#include "runnel/testing/embedded_broker.h"
#include "tests/support/eventually.h"
#include "tests/support/log_files.h"

using namespace runnel;

namespace {

std::unique_ptr<testing::EmbeddedBroker> broker_with_topic(const std::string& topic,
                                                           std::int32_t partitions) {
  auto b = testing::EmbeddedBroker::start();
  REQUIRE(b.has_value());
  admin_config ac;
  ac.bootstrap = (*b)->bootstrap();
  auto a = admin::connect(ac);
  REQUIRE(a.has_value());
  REQUIRE((*a)->create_topic(topic, partitions).has_value());
  return std::move(*b);
}

std::unique_ptr<producer> producer_with_linger_0(const testing::EmbeddedBroker& b) {
  producer_config pc;
  pc.bootstrap = b.bootstrap();
  pc.acks = -1;
  pc.linger = std::chrono::milliseconds(0);
  auto p = producer::connect(pc);
  REQUIRE(p.has_value());
  return std::move(*p);
}

}  // namespace

TEST_CASE(
    "producer: records sent while their partition's batch is in flight share one batch (linger "
    "0)") {
  auto b = broker_with_topic("inflight", 1);
  auto p = producer_with_linger_0(*b);
  REQUIRE(
      p->send_to("inflight", 0, std::nullopt, "warm").get().has_value());  // metadata and connection are ready

  b->delay_responses(std::chrono::milliseconds(400));
  std::vector<std::future<result<delivery>>> acks;
  acks.push_back(p->send_to("inflight", 0, std::nullopt, "first"));  // goes at once, answered 400 ms later
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  for (int i = 0; i < 20; ++i) {  // one by one, each while "first" is in flight
    acks.push_back(p->send_to("inflight", 0, std::nullopt, "r" + std::to_string(i)));
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  for (auto& f : acks) REQUIRE(f.get().has_value());
  b->delay_responses(std::chrono::milliseconds(0));

  // "warm", "first", then the 20 records together. Sealing each record as
  // its own batch (the old behaviour) made 20 batches, one per round trip.
  auto batches = testing::batches_on_disk(b->data_dir() / "data" / "inflight-0");
  REQUIRE(batches.size() >= 3);
  CHECK(batches.size() <= 4);  // "first" may leave a moment after the next record arrives
  CHECK(batches.back().record_count >= 19);
}

TEST_CASE("producer: keyless records move to a partition with nothing in flight") {
  auto b = broker_with_topic("sticky", 2);
  auto p = producer_with_linger_0(*b);
  REQUIRE(p->send("sticky", std::nullopt, "warm").get().has_value());

  b->delay_responses(std::chrono::milliseconds(200));
  // Five rounds: a random choice would put both records of a round on the
  // same partition in about half of them.
  for (int round = 0; round < 5; ++round) {
    auto first = p->send("sticky", std::nullopt, "a");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // "a" is in flight
    auto second = p->send("sticky", std::nullopt, "b");
    auto ra = first.get();
    auto rb = second.get();
    REQUIRE(ra.has_value());
    REQUIRE(rb.has_value());
    CHECK_MESSAGE(ra->partition != rb->partition, "round " << round);
  }
  b->delay_responses(std::chrono::milliseconds(0));
}

TEST_CASE("producer: buffer.memory bounds what send() holds: past it send() waits max.block.ms, fails that record, and the rest are delivered") {
  auto b = broker_with_topic("bounded", 1);
  producer_config pc;
  pc.bootstrap = b->bootstrap();
  pc.acks = 1;
  pc.linger = std::chrono::milliseconds(0);
  pc.buffer_memory = 64 * 1024;
  pc.max_block = std::chrono::milliseconds(300);
  auto p = producer::connect(pc);
  REQUIRE(p.has_value());
  REQUIRE((*p)->send_to("bounded", 0, std::nullopt, "warm").get().has_value());

  b->delay_responses(std::chrono::milliseconds(3000));  // nothing completes for a while
  const std::string value(1000, 'v');
  std::atomic<int> delivered{0};
  std::optional<error> refused;
  std::chrono::steady_clock::duration blocked{};
  int accepted = 0;
  for (int i = 0; i < 200 && !refused; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    bool failed_at_once = false;  // a refusal's callback runs inside send()
    (*p)->send_to("bounded", 0, std::nullopt, value, {}, [&](const result<delivery>& r) {
      if (r) {
        ++delivered;
      } else if (!refused) {
        refused = r.error();
        failed_at_once = true;
      }
    });
    if (failed_at_once) {
      blocked = std::chrono::steady_clock::now() - t0;
    } else {
      ++accepted;
    }
  }
  REQUIRE(refused.has_value());
  CHECK(refused->code == make_error_code(errc::timed_out));
  CHECK(refused->message.find("buffer.memory") != std::string::npos);
  CHECK(blocked >= std::chrono::milliseconds(250));  // it waited max.block.ms for space
  CHECK(accepted >= 40);                               // ~64 KiB of 1 KB records were taken
  CHECK(accepted <= 66);
  b->delay_responses(std::chrono::milliseconds(0));
  REQUIRE((*p)->flush(std::chrono::seconds(20)).has_value());
  CHECK(delivered.load() == accepted);  // everything it took was delivered
}

TEST_CASE("producer: send() to a topic it has no metadata for waits at most max.block.ms for the lookup") {
  auto b = broker_with_topic("known", 1);
  {
    admin_config ac;
    ac.bootstrap = b->bootstrap();
    auto a = admin::connect(ac);
    REQUIRE(a.has_value());
    REQUIRE((*a)->create_topic("new", 1).has_value());
  }
  producer_config pc;
  pc.bootstrap = b->bootstrap();
  pc.acks = 1;
  pc.max_block = std::chrono::milliseconds(300);
  pc.request_timeout = std::chrono::seconds(20);
  auto p = producer::connect(pc);
  REQUIRE(p.has_value());
  REQUIRE((*p)->send_to("known", 0, std::nullopt, "warm").get().has_value());

  b->delay_responses(std::chrono::milliseconds(3000));  // Metadata for "new" is answered late
  std::optional<error> refused;
  const auto t0 = std::chrono::steady_clock::now();
  (*p)->send("new", std::nullopt, "v", {}, [&](const result<delivery>& r) {
    if (!r) refused = r.error();
  });
  const auto blocked = std::chrono::steady_clock::now() - t0;
  MESSAGE("send() to an unknown topic returned after "
          << std::chrono::duration_cast<std::chrono::milliseconds>(blocked).count() << " ms");
  CHECK(blocked < std::chrono::milliseconds(1500));  // max.block.ms, not the 3 s answer
  REQUIRE(refused.has_value());
  CHECK(refused->code == make_error_code(errc::timed_out));
  CHECK(refused->message.find("Metadata") != std::string::npos);
  // The answer still arrives and fills the cache: the topic works afterwards.
  b->delay_responses(std::chrono::milliseconds(0));
  CHECK(runnel::testing::eventually([&] { return (*p)->send("new", std::nullopt, "v2").get().has_value(); },
                                     std::chrono::seconds(10)));
}
