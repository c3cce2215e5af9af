// The idempotent producer against real brokers: retries whose first
// attempt landed write nothing twice (and do without idempotence: the
// negative control), the wire errors of the sequence rules, and producer
// state and ids across restarts (kill -9 and SIGTERM).

#include <doctest/doctest.h>

#include <filesystem>
#include <set>
#include <thread>

#include "runnel/admin.h"
#include "runnel/consumer.h"
#include "runnel/producer.h"
#include "runnel/testing/embedded_broker.h"
#include "schemas/batch.h"
#include "tests/integration/cluster_harness.h"
#include "tests/support/batches.h"
#include "tests/support/broker_process.h"
#include "tests/support/raw_client.h"
#include "tests/support/temp_dir.h"

using namespace runnel;
using runnel::testing::broker_process;
using runnel::testing::raw_client;

namespace {

void create_topic(const std::string& bootstrap, const std::string& topic, int partitions = 1) {
  admin_config ac;
  ac.bootstrap = bootstrap;
  auto a = admin::connect(ac);
  REQUIRE(a.has_value());
  REQUIRE((*a)->create_topic(topic, partitions, 1).has_value());
}

// The values in partition 0 of `topic`, in offset order.
std::vector<std::string> values_of(const std::string& bootstrap, const std::string& topic) {
  auto stored = runnel::testing::read_partitions(bootstrap, topic, 1);  // named: a range-for over [0] of a temporary dangles
  std::vector<std::string> out;
  for (const auto& [off, v] : stored[0]) out.push_back(v);
  return out;
}

std::pair<std::int64_t, std::int16_t> init_producer_id(raw_client& rc, std::uint32_t correlation) {
  flatbuffers::FlatBufferBuilder fbb;
  auto body = wire::CreateInitProducerIdRequest(fbb);
  rc.send(testing::request_frame(fbb, wire::Request::InitProducerIdRequest, body.Union(), {}, 1, correlation));
  auto r = rc.read();
  REQUIRE(r.has_value());
  const auto* resp = r->envelope().body_as_InitProducerIdResponse();
  REQUIRE(resp != nullptr);
  REQUIRE(resp->error() == wire::ErrorCode::NONE);
  return {resp->producer_id(), resp->producer_epoch()};
}

struct produced {
  wire::ErrorCode error = wire::ErrorCode::NONE;
  std::int64_t base_offset = -1;
};

// One idempotent batch of `records` through a raw Produce (acks=all).
produced produce_raw(raw_client& rc, const std::string& topic, std::int64_t pid, std::int16_t epoch, std::int32_t seq,
                     int records = 1) {
  auto batch = testing::make_batch(records, 16, timestamp_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                                 std::chrono::system_clock::now().time_since_epoch())
                                                                 .count()));
  schemas::stamp_producer(batch, producer_id(pid), epoch, seq);
  rc.send(testing::produce_frame(topic, 0, batch, -1));
  auto r = rc.read();
  REQUIRE(r.has_value());
  const auto* resp = r->envelope().body_as_ProduceResponse();
  REQUIRE(resp != nullptr);
  const auto* p = resp->topics()->Get(0)->partitions()->Get(0);
  return {p->error(), p->base_offset()};
}

// One record, then ten to partition 0 as one batch whose first answer comes after
// the request timeout: the producer drops the connection and sends the
// batch again, though the first attempt was written.
std::vector<result<delivery>> send_with_a_lost_answer(testing::EmbeddedBroker& b, const std::string& topic,
                                                      std::optional<bool> idempotence) {
  producer_config pc;
  pc.bootstrap = b.bootstrap();
  pc.acks = -1;
  pc.enable_idempotence = idempotence;
  pc.request_timeout = std::chrono::milliseconds(500);
  pc.delivery_timeout = std::chrono::milliseconds(20'000);
  pc.linger = std::chrono::milliseconds(50);
  auto p = producer::connect(pc);
  REQUIRE(p.has_value());
  REQUIRE((*p)->send_to(topic, 0, std::nullopt, "first").get().has_value());  // metadata known, offset 0
  b.delay_responses(std::chrono::milliseconds(1500));
  std::vector<std::future<result<delivery>>> sent;
  for (int i = 0; i < 10; ++i) sent.push_back((*p)->send_to(topic, 0, std::nullopt, "v" + std::to_string(i)));
  std::this_thread::sleep_for(std::chrono::milliseconds(900));  // the first attempt timed out
  b.delay_responses(std::chrono::milliseconds(0));
  std::vector<result<delivery>> out;
  for (auto& f : sent) out.push_back(f.get());
  return out;
}

}  // namespace

