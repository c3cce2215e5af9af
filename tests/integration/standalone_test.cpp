// End-to-end tests against a real runnel-broker process (2 shards) through
// the C++ SDK.

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>
#include <set>

#include "runnel/admin.h"
#include "runnel/consumer.h"
#include "runnel/producer.h"
#include "schemas/partitioner.h"
#include "tests/support/batches.h"
#include "tests/support/broker_process.h"
#include "tests/support/temp_dir.h"

using namespace runnel;
using runnel::testing::broker_process;
using runnel::testing::temp_dir;

namespace {

std::unique_ptr<admin> admin_for(const broker_process& b) {
  admin_config c;
  c.bootstrap = b.bootstrap();
  auto a = admin::connect(c);
  REQUIRE(a.has_value());
  return std::move(*a);
}

std::unique_ptr<producer> producer_for(const broker_process& b, int acks = -1) {
  producer_config c;
  c.bootstrap = b.bootstrap();
  c.acks = acks;
  c.linger = std::chrono::milliseconds(2);
  auto p = producer::connect(c);
  REQUIRE(p.has_value());
  return std::move(*p);
}

std::unique_ptr<consumer> consumer_for(const broker_process& b) {
  consumer_config c;
  c.bootstrap = b.bootstrap();
  c.fetch_max_wait = std::chrono::milliseconds(100);
  auto k = consumer::connect(c);
  REQUIRE(k.has_value());
  return std::move(*k);
}

struct seen_record {
  std::int32_t partition;
  std::int64_t offset;
  std::string key, value;
};

// Reads every record of `topic` (all partitions) until `count` arrived (bounded: 30 s).
std::vector<seen_record> read_all(const broker_process& b, const std::string& topic, std::int32_t partitions,
                                  std::size_t count) {
  auto c = consumer_for(b);
  std::vector<topic_partition_ref> parts;
  for (std::int32_t p = 0; p < partitions; ++p) parts.push_back({topic, p});
  REQUIRE(c->assign(parts).has_value());
  std::vector<seen_record> out;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (out.size() < count && std::chrono::steady_clock::now() < deadline) {
    auto recs = c->poll(std::chrono::milliseconds(200));
    REQUIRE(recs.has_value());
    for (const auto& r : *recs) {
      out.push_back({r.partition, r.offset, std::string(r.key.value_or("")), std::string(r.value.value_or(""))});
    }
  }
  return out;
}

// Produces `n` keyed records with acks=all; returns (key -> partition, offset).
std::map<std::string, delivery> produce_keyed(producer& p, const std::string& topic, int n, const std::string& prefix) {
  std::vector<std::pair<std::string, std::future<result<delivery>>>> futures;
  for (int i = 0; i < n; ++i) {
    auto key = prefix + std::to_string(i);
    futures.emplace_back(key, p.send(topic, key, "value-" + key));
  }
  std::map<std::string, delivery> acked;
  for (auto& [key, f] : futures) {
    auto r = f.get();
    if (!r) FAIL(key << ": " << r.error().what());
    acked[key] = *r;
  }
  return acked;
}

}  // namespace

TEST_CASE("standalone: keyed records round-trip across partitions and shards, in order") {
  temp_dir dir;
  broker_process b(dir / "data");
  auto a = admin_for(b);
  REQUIRE(a->create_topic("orders", 8).has_value());
  auto p = producer_for(b);
  auto acked = produce_keyed(*p, "orders", 2000, "k");
  for (const auto& [key, d] : acked) {
    // Kafka's partitioner: the same key lands where the Java client puts it.
    CHECK(d.partition == schemas::partition_for_key(std::as_bytes(std::span(key.data(), key.size())), 8));
    CHECK(d.fsynced);
  }
  auto got = read_all(b, "orders", 8, acked.size());
  REQUIRE(got.size() == acked.size());
  std::map<std::int32_t, std::int64_t> last;
  std::set<std::string> keys;
  for (const auto& r : got) {
    CHECK(r.value == "value-" + r.key);
    auto it = acked.find(r.key);
    REQUIRE(it != acked.end());
    CHECK(it->second.partition == r.partition);
    CHECK(it->second.offset == r.offset);
    if (last.contains(r.partition)) CHECK(r.offset == last[r.partition] + 1);  // dense, in order
    last[r.partition] = r.offset;
    keys.insert(r.key);
  }
  CHECK(keys.size() == acked.size());
  CHECK(last.size() == 8);  // every partition got records
}

