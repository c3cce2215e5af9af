#include "broker/meta/topic_store.h"

#include <doctest/doctest.h>

#include "broker/config.h"
#include "broker/meta/topic_config.h"
#include "tests/support/batches.h"
#include "tests/support/temp_dir.h"

using namespace runnel;
using namespace runnel::meta;

TEST_CASE("topic_config: every key applies and bad values name the key") {
  topic_config cfg;
  CHECK(apply_topic_config(cfg, "retention.ms", "1000").has_value());
  CHECK(cfg.log.retention_ms.count() == 1000);
  CHECK(apply_topic_config(cfg, "max.message.bytes", "2048").has_value());
  CHECK(cfg.max_message_bytes == 2048);
  auto bad = apply_topic_config(cfg, "segment.bytes", "ten");
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().find("segment.bytes") != std::string::npos);
  auto small = apply_topic_config(cfg, "segment.bytes", "10");
  REQUIRE_FALSE(small.has_value());
  CHECK(small.error().find("outside") != std::string::npos);
  auto unknown = apply_topic_config(cfg, "colour", "blue");
  REQUIRE_FALSE(unknown.has_value());
  CHECK(unknown.error().find("unknown") != std::string::npos);
  CHECK(describe(cfg).size() == topic_config_keys().size());
}

TEST_CASE("topic_config: dead.letter.topic is a true/false marker that describe reports") {
  topic_config cfg;
  CHECK_FALSE(cfg.dead_letter_topic);
  REQUIRE(apply_topic_config(cfg, "dead.letter.topic", "true").has_value());
  CHECK(cfg.dead_letter_topic);
  CHECK_FALSE(cfg.unclean_leader_election);  // the key it shares parsing with stays
  bool reported = false;
  for (const auto& [k, v] : describe(cfg)) reported = reported || (k == "dead.letter.topic" && v == "true");
  CHECK(reported);
  auto bad = apply_topic_config(cfg, "dead.letter.topic", "yes");
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().find("dead.letter.topic") != std::string::npos);
  CHECK(cfg.dead_letter_topic);
}

TEST_CASE("topic_store: topics survive a reload, with their overrides") {
  testing::temp_dir dir;
  {
    auto s = topic_store::load(dir.path(), {});
    REQUIRE(s.has_value());
    REQUIRE(s->create("orders", 3, 1, {{"retention.ms", "5000"}}, false).has_value());
    REQUIRE(s->create("audit", 1, 1, {}, false).has_value());
    REQUIRE(s->alter("audit", {{"max.message.bytes", "4096"}}, false).has_value());
  }
  auto s = topic_store::load(dir.path(), {});
  REQUIRE(s.has_value());
  auto snap = s->snapshot();
  REQUIRE(snap->size() == 2);
  CHECK(snap->at("orders").partitions == 3);
  CHECK(snap->at("orders").config.log.retention_ms.count() == 5000);
  CHECK(snap->at("audit").config.max_message_bytes == 4096);
  REQUIRE(s->remove("orders").has_value());
  auto again = topic_store::load(dir.path(), {});
  CHECK(again->snapshot()->size() == 1);
}

TEST_CASE("topic_store: create errors") {
  testing::temp_dir dir;
  auto s = topic_store::load(dir.path(), {});
  REQUIRE(s->create("t", 1, 1, {}, false).has_value());
  CHECK(s->create("t", 1, 1, {}, false).error().code == errc::topic_exists);
  CHECK(s->create("bad name", 1, 1, {}, false).error().code == errc::invalid_topic);
  CHECK(s->create("", 1, 1, {}, false).error().code == errc::invalid_topic);
  CHECK(s->create("z", 0, 1, {}, false).error().code == errc::invalid_partitions);
  CHECK(s->create("z", max_partitions + 1, 1, {}, false).error().code == errc::invalid_partitions);
  CHECK(s->create("z", 1, 3, {}, false).error().code == errc::invalid_replication);
  CHECK(s->create("z", 1, 1, {{"retention.ms", "x"}}, false).error().code == errc::invalid_config);
  CHECK(s->remove("nope").error().code == errc::unknown_topic);
  CHECK(s->alter("nope", {}, false).error().code == errc::unknown_topic);
  // validate_only changes nothing.
  REQUIRE(s->create("v", 1, 1, {}, true).has_value());
  CHECK_FALSE(s->snapshot()->contains("v"));
}