TEST_CASE("idempotence: a retried batch whose first attempt landed is written once, and again without idempotence") {
  auto broker = testing::EmbeddedBroker::start();
  REQUIRE(broker.has_value());
  auto& b = **broker;
  create_topic(b.bootstrap(), "idem");
  create_topic(b.bootstrap(), "plain");

  auto acked = send_with_a_lost_answer(b, "idem", std::nullopt);  // on by default with acks=all
  for (std::size_t i = 0; i < acked.size(); ++i) {
    if (!acked[i]) FAIL("record " << i << ": " << acked[i].error().what());
    CHECK(acked[i]->offset == static_cast<std::int64_t>(i) + 1);  // the first copy's offsets
  }
  auto values = values_of(b.bootstrap(), "idem");
  CHECK(values.size() == 11);
  CHECK(std::set<std::string>(values.begin(), values.end()).size() == 11);

  // The negative control: the same run without idempotence writes the
  // batch again on every retry, so the scenario does provoke retries of a
  // landed batch.
  auto plain = send_with_a_lost_answer(b, "plain", false);
  for (const auto& r : plain) REQUIRE(r.has_value());
  CHECK(values_of(b.bootstrap(), "plain").size() > 11);  // one copy per attempt that timed out
}

TEST_CASE("idempotence: a gap, an older epoch and an unknown producer answer their codes, and the broker keeps serving") {
  auto broker = testing::EmbeddedBroker::start();
  REQUIRE(broker.has_value());
  create_topic((*broker)->bootstrap(), "rules");
  raw_client rc((*broker)->port());
  auto [pid, epoch] = init_producer_id(rc, 1);
  CHECK(epoch == 0);
  auto first = produce_raw(rc, "rules", pid, 0, 0, 3);
  CHECK(first.error == wire::ErrorCode::NONE);
  CHECK(produce_raw(rc, "rules", pid, 0, 7).error == wire::ErrorCode::OUT_OF_ORDER_SEQUENCE);
  auto retry = produce_raw(rc, "rules", pid, 0, 0, 3);
  CHECK(retry.error == wire::ErrorCode::NONE);
  CHECK(retry.base_offset == first.base_offset);
  CHECK(produce_raw(rc, "rules", pid, 1, 0).error == wire::ErrorCode::NONE);  // a new epoch (a bump)
  CHECK(produce_raw(rc, "rules", pid, 0, 3).error == wire::ErrorCode::PRODUCER_FENCED);  // the zombie
  CHECK(produce_raw(rc, "rules", pid + 500, 0, 4).error == wire::ErrorCode::UNKNOWN_PRODUCER_ID);
  CHECK(produce_raw(rc, "rules", pid, 1, 1).error == wire::ErrorCode::NONE);
  CHECK(values_of((*broker)->bootstrap(), "rules").size() == 5);  // 3 + 1 + 1: refusals wrote nothing
}

TEST_CASE("idempotence: ids stay unique and retries stay duplicates across kill -9 and SIGTERM restarts") {
  runnel::testing::temp_dir dir;
  auto broker = std::make_unique<broker_process>(dir / "data");
  const std::string port = std::to_string(broker->port());
  const std::vector<std::string> same_port{"--listen", "127.0.0.1:" + port};
  create_topic(broker->bootstrap(), "restart");
  std::set<std::int64_t> ids;
  std::int64_t pid = -1;
  produced first;
  {
    raw_client rc(broker->port());
    pid = init_producer_id(rc, 1).first;
    ids.insert(pid);
    ids.insert(init_producer_id(rc, 2).first);
    first = produce_raw(rc, "restart", pid, 0, 0, 2);
    REQUIRE(first.error == wire::ErrorCode::NONE);
  }
  CHECK(ids.size() == 2);
  for (int round = 0; round < 2; ++round) {
    if (round == 0) {
      broker->kill9();
    } else {
      REQUIRE(broker->stop() == 0);
    }
    broker = std::make_unique<broker_process>(dir / "data", same_port);
    raw_client rc(broker->port());
    ids.insert(init_producer_id(rc, 1).first);
    auto retry = produce_raw(rc, "restart", pid, 0, 0, 2);
    CHECK(retry.error == wire::ErrorCode::NONE);
    CHECK(retry.base_offset == first.base_offset);
    CHECK(produce_raw(rc, "restart", pid, 0, 5).error == wire::ErrorCode::OUT_OF_ORDER_SEQUENCE);
  }
  CHECK(ids.size() == 4);  // no id handed out twice
  CHECK(values_of(broker->bootstrap(), "restart").size() == 2);
}