TEST_CASE("standalone: a clean restart keeps every acknowledged record and the topics") {
  temp_dir dir;
  std::map<std::string, delivery> acked;
  {
    broker_process b(dir / "data");
    REQUIRE(admin_for(b)->create_topic("keep", 4, 1, {{"retention.ms", "86400000"}}).has_value());
    auto p = producer_for(b, 1);
    acked = produce_keyed(*p, "keep", 500, "r");
    p->close();
    CHECK(b.stop() == 0);
  }
  broker_process b(dir / "data");
  auto cfg = admin_for(b)->describe_configs("keep");
  REQUIRE(cfg.has_value());
  CHECK(cfg->at("retention.ms").value == "86400000");
  CHECK_FALSE(cfg->at("retention.ms").is_default);
  auto got = read_all(b, "keep", 4, acked.size());
  CHECK(got.size() == acked.size());
}

TEST_CASE("standalone: kill -9 loses no acks=all record") {
  temp_dir dir;
  std::map<std::string, delivery> acked;
  {
    broker_process b(dir / "data");
    REQUIRE(admin_for(b)->create_topic("durable", 3).has_value());
    auto p = producer_for(b, -1);
    acked = produce_keyed(*p, "durable", 300, "d");
    b.kill9();  // no clean shutdown: only fsynced data survives
  }
  broker_process b(dir / "data");
  auto got = read_all(b, "durable", 3, acked.size());
  std::set<std::string> keys;
  for (const auto& r : got) keys.insert(r.key);
  for (const auto& [key, d] : acked) CHECK_MESSAGE(keys.contains(key), key);
}

TEST_CASE("standalone: a waiting consumer wakes when a record arrives (long poll)") {
  temp_dir dir;
  broker_process b(dir / "data");
  REQUIRE(admin_for(b)->create_topic("poll", 1).has_value());
  consumer_config cc;
  cc.bootstrap = b.bootstrap();
  cc.fetch_max_wait = std::chrono::seconds(20);
  auto c = consumer::connect(cc);
  REQUIRE(c.has_value());
  REQUIRE((*c)->assign({{"poll", 0}}).has_value());
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    auto p = producer_for(b, 1);
    CHECK(p->send("poll", std::nullopt, "hello").get().has_value());
  });
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::string> values;
  while (values.empty() && std::chrono::steady_clock::now() - start < std::chrono::seconds(15)) {
    auto recs = (*c)->poll(std::chrono::seconds(15));
    REQUIRE(recs.has_value());
    for (const auto& r : *recs) values.emplace_back(r.value.value_or(""));
  }
  writer.join();
  REQUIRE(values.size() == 1);
  CHECK(values[0] == "hello");
  // Woken by the append, well before the 20 s long-poll deadline.
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(10));
}

TEST_CASE("standalone: list offsets and seek by timestamp") {
  temp_dir dir;
  broker_process b(dir / "data");
  auto a = admin_for(b);
  REQUIRE(a->create_topic("ts", 1).has_value());
  auto p = producer_for(b, 1);
  REQUIRE(p->send("ts", std::nullopt, "early").get().has_value());
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const auto middle = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  REQUIRE(p->send("ts", std::nullopt, "late").get().has_value());
  CHECK(a->list_offset("ts", 0, earliest_offset).value() == 0);
  CHECK(a->list_offset("ts", 0, latest_offset).value() == 2);
  CHECK(a->list_offset("ts", 0, middle).value() == 1);
  CHECK(a->list_offset("nope", 0, latest_offset).error().code == errc::unknown_topic_or_partition);
  auto c = consumer_for(b);
  REQUIRE(c->assign({{"ts", 0}}).has_value());
  REQUIRE(c->seek_to_timestamp({"ts", 0}, middle).has_value());
  CHECK(c->position({"ts", 0}) == 1);
  auto recs = c->poll(std::chrono::seconds(5));
  REQUIRE(recs.has_value());
  REQUIRE(recs->size() == 1);
  CHECK(recs->records()[0].value == "late");
}

