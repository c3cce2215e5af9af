#include "broker/storage/log_manager.h"

#include <doctest/doctest.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>

#include "broker/storage/errc.h"
#include "broker/storage/io_ring.h"
#include "broker/storage/segment.h"
#include "tests/support/batches.h"
#include "tests/support/run.h"
#include "tests/support/temp_dir.h"

using namespace runnel;
using namespace runnel::storage;
using runnel::testing::run;

namespace {

struct manager_fixture {
  testing::temp_dir tmp;
  asio::io_context io;
  io_ring ring{io};
  log_config cfg;
  std::unique_ptr<log_manager> m;

  void make(log_manager::owner_fn owns = {}) {
    m = std::make_unique<log_manager>(ring, tmp.path(), [this](const topic_partition&) { return cfg; },
                                      std::move(owns));
  }
  storage::log& create(const std::string& topic, int p) {
    auto l = run(io, m->get_or_create({topic, partition_id(p)}));
    REQUIRE(l.has_value());
    return **l;
  }
  void append(storage::log& l, int n) {
    for (int i = 0; i < n; ++i) {
      auto b = testing::make_batch();
      REQUIRE(run(io, l.append(b)).has_value());
    }
  }
};

}  // namespace

TEST_CASE("log_manager: directory names are <topic>-<partition>") {
  auto tp = log_manager::parse_dir_name("orders.v2-us-17");
  REQUIRE(tp.has_value());
  CHECK(tp->topic == "orders.v2-us");
  CHECK(tp->partition == partition_id(17));
  CHECK(log_manager::dir_for("/d", *tp) == std::filesystem::path("/d/orders.v2-us-17"));
  CHECK_FALSE(log_manager::parse_dir_name("nopartition"));
  CHECK_FALSE(log_manager::parse_dir_name("-3"));
  CHECK_FALSE(log_manager::parse_dir_name("t-"));
  CHECK_FALSE(log_manager::parse_dir_name("t-x1"));
  CHECK_FALSE(log_manager::parse_dir_name("bad topic-1"));
  CHECK(log_manager::valid_topic_name("a_b.c-D9"));
  CHECK_FALSE(log_manager::valid_topic_name(""));
  CHECK_FALSE(log_manager::valid_topic_name(".."));
  CHECK_FALSE(log_manager::valid_topic_name(std::string(250, 'a')));
  CHECK_FALSE(log_manager::valid_topic_name("a/b"));
}

TEST_CASE("log_manager: creates, closes and reopens every log of a data directory") {
  manager_fixture f;
  f.make();
  REQUIRE(*run(f.io, f.m->open_all()) == 0);
  for (int p = 0; p < 4; ++p) f.append(f.create("orders", p), p + 1);
  f.append(f.create("audit", 0), 2);
  CHECK(f.m->partitions().size() == 5);
  REQUIRE_FALSE(run(f.io, f.m->close_all()));

  f.make();
  std::filesystem::create_directories(f.tmp / "not a log");
  auto opened = run(f.io, f.m->open_all());
  REQUIRE(opened.has_value());
  CHECK(*opened == 5);
  for (int p = 0; p < 4; ++p) {
    auto* l = f.m->get({"orders", partition_id(p)});
    REQUIRE(l != nullptr);
    CHECK(l->log_end_offset() == offset(p + 1));
  }
  CHECK(f.m->get({"audit", partition_id(0)})->log_end_offset() == offset(2));
  CHECK(f.m->get({"audit", partition_id(1)}) == nullptr);
  REQUIRE_FALSE(run(f.io, f.m->close_all()));
}

TEST_CASE("log_manager: opens only the partitions its shard owns") {
  manager_fixture f;
  f.make();
  for (int p = 0; p < 6; ++p) f.append(f.create("t", p), 1);
  REQUIRE_FALSE(run(f.io, f.m->close_all()));
  f.make([](const topic_partition& tp) { return tp.partition.value() % 2 == 0; });
  CHECK(*run(f.io, f.m->open_all()) == 3);
  CHECK(f.m->get({"t", partition_id(2)}) != nullptr);
  CHECK(f.m->get({"t", partition_id(3)}) == nullptr);
  REQUIRE_FALSE(run(f.io, f.m->close_all()));
}