TEST_CASE("idempotence: enable_idempotence with acks other than all is a configuration error") {
  auto broker = testing::EmbeddedBroker::start();
  REQUIRE(broker.has_value());
  producer_config pc;
  pc.bootstrap = (*broker)->bootstrap();
  pc.acks = 1;
  pc.enable_idempotence = true;
  auto p = producer::connect(pc);
  REQUIRE_FALSE(p.has_value());
  CHECK(p.error().code == errc::invalid_argument);
  pc.enable_idempotence.reset();  // unset: off with acks=1
  CHECK(producer::connect(pc).has_value());
}

TEST_CASE("idempotence: a producer the partition forgot (producer.id.expiration.ms) bumps its epoch and delivers") {
  testing::embedded_broker_options o;
  o.config["producer.id.expiration.ms"] = "300";
  auto broker = testing::EmbeddedBroker::start(o);
  REQUIRE(broker.has_value());
  create_topic((*broker)->bootstrap(), "expire");
  producer_config pc;
  pc.bootstrap = (*broker)->bootstrap();
  pc.acks = -1;
  auto p = producer::connect(pc);
  REQUIRE(p.has_value());
  auto a = (*p)->send_to("expire", 0, std::nullopt, "a").get();
  REQUIRE(a.has_value());
  std::this_thread::sleep_for(std::chrono::milliseconds(600));  // past the expiration
  auto b = (*p)->send_to("expire", 0, std::nullopt, "b").get();  // sequence 1: UNKNOWN_PRODUCER_ID, then epoch 1
  REQUIRE_MESSAGE(b.has_value(), (b ? "" : b.error().what()));
  CHECK(b->offset == a->offset + 1);
  CHECK(values_of((*broker)->bootstrap(), "expire") == std::vector<std::string>{"a", "b"});

  // The same partition without the SDK's recovery: the raw answer.
  raw_client rc((*broker)->port());
  auto [pid, epoch] = init_producer_id(rc, 1);
  REQUIRE(produce_raw(rc, "expire", pid, epoch, 0).error == wire::ErrorCode::NONE);
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  CHECK(produce_raw(rc, "expire", pid, epoch, 1).error == wire::ErrorCode::UNKNOWN_PRODUCER_ID);
}