TEST_CASE("standalone: topic admin errors and delete") {
  temp_dir dir;
  broker_process b(dir / "data");
  auto a = admin_for(b);
  REQUIRE(a->create_topic("t1", 2).has_value());
  CHECK(a->create_topic("t1", 2).error().code == errc::topic_already_exists);
  CHECK(a->create_topic("bad/name", 1).error().code == errc::invalid_topic);
  CHECK(a->create_topic("t2", 0).error().code == errc::invalid_partitions);
  CHECK(a->create_topic("t2", 1, 3).error().code == errc::invalid_replication_factor);
  CHECK(a->create_topic("t2", 1, 1, {{"retention.ms", "soon"}}).error().code == errc::invalid_config);
  CHECK(a->alter_configs("t1", {{"no.such", "1"}}).error().code == errc::invalid_config);
  REQUIRE(a->alter_configs("t1", {{"max.message.bytes", "4096"}}).has_value());
  CHECK(a->describe_configs("t1")->at("max.message.bytes").value == "4096");
  auto p = producer_for(b, 1);
  REQUIRE(p->send("t1", "k", "v").get().has_value());
  REQUIRE(a->delete_topic("t1").has_value());
  CHECK(a->delete_topic("t1").error().code == errc::unknown_topic_or_partition);
  CHECK(a->list_topics()->empty());
  CHECK_FALSE(std::filesystem::exists(dir / "data" / "t1-0"));
  CHECK_FALSE(std::filesystem::exists(dir / "data" / "t1-1"));
}

// Topic changes are written one at a time through shard 0's ring; each is
// prepared from the state the previous one left, so none is lost when many
// clients change topics at once.
TEST_CASE("standalone: topics changed concurrently from several clients are all there after a restart") {
  temp_dir dir;
  constexpr int clients = 4;
  constexpr int per_client = 12;
  // Client c's topic i: its name, partitions and retention.ms.
  auto name_of = [](int c, int i) { return "c" + std::to_string(c) + "-" + std::to_string(i); };
  auto partitions_of = [](int i) { return 1 + (i % 3); };
  auto retention_of = [&](int c, int i) { return std::to_string(3'600'000 + 1000 * (c * per_client + i)); };
  auto deleted_again = [](int i) { return i % 4 == 3; };
  std::map<std::string, std::int32_t> want_partitions;
  std::map<std::string, std::string> want_retention;
  for (int c = 0; c < clients; ++c) {
    for (int i = 0; i < per_client; ++i) {
      if (deleted_again(i)) continue;
      want_partitions[name_of(c, i)] = partitions_of(i);
      want_retention[name_of(c, i)] = retention_of(c, i);
    }
  }
  want_partitions["race"] = 2;
  {
    broker_process b(dir / "data");
    std::atomic<int> race_won{0};
    std::atomic<int> race_exists{0};
    std::atomic<int> failures{0};
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c) {
      threads.emplace_back([&, c] {
        admin_config cfg;
        cfg.bootstrap = b.bootstrap();
        auto a = admin::connect(cfg);
        if (!a) {
          ++failures;
          return;
        }
        auto r = (*a)->create_topic("race", 2);
        if (r) ++race_won;
        else if (r.error().code == errc::topic_already_exists) ++race_exists;
        for (int i = 0; i < per_client; ++i) {
          const auto name = name_of(c, i);
          if (!(*a)->create_topic(name, partitions_of(i))) ++failures;
          if (!(*a)->alter_configs(name, {{"retention.ms", retention_of(c, i)}})) ++failures;
          if (deleted_again(i) && !(*a)->delete_topic(name)) ++failures;
        }
      });
    }
    for (auto& t : threads) t.join();
    CHECK(failures.load() == 0);
    CHECK(race_won.load() == 1);
    CHECK(race_exists.load() == clients - 1);
    CHECK(b.stop() == 0);
  }
  broker_process b(dir / "data");
  auto a = admin_for(b);
  auto listed = a->list_topics();
  REQUIRE(listed.has_value());
  std::map<std::string, std::int32_t> got_partitions;
  for (const auto& t : *listed) got_partitions[t.name] = static_cast<std::int32_t>(t.partitions.size());
  CHECK(got_partitions == want_partitions);
  for (const auto& [name, retention] : want_retention) {
    auto cfg = a->describe_configs(name);
    REQUIRE(cfg.has_value());
    CHECK(cfg->at("retention.ms").value == retention);
  }
}

TEST_CASE("standalone: back pressure throttles and the producer retries to delivery") {
  temp_dir dir;
  broker_process b(dir / "data", {"--set", "max.inflight.produce.bytes.per.connection=2048"});
  REQUIRE(admin_for(b)->create_topic("bp", 4).has_value());
  producer_config c;
  c.bootstrap = b.bootstrap();
  c.acks = -1;
  c.linger = std::chrono::milliseconds(0);
  c.batch_bytes = 1024;
  c.retry_backoff = std::chrono::milliseconds(5);
  auto p = producer::connect(c);
  REQUIRE(p.has_value());
  auto acked = produce_keyed(**p, "bp", 400, "b");
  CHECK(acked.size() == 400);
  CHECK(read_all(b, "bp", 4, 400).size() == 400);
}

