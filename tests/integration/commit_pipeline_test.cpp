// Pipelined offset commits (client/src/committer.h) against real brokers:
// async commits keep their order, every callback runs once, and commits
// cut off by a broker crash are retried without moving the group back.

#include <doctest/doctest.h>

#include <map>
#include <thread>
#include <vector>

#include "runnel/admin.h"
#include "runnel/consumer.h"
#include "runnel/testing/embedded_broker.h"
#include "tests/support/broker_process.h"
#include "tests/support/temp_dir.h"

using namespace runnel;
using runnel::testing::broker_process;

namespace {

consumer_config committer_config(const std::string& bootstrap, const std::string& group) {
  consumer_config c;
  c.bootstrap = bootstrap;
  c.group_id = group;
  c.enable_auto_commit = false;
  c.max_in_flight_commits = 8;
  return c;
}

void create_topic(const std::string& bootstrap, const std::string& topic) {
  admin_config ac;
  ac.bootstrap = bootstrap;
  auto a = admin::connect(ac);
  REQUIRE(a.has_value());
  REQUIRE((*a)->create_topic(topic, 1, 1).has_value());
}

std::optional<std::int64_t> committed_offset(const std::string& bootstrap, const std::string& group,
                                             const topic_partition_ref& tp) {
  auto c = consumer::connect(committer_config(bootstrap, group));
  REQUIRE(c.has_value());
  auto got = (*c)->committed(tp);
  REQUIRE(got.has_value());
  if (!got->has_value()) return std::nullopt;
  return (*got)->offset;
}

}  // namespace

TEST_CASE("commit pipeline: 500 async commits of one partition land in order, their callbacks run before commit_sync returns") {
  runnel::testing::temp_dir dir;
  broker_process broker(dir.path() / "data");
  create_topic(broker.bootstrap(), "pipe");
  const topic_partition_ref tp{"pipe", 0};
  auto c = consumer::connect(committer_config(broker.bootstrap(), "g-order"));
  REQUIRE(c.has_value());
  int callbacks = 0;
  int failures = 0;
  for (std::int64_t i = 1; i <= 500; ++i) {
    (*c)->commit_async({{tp, offset_and_metadata{i, {}, -1, -1}}}, [&](const result<void>& r) {
      ++callbacks;
      if (!r) ++failures;
    });
  }
  REQUIRE((*c)->commit_sync({{tp, offset_and_metadata{501, {}, -1, -1}}}).has_value());
  CHECK(callbacks == 500);
  CHECK(failures == 0);
  CHECK(committed_offset(broker.bootstrap(), "g-order", tp) == 501);

  // Async commits with nothing after them: the last one is what the group has.
  for (std::int64_t i = 600; i <= 700; ++i) (*c)->commit_async({{tp, offset_and_metadata{i, {}, -1, -1}}});
  REQUIRE((*c)->close().has_value());
  CHECK(committed_offset(broker.bootstrap(), "g-order", tp) == 700);
  CHECK(committed_offset(broker.bootstrap(), "g-order", tp) != 699);  // the checker's negative control
}

TEST_CASE("commit pipeline: commits that find the broker gone are retried when it returns, and the group never goes back") {
  auto broker = testing::EmbeddedBroker::start();
  REQUIRE(broker.has_value());
  auto& b = **broker;
  const std::string bootstrap = b.bootstrap();
  create_topic(bootstrap, "restart");
  const topic_partition_ref tp{"restart", 0};
  auto c = consumer::connect(committer_config(bootstrap, "g-restart"));
  REQUIRE(c.has_value());
  REQUIRE((*c)->commit_sync({{tp, offset_and_metadata{1, {}, -1, -1}}}).has_value());  // the coordinator is known

  // The broker goes; 8 async commits (max_in_flight_commits) fail to
  // connect and wait for it; it comes back on the same port and data
  // 300 ms later. Had the older ones been sent again, they would land in
  // reverse (each retry goes to the head of the queue) and leave offset 2
  // behind.
  b.stop();
  std::map<std::int64_t, bool> outcome;  // offset -> its callback said committed
  for (std::int64_t i = 2; i <= 9; ++i) {
    (*c)->commit_async({{tp, offset_and_metadata{i, {}, -1, -1}}},
                       [&outcome, i](const result<void>& r) { outcome[i] = r.has_value(); });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  REQUIRE(b.restart().has_value());
  REQUIRE(b.bootstrap() == bootstrap);
  REQUIRE((*c)->close().has_value());  // waits for every commit's outcome

  CHECK(outcome.size() == 8);
  CHECK(outcome[9]);  // the newest commit is retried until it lands
  std::size_t failed = 0;
  for (const auto& [offset, ok] : outcome) failed += ok ? 0 : 1;
  CHECK(failed == 7);  // cut off, and a later commit carries their partition
  CHECK(committed_offset(bootstrap, "g-restart", tp) == 9);
}