namespace {

struct small_batches_run {
  std::vector<result<delivery>> acked;
  std::chrono::milliseconds took{0};
};

// A record "warm" (metadata and producer id while answers are quick), then
// 150 records of ~100 B to partition 0 in batches of ~1 KiB (about 17)
// while every answer waits `delay`; `heal_after` > 0 turns the delay off
// after that long. `took` counts from the first of the 150.
small_batches_run send_small_batches(testing::EmbeddedBroker& b, const std::string& topic, std::optional<bool> idempotence,
                                     std::chrono::milliseconds request_timeout, std::chrono::milliseconds delay,
                                     std::chrono::milliseconds heal_after = std::chrono::milliseconds(0)) {
  producer_config pc;
  pc.bootstrap = b.bootstrap();
  pc.acks = -1;
  pc.enable_idempotence = idempotence;
  pc.max_in_flight_per_partition = idempotence.value_or(true) ? 5 : 1;
  pc.batch_bytes = 1024;
  pc.linger = std::chrono::milliseconds(0);
  pc.request_timeout = request_timeout;
  pc.delivery_timeout = std::chrono::milliseconds(30'000);
  auto p = producer::connect(pc);
  REQUIRE(p.has_value());
  REQUIRE((*p)->send_to(topic, 0, std::nullopt, "warm").get().has_value());
  b.delay_responses(delay);
  std::thread heal;
  if (heal_after.count() > 0) {
    heal = std::thread([&b, heal_after] {
      std::this_thread::sleep_for(heal_after);
      b.delay_responses(std::chrono::milliseconds(0));
    });
  }
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<std::future<result<delivery>>> sent;
  for (int i = 0; i < 150; ++i) {
    char v[8];
    std::snprintf(v, sizeof v, "%03d", i);
    sent.push_back((*p)->send_to(topic, 0, std::nullopt, std::string(v) + std::string(96, 'x')));
  }
  small_batches_run out;
  for (auto& f : sent) out.acked.push_back(f.get());
  out.took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  if (heal.joinable()) heal.join();
  b.delay_responses(std::chrono::milliseconds(0));
  return out;
}

// "warm", then "000".."149" once each, in order.
bool in_order_once(const std::vector<std::string>& values) {
  if (values.size() != 151 || values[0] != "warm") return false;
  for (int i = 0; i < 150; ++i) {
    char v[8];
    std::snprintf(v, sizeof v, "%03d", i);
    if (values[static_cast<std::size_t>(i) + 1].substr(0, 3) != v) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("idempotence: up to 5 batches of a partition are on the wire at once (1 without idempotence)") {
  auto broker = testing::EmbeddedBroker::start();
  REQUIRE(broker.has_value());
  auto& b = **broker;
  create_topic(b.bootstrap(), "pipe");
  create_topic(b.bootstrap(), "serial");
  const auto delay = std::chrono::milliseconds(150);
  auto pipelined = send_small_batches(b, "pipe", std::nullopt, std::chrono::seconds(10), delay);
  auto serial = send_small_batches(b, "serial", false, std::chrono::seconds(10), delay);
  for (const auto& r : pipelined.acked) REQUIRE(r.has_value());
  for (const auto& r : serial.acked) REQUIRE(r.has_value());
  MESSAGE("~17 batches, 150 ms per answer: " << pipelined.took.count() << " ms pipelined, " << serial.took.count()
                                              << " ms one at a time");
  CHECK(serial.took >= std::chrono::milliseconds(1500));  // the negative control: one answer at a time
  CHECK(pipelined.took * 2 < serial.took);
  CHECK(in_order_once(values_of(b.bootstrap(), "pipe")));
  CHECK(in_order_once(values_of(b.bootstrap(), "serial")));
}

TEST_CASE("idempotence: batches on the wire together whose answers are lost land once each, in order") {
  auto broker = testing::EmbeddedBroker::start();
  REQUIRE(broker.has_value());
  auto& b = **broker;
  create_topic(b.bootstrap(), "lost");
  // Every first attempt times out (answers take 1.2 s, the timeout is
  // 0.5 s) and was written; the retries find their batches in the log.
  auto run = send_small_batches(b, "lost", std::nullopt, std::chrono::milliseconds(500), std::chrono::milliseconds(1200),
                                std::chrono::milliseconds(1500));
  for (std::size_t i = 0; i < run.acked.size(); ++i) {
    if (!run.acked[i]) FAIL("record " << i << ": " << run.acked[i].error().what());
    CHECK(run.acked[i]->offset == static_cast<std::int64_t>(i) + 1);
  }
  CHECK(in_order_once(values_of(b.bootstrap(), "lost")));
}

TEST_CASE("idempotence: ids that cannot be reserved durably answer STORAGE_ERROR, and connect says so in one error") {
  auto broker = testing::EmbeddedBroker::start();
  REQUIRE(broker.has_value());
  // Where the reservation file goes, a directory: the atomic rename fails.
  std::filesystem::create_directories((*broker)->data_dir() / "data" / "producer-ids" / "in-the-way");
  raw_client rc((*broker)->port());
  flatbuffers::FlatBufferBuilder fbb;
  auto body = wire::CreateInitProducerIdRequest(fbb);
  rc.send(testing::request_frame(fbb, wire::Request::InitProducerIdRequest, body.Union()));
  auto r = rc.read();
  REQUIRE(r.has_value());
  const auto* resp = r->envelope().body_as_InitProducerIdResponse();
  REQUIRE(resp != nullptr);
  CHECK(resp->error() == wire::ErrorCode::STORAGE_ERROR);
  CHECK(resp->producer_id() == -1);
  producer_config pc;
  pc.bootstrap = (*broker)->bootstrap();
  pc.acks = -1;
  auto p = producer::connect(pc);
  REQUIRE_FALSE(p.has_value());
  CHECK(p.error().code == errc::storage_error);
  // The broker keeps serving: a producer without idempotence works.
  pc.enable_idempotence = false;
  create_topic((*broker)->bootstrap(), "still");
  auto plain = producer::connect(pc);
  REQUIRE(plain.has_value());
  CHECK((*plain)->send_to("still", 0, std::nullopt, "x").get().has_value());
}