TEST_CASE("log_manager: a corrupt log is offline, the others serve") {
  manager_fixture f;
  f.make();
  f.append(f.create("good", 0), 3);
  f.append(f.create("bad", 0), 3);
  REQUIRE_FALSE(run(f.io, f.m->close_all()));
  auto bad_log = segment_path(f.tmp / "bad-0", offset(0), ".log");
  testing::flip_byte(bad_log, std::filesystem::file_size(bad_log) - 9);

  f.make();
  CHECK(*run(f.io, f.m->open_all()) == 1);
  REQUIRE(f.m->offline().size() == 1);
  CHECK(f.m->offline().begin()->first.topic == "bad");
  CHECK(f.m->offline().begin()->second == errc::corrupt_log);
  CHECK(f.m->get({"good", partition_id(0)})->log_end_offset() == offset(3));
  CHECK(run(f.io, f.m->get_or_create({"bad", partition_id(0)})).error() == errc::corrupt_log);
  REQUIRE_FALSE(run(f.io, f.m->close_all()));
}

TEST_CASE("log_manager: remove closes the log and deletes its directory") {
  manager_fixture f;
  f.make();
  f.append(f.create("gone", 1), 2);
  REQUIRE_FALSE(run(f.io, f.m->remove({"gone", partition_id(1)})));
  CHECK_FALSE(std::filesystem::exists(f.tmp / "gone-1"));
  CHECK(f.m->get({"gone", partition_id(1)}) == nullptr);
  CHECK(run(f.io, f.m->remove({"gone", partition_id(1)})) == errc::unknown_log);
}

TEST_CASE("log_manager: an invalid topic name is refused") {
  manager_fixture f;
  f.make();
  CHECK(run(f.io, f.m->get_or_create({"a/b", partition_id(0)})).error() == errc::bad_log_directory);
  CHECK(run(f.io, f.m->get_or_create({"t", partition_id(-1)})).error() == errc::bad_log_directory);
}

TEST_CASE("log_manager: retention runs over every log") {
  manager_fixture f;
  f.cfg.segment_bytes = 2 * testing::make_batch().size();
  f.cfg.retention_bytes = 0;
  f.make();
  f.append(f.create("r", 0), 5);
  f.append(f.create("r", 1), 3);
  CHECK(run(f.io, f.m->apply_retention(timestamp_ms(0))) == 3);
  REQUIRE_FALSE(run(f.io, f.m->close_all()));
}

TEST_CASE("log_manager: concurrent get_or_create of a new partition opens it once") {
  manager_fixture f;
  f.make();
  storage::log* a = nullptr;
  storage::log* b = nullptr;
  topic_partition tp("race", partition_id(0));
  for (auto* out : {&a, &b}) {
    asio::co_spawn(
        f.io,
        [&f, &tp, out]() -> asio::awaitable<void> {
          auto l = co_await f.m->get_or_create(tp);
          REQUIRE(l.has_value());
          *out = *l;
        },
        asio::detached);
  }
  f.io.restart();
  f.io.run();
  REQUIRE(a != nullptr);
  CHECK(a == b);
  f.append(*a, 3);
  CHECK(a->log_end_offset() == offset(3));
}

TEST_CASE("log_manager: get_or_create during a remove waits for it and starts an empty log") {
  manager_fixture f;
  f.make();
  topic_partition tp("again", partition_id(0));
  f.append(f.create("again", 0), 5);
  std::error_code removed = make_error_code(errc::unknown_log);
  storage::log* reopened = nullptr;
  // Both start before either finishes: remove suspends while the log closes.
  asio::co_spawn(
      f.io, [&f, &tp, &removed]() -> asio::awaitable<void> { removed = co_await f.m->remove(tp); }, asio::detached);
  asio::co_spawn(
      f.io,
      [&f, &tp, &reopened]() -> asio::awaitable<void> {
        auto l = co_await f.m->get_or_create(tp);
        REQUIRE(l.has_value());
        reopened = *l;
      },
      asio::detached);
  f.io.restart();
  f.io.run();
  CHECK_FALSE(removed);
  REQUIRE(reopened != nullptr);
  CHECK(reopened->log_end_offset() == offset(0));  // not the removed log's 5 records
  CHECK(std::filesystem::exists(f.tmp / "again-0"));
  CHECK(f.m->get(tp) == reopened);
}
