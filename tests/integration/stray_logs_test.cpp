// Cluster mode: a broker that comes back removes the logs of partitions it
// no longer holds (topics deleted, or deleted and created again without it,
// while it was down), and a data directory of another cluster refuses to
// start instead of taking every log for a stray.

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <future>

#include "runnel/admin.h"
#include "runnel/producer.h"
#include "tests/integration/cluster_harness.h"
#include "tests/support/broker_process.h"
#include "tests/support/eventually.h"
#include "tests/support/temp_dir.h"
#include "tests/support/zk_server.h"

using namespace runnel;
using namespace runnel::testing;
using namespace std::chrono_literals;

namespace {

std::unique_ptr<admin> admin_of(const std::string& bootstrap) {
  admin_config c;
  c.bootstrap = bootstrap;
  auto a = admin::connect(c);
  REQUIRE(a.has_value());
  return std::move(*a);
}

void produce_to_every_partition(const std::string& bootstrap, const std::string& topic,
                                std::int32_t partitions) {
  producer_config c;
  c.bootstrap = bootstrap;
  c.acks = -1;
  auto p = producer::connect(c);
  REQUIRE(p.has_value());
  for (std::int32_t part = 0; part < partitions; ++part) {
    auto r = (*p)->send_to(topic, part, std::nullopt, "v").get();
    REQUIRE_MESSAGE(r.has_value(), r.error().what());
  }
}

bool has_log(const cluster_harness& c, std::int32_t broker, const std::string& dir) {
  return std::filesystem::exists(c.data_dir(broker) / dir);
}

}  // namespace

TEST_CASE(
    "cluster mode: logs of topics deleted (or re-created without it) while a broker was down go "
    "when it returns") {
  cluster_harness c(2);
  auto a = admin_of(c.bootstrap());
  REQUIRE(a->create_topic("kept", 2, 2).has_value());
  REQUIRE(a->create_topic("gone", 2, 2).has_value());
  REQUIRE(a->create_topic("again", 2, 2).has_value());
  for (const char* t : {"kept", "gone", "again"}) {
    REQUIRE(c.wait_for(
        t,
        [](const topic_info& i) {
          return std::all_of(i.partitions.begin(), i.partitions.end(),
                             [](const auto& p) { return p.isr.size() == 2; });
        },
        20s));
    produce_to_every_partition(c.bootstrap(), t, 2);
  }
  REQUIRE(has_log(c, 2, "gone-0"));
  REQUIRE(has_log(c, 2, "again-1"));

  REQUIRE(c.stop(2) == 0);
  a = admin_of(c.address(1));
  REQUIRE(a->delete_topic("gone").has_value());
  REQUIRE(a->delete_topic("again").has_value());
  // The deletion reaches broker 1's shards through its watch; then the
  // name is free again. Created while broker 2 is down: on broker 1 only.
  REQUIRE(eventually([&] { return !has_log(c, 1, "again-0") && !has_log(c, 1, "again-1"); }, 20s));
  REQUIRE(a->create_topic("again", 2, 1).has_value());
  produce_to_every_partition(c.address(1), "again", 2);

  c.start(2);
  CHECK(eventually([&] { return !has_log(c, 2, "gone-0") && !has_log(c, 2, "gone-1"); }, 20s));
  CHECK(eventually([&] { return !has_log(c, 2, "again-0") && !has_log(c, 2, "again-1"); }, 20s));
  CHECK(has_log(c, 2, "kept-0"));  // still a replica: kept
  CHECK(has_log(c, 2, "kept-1"));
  CHECK(has_log(c, 1, "again-0"));  // the new topic's logs, on its replica
  CHECK(has_log(c, 1, "again-1"));
  auto kept = c.wait_for(
      "kept",
      [](const topic_info& i) {
        return std::all_of(i.partitions.begin(), i.partitions.end(),
                           [](const auto& p) { return p.isr.size() == 2; });
      },
      20s);
  CHECK(kept.has_value());  // broker 2 is back in the ISR of what it kept
}

TEST_CASE(
    "cluster mode: a data directory of another cluster or broker id refuses to start, naming both") {
  temp_dir dir;
  zk_server zk(dir / "zk");
  const std::vector<std::string> common{"--broker-id", "1", "--set",
                                        "zookeeper.session.timeout.ms=2000"};
  auto args_for = [&](const std::string& chroot) {
    std::vector<std::string> a{
        RUNNEL_BROKER_BIN, "--data-dir",  (dir / "b1").string(),       "--listen",
        "127.0.0.1:0",     "--zookeeper", zk.connect_string() + chroot};
    a.insert(a.end(), common.begin(), common.end());
    return a;
  };
  {
    std::vector<std::string> extra{"--zookeeper", zk.connect_string() + "/first"};
    extra.insert(extra.end(), common.begin(), common.end());
    broker_process first(dir / "b1", extra);
    REQUIRE(first.stop() == 0);
  }
  std::ifstream id_file(dir / "b1" / "cluster.id");
  std::string recorded;
  REQUIRE(std::getline(id_file, recorded));
  const auto space = recorded.find(' ');
  REQUIRE(space == 32);  // "<32 hex digits> <broker id>"
  CHECK(recorded.substr(space + 1) == "1");

  auto r = run_command(args_for("/second"), {}, 60);
  CHECK(r.exit_code == 1);
  CHECK_MESSAGE(r.err.find("belongs to cluster and broker '" + recorded + "'") != std::string::npos, r.err);
  CHECK_MESSAGE(r.err.find("ZooKeeper " + zk.connect_string() + "/second holds cluster") != std::string::npos, r.err);

  // The same cluster under another broker id is refused too.
  auto other_id = args_for("/first");
  other_id[other_id.size() - 3] = "2";  // --broker-id 1 -> 2
  REQUIRE(other_id[other_id.size() - 4] == "--broker-id");
  auto r2 = run_command(other_id, {}, 60);
  CHECK(r2.exit_code == 1);
  CHECK_MESSAGE(r2.err.find("this is broker 2") != std::string::npos, r2.err);

  // Its own cluster still takes it.
  std::vector<std::string> extra{"--zookeeper", zk.connect_string() + "/first"};
  extra.insert(extra.end(), common.begin(), common.end());
  broker_process again(dir / "b1", extra);
  CHECK(again.stop() == 0);
}