TEST_CASE("topic_store: a damaged metadata file is refused with its path") {
  testing::temp_dir dir;
  {
    auto s = topic_store::load(dir.path(), {});
    REQUIRE(s->create("orders", 3, 1, {}, false).has_value());
  }
  auto file = dir / "topics";
  testing::flip_byte(file, 20);
  auto s = topic_store::load(dir.path(), {});
  REQUIRE_FALSE(s.has_value());
  CHECK(s.error().message.find(file.string()) != std::string::npos);
  CHECK(s.error().message.find("checksum") != std::string::npos);
  CHECK(s.error().code == errc::malformed_store);
}

TEST_CASE("broker_config: the share group keys, and their bounds") {
  broker_config c;
  CHECK(c.shares.lock_duration == std::chrono::milliseconds(30'000));
  CHECK(c.shares.max_delivery_attempts == 5);
  CHECK(c.shares.max_record_locks == 2000);
  REQUIRE(c.set("share.record.lock.duration.ms", "1500").has_value());
  REQUIRE(c.set("share.delivery.attempts.max", "3").has_value());
  REQUIRE(c.set("share.partition.max.record.locks", "10").has_value());
  CHECK(c.shares.lock_duration == std::chrono::milliseconds(1500));
  CHECK(c.shares.max_delivery_attempts == 3);
  CHECK(c.shares.max_record_locks == 10);
  CHECK(c.set("share.record.lock.duration.ms", "99").error().find("share.record.lock.duration.ms") != std::string::npos);
  CHECK(c.set("share.delivery.attempts.max", "0").error().find("share.delivery.attempts.max") != std::string::npos);
  CHECK(c.set("share.partition.max.record.locks", "x").error().find("share.partition.max.record.locks") !=
        std::string::npos);
  CHECK(c.shares.max_delivery_attempts == 3);  // a refused value changes nothing
}

TEST_CASE("broker_config: keys, files and errors naming the key") {
  broker_config c;
  CHECK(c.set("listen", "127.0.0.1:1234").has_value());
  CHECK(c.listen_port == 1234);
  CHECK(c.set("log.retention.ms", "100").has_value());
  CHECK(c.topic_defaults.log.retention_ms.count() == 100);
  CHECK(c.set("shards", "0").error().find("shards") != std::string::npos);
  CHECK(c.set("listen", "nope").error().find("listen") != std::string::npos);
  CHECK(c.set("no.such.key", "1").error().find("no.such.key") != std::string::npos);
  CHECK(c.set("log.colour", "1").error().find("log.colour") != std::string::npos);
  testing::temp_dir dir;
  testing::write_file(dir / "broker.conf", "# comment\nshards = 3\n\nmax.request.bytes=2048\n");
  REQUIRE(c.load_file(dir / "broker.conf").has_value());
  CHECK(c.shards == 3);
  CHECK(c.max_request_bytes == 2048);
  testing::write_file(dir / "bad.conf", "shards=3\nthis line is wrong\n");
  auto bad = c.load_file(dir / "bad.conf");
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().find("bad.conf:2") != std::string::npos);
  CHECK_FALSE(c.load_file(dir / "missing.conf").has_value());
}

TEST_CASE("broker_config: advertised.listeners is what clients are told, the listen address when unset") {
  broker_config c;
  REQUIRE(c.set("listen", "127.0.0.1:1234").has_value());
  CHECK(c.advertise_host() == "127.0.0.1");
  CHECK(c.advertise_port() == 1234);
  REQUIRE(c.set("advertised.listeners", "PLAINTEXT://broker-1.example:9092").has_value());
  CHECK(c.advertise_host() == "broker-1.example");
  CHECK(c.advertise_port() == 9092);
  REQUIRE(c.set("advertised.listeners", "10.0.0.7:7000").has_value());
  CHECK(c.advertise_host() == "10.0.0.7");
  CHECK(c.advertise_port() == 7000);
  for (const char* bad : {"nope", ":7000", "a:0", "a:70000", "a:1,b:2", "PLAINTEXT://", "SSL://a:1"}) {
    auto r = c.set("advertised.listeners", bad);
    CHECK_MESSAGE(!r.has_value(), bad);
    if (!r) CHECK(r.error().find("advertised.listeners") != std::string::npos);
  }
  CHECK(c.advertise_port() == 7000);  // a refused value changes nothing
  REQUIRE(c.set("advertised.listeners", "").has_value());
  CHECK(c.advertise_port() == 1234);
}