TEST_CASE("standalone: SIGTERM drains and exits 0") {
  temp_dir dir;
  broker_process b(dir / "data");
  REQUIRE(admin_for(b)->create_topic("bye", 1).has_value());
  auto p = producer_for(b, 1);
  REQUIRE(p->send("bye", std::nullopt, "x").get().has_value());
  CHECK(b.stop() == 0);
}

TEST_CASE("standalone: a flipped byte in a sealed segment reaches the consumer as CORRUPT_MESSAGE, never silently") {
  temp_dir dir;
  {
    broker_process b(dir / "data");
    REQUIRE(admin_for(b)->create_topic("c", 2, 1, {{"segment.bytes", "1048576"}}).has_value());
    auto p = producer_for(b, -1);
    const std::string big(8000, 'v');
    std::vector<std::future<result<delivery>>> fs;
    for (int i = 0; i < 300; ++i) fs.push_back(p->send("c", std::nullopt, big));  // sticky: lands on one partition at a time
    for (auto& f : fs) REQUIRE(f.get().has_value());
    p->close();
    CHECK(b.stop() == 0);
  }
  // Find a partition with a sealed segment and flip a byte in its middle.
  std::string damaged;
  for (int part : {0, 1}) {
    auto pdir = dir / "data" / ("c-" + std::to_string(part));
    std::vector<std::filesystem::path> logs;
    for (const auto& e : std::filesystem::directory_iterator(pdir)) {
      if (e.path().extension() == ".log") logs.push_back(e.path());
    }
    std::sort(logs.begin(), logs.end());
    if (logs.size() >= 2) {
      runnel::testing::flip_byte(logs[0], std::filesystem::file_size(logs[0]) / 2);
      damaged = std::to_string(part);
      break;
    }
  }
  REQUIRE_FALSE(damaged.empty());
  broker_process b(dir / "data");
  const std::int32_t bad = std::stoi(damaged);
  // Fetch sends stored bytes as they are; the consumer's CRC check catches
  // the damage and names the partition and offset.
  auto c = consumer_for(b);
  REQUIRE(c->assign({{"c", bad}}).has_value());
  std::optional<error> seen;
  for (int i = 0; i < 100 && !seen; ++i) {
    auto recs = c->poll(std::chrono::milliseconds(200));
    if (!recs) seen = recs.error();
  }
  REQUIRE(seen.has_value());
  CHECK(seen->code == errc::corrupt_message);
  CHECK(seen->message.find("c/" + damaged) != std::string::npos);
  // The other partition and new appends are unaffected.
  CHECK(read_all(b, "c", 2, 0).empty());
  auto p = producer_for(b, 1);
  CHECK(p->send_to("c", 1 - bad, std::nullopt, "y").get().has_value());
}

TEST_CASE("standalone: acks=0 sends without responses and the records still land") {
  temp_dir dir;
  broker_process b(dir / "data");
  REQUIRE(admin_for(b)->create_topic("fire", 2).has_value());
  auto p = producer_for(b, 0);
  std::vector<std::future<result<delivery>>> fs;
  for (int i = 0; i < 200; ++i) fs.push_back(p->send("fire", "k" + std::to_string(i), "v"));
  for (auto& f : fs) {
    auto r = f.get();
    REQUIRE(r.has_value());
    CHECK(r->offset == -1);  // fire and forget: no offset comes back
  }
  CHECK(read_all(b, "fire", 2, 200).size() == 200);
}

TEST_CASE("standalone: destroying a producer whose broker died fails every record exactly once") {
  temp_dir dir;
  auto b = std::make_unique<broker_process>(dir / "data");
  REQUIRE(admin_for(*b)->create_topic("gone", 1).has_value());
  producer_config c;
  c.bootstrap = b->bootstrap();
  c.acks = 1;
  c.linger = std::chrono::milliseconds(1);
  c.request_timeout = std::chrono::milliseconds(300);
  c.delivery_timeout = std::chrono::milliseconds(800);
  c.retry_backoff = std::chrono::milliseconds(20);
  auto p = producer::connect(c);
  REQUIRE(p.has_value());
  REQUIRE((*p)->send("gone", std::nullopt, "first").get().has_value());  // metadata cached
  b->kill9();
  std::atomic<int> calls{0}, failures{0};
  for (int i = 0; i < 50; ++i) {
    (*p)->send("gone", std::nullopt, "x", {}, [&](const result<delivery>& r) {
      ++calls;
      if (!r) ++failures;
    });
  }
  p->reset();  // close(): flush gives up after delivery.timeout; nothing may be left without an answer
  CHECK(calls.load() == 50);
  CHECK(failures.load() == 50);
}
