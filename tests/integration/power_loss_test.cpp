// Power loss that does not trust the broker's word (issue 12 §1): brokers
// run on runnel-powerfs (tests/support/powerfs/model.h), which at a power
// loss keeps only what was fsynced, file data and directory entries alike.
// The loss comes at a random moment under an acks=all producer at full
// speed (the seed is printed; RUNNEL_POWER_LOSS_SEED repeats a run), the
// broker is SIGKILLed right after, and it restarts on exactly the durable
// bytes. The judge is the ack_checker: every acknowledgement the client
// received must be read back, intact, in order, at its offset.

#include <doctest/doctest.h>

#include <cstdlib>
#include <future>
#include <random>
#include <thread>

#include "runnel/admin.h"
#include "tests/integration/cluster_harness.h"
#include "tests/integration/fault_scenario.h"
#include "tests/support/broker_process.h"
#include "tests/support/powerfs.h"
#include "tests/support/temp_dir.h"

using namespace runnel;
using namespace runnel::testing;
namespace fs = std::filesystem;

namespace {

constexpr int full_speed = 1'000'000;  // steady_producer's pacing: far above what the brokers take here
// Small segments (the least segment.bytes allows), so the traffic before a
// loss rolls several: a roll creates a file, and only a directory fsync
// makes that file's entry durable.
const std::map<std::string, std::string> small_segments{{"segment.bytes", "1048576"}};

// The run's seed: RUNNEL_POWER_LOSS_SEED, else a fresh one; printed either way.
std::uint64_t run_seed() {
  const char* env = std::getenv("RUNNEL_POWER_LOSS_SEED");
  const std::uint64_t seed = env != nullptr ? std::strtoull(env, nullptr, 10) : std::random_device{}();
  MESSAGE("power loss seed " << seed << " (RUNNEL_POWER_LOSS_SEED=" << seed << " repeats it)");
  return seed;
}

// When the power goes: somewhere in the first seconds of full-speed traffic.
std::chrono::milliseconds loss_moment(std::mt19937_64& rng) {
  return std::chrono::milliseconds(std::uniform_int_distribution<int>(300, 1500)(rng));
}

// Waits for the loss: `moment` of traffic, or sooner once 400,000 records
// are acknowledged, so the loss always meets the producer mid-stream (it
// stops at 500,000; a fast run used to reach that before a late moment).
// Returns how long it waited.
std::chrono::milliseconds wait_for_loss(std::chrono::milliseconds moment, const ack_checker& chk) {
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < moment && chk.acked_count() < 400'000) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
}

// One standalone broker on a powerfs mount at `dir`; lose_power() is the
// loss: the durable state written out, then the broker SIGKILLed (it sees
// only EIO in between), then the mount gone. start() brings the broker back
// on its old port, on a new mount seeded with what the loss kept.
class powered_broker {
 public:
  explicit powered_broker(fs::path dir, std::vector<std::string> args = {})
      : dir_(std::move(dir)), args_(std::move(args)) {
    start();
  }
  ~powered_broker() {
    broker_.reset();  // before its filesystem goes
    mount_.reset();
  }
  powered_broker(const powered_broker&) = delete;             // owns a broker and a mount
  powered_broker& operator=(const powered_broker&) = delete;  // owns a broker and a mount

  broker_process& broker() { return *broker_; }

  void start() {
    mount_ = std::make_unique<powerfs_mount>(dir_ / "data", durable_);
    auto args = args_;
    if (port_ != 0) args.insert(args.end(), {"--listen", "127.0.0.1:" + std::to_string(port_)});
    broker_ = std::make_unique<broker_process>(mount_->path(), args);
    port_ = broker_->port();
  }
  void lose_power() {
    durable_ = dir_ / ("durable-" + std::to_string(++losses_));
    MESSAGE("power lost: " << mount_->lose_power(durable_));
    broker_->kill9();
    broker_.reset();
    mount_.reset();
  }

 private:
  fs::path dir_;
  std::vector<std::string> args_;
  fs::path durable_;
  int losses_ = 0;
  std::uint16_t port_ = 0;
  std::unique_ptr<powerfs_mount> mount_;
  std::unique_ptr<broker_process> broker_;
};

void create_standalone_topic(broker_process& b, const std::string& topic, std::int32_t partitions,
                             std::map<std::string, std::string> configs = {}) {
  admin_config ac;
  ac.bootstrap = b.bootstrap();
  ac.timeout = 10s;
  auto a = admin::connect(ac);
  REQUIRE(a.has_value());
  auto r = (*a)->create_topic(topic, partitions, 1, configs);
  REQUIRE_MESSAGE(r.has_value(), (r ? "" : r.error().what()));
}

// The recovered log takes appends, whether or not the steady producer
// still had records to send after the restart (it stops at 500,000).
void expect_appends(broker_process& b, const std::string& topic) {
  producer_config pc;
  pc.bootstrap = b.bootstrap();
  pc.acks = -1;
  auto p = producer::connect(pc);
  REQUIRE(p.has_value());
  std::vector<std::future<result<delivery>>> sent;
  for (int i = 0; i < 100; ++i) sent.push_back((*p)->send(topic, "after", "after-" + std::to_string(i)));
  int acked = 0;
  for (auto& f : sent) acked += f.get().has_value() ? 1 : 0;
  CHECK_MESSAGE(acked == 100, acked << " of 100 appends after the restart acknowledged");
}

// A standalone run: full-speed traffic, the loss, a restart with the
// producer still sending; the report over everything it was acknowledged.
ack_checker::report standalone_power_loss(int acks, std::map<std::string, std::string> topic_configs = {}) {
  std::mt19937_64 rng(run_seed());
  const auto moment = loss_moment(rng);
  temp_dir t;
  powered_broker pb(t.path());
  create_standalone_topic(pb.broker(), "pl", 2, topic_configs);
  ack_checker chk;
  steady_producer prod(pb.broker().bootstrap(), "pl", 2, acks, chk, full_speed, std::nullopt, 1);
  const auto waited = wait_for_loss(moment, chk);
  pb.lose_power();
  const auto acked_at_loss = chk.acked_count();
  MESSAGE("loss after " << waited.count() << " ms: " << acked_at_loss << " acknowledged ("
                        << acked_at_loss * 1000 / static_cast<std::size_t>(std::max<long>(1, waited.count()))
                        << " rec/s)");
  pb.start();
  // The producer resends what it was not acknowledged on the restarted broker.
  REQUIRE_MESSAGE(prod.stop(), "records still outstanding 90 s after the producer stopped");
  auto report = chk.check(read_partitions(pb.broker().bootstrap(), "pl", 2));
  MESSAGE("checker: " << report.summary() << "; " << chk.acked_count() - acked_at_loss
                      << " acknowledged after the restart");
  expect_appends(pb.broker(), "pl");
  return report;
}

// Three brokers, each on its own powerfs mount at its data directory,
// mounted before every start and seeded with what the last loss kept.
class powered_cluster {
 public:
  powered_cluster()
      : cluster_(std::make_unique<cluster_harness>(
            3, std::vector<std::string>{}, false,
            [this](std::int32_t id, const fs::path& dir) {
              mounts_[id] = std::make_unique<powerfs_mount>(dir, durable_[id]);
            })) {}
  ~powered_cluster() {
    // Brokers first, then their filesystems, then the harness's directories.
    for (std::int32_t id = 1; id <= 3; ++id) cluster_->kill9(id);
    mounts_.clear();
    cluster_.reset();
  }
  powered_cluster(const powered_cluster&) = delete;             // owns a cluster and mounts
  powered_cluster& operator=(const powered_cluster&) = delete;  // owns a cluster and mounts

  cluster_harness& cluster() { return *cluster_; }

  // All of `ids` lose power at once (the losses run in parallel), then each
  // broker is SIGKILLed and its mount goes.
  void lose_power(const std::vector<std::int32_t>& ids) {
    ++losses_;
    std::vector<std::future<std::string>> done;
    for (auto id : ids) {
      durable_[id] = dir_ / ("loss-" + std::to_string(losses_) + "-b" + std::to_string(id));
      done.push_back(std::async(std::launch::async, [this, id] { return mounts_[id]->lose_power(durable_[id]); }));
    }
    for (std::size_t i = 0; i < ids.size(); ++i) MESSAGE("broker " << ids[i] << " lost power: " << done[i].get());
    for (auto id : ids) {
      cluster_->kill9(id);
      mounts_.erase(id);
    }
  }

 private:
  temp_dir dir_;
  std::map<std::int32_t, fs::path> durable_;
  std::map<std::int32_t, std::unique_ptr<powerfs_mount>> mounts_;
  int losses_ = 0;
  std::unique_ptr<cluster_harness> cluster_;
};

}  // namespace

TEST_CASE("power loss 1: a standalone broker at acks=all loses power at a random moment: every acknowledged record survives") {
  const auto report = standalone_power_loss(-1, small_segments);
  CHECK(report.acked > 0);
  CHECK(report.ok());
}

TEST_CASE("power loss 2 (negative control): acks=1 without fsync loses acknowledged records, and the checker says so") {
  // acks=1 answers once the batch is written; nothing fsyncs it before the
  // loss unless a roll does, so the acknowledged tail is gone: lost, or (the
  // producer goes on after the restart) its offsets hold newer records.
  const auto report = standalone_power_loss(1, small_segments);
  CHECK(report.acked > 0);
  CHECK_FALSE(report.ok());
  CHECK(report.lost + report.changed > 0);
}

TEST_CASE("power loss 3: the leader of an RF=3 topic loses power: nothing acknowledged lost, replicas identical") {
  std::mt19937_64 rng(run_seed());
  const auto moment = loss_moment(rng);
  powered_cluster pc;
  auto& c = pc.cluster();
  create_topic(c, "pc", 2, {{"min.insync.replicas", "2"}, {"segment.bytes", "1048576"}});
  ack_checker chk;
  steady_producer prod(c, "pc", 2, -1, chk, full_speed);
  const auto waited = wait_for_loss(moment, chk);
  const std::int32_t old = leader_of(c, "pc", 0);
  REQUIRE(old > 0);
  pc.lose_power({old});
  MESSAGE("leader " << old << " lost power after " << waited.count() << " ms, " << chk.acked_count()
                    << " acknowledged");
  REQUIRE(c.wait_for("pc", leader_left(old), 15s).has_value());
  std::this_thread::sleep_for(1000ms);
  c.start(old);
  finish_healed(c, "pc", 2, prod, chk);
}

TEST_CASE("power loss 4: all three brokers lose power at once: nothing acknowledged lost, replicas identical") {
  std::mt19937_64 rng(run_seed());
  const auto moment = loss_moment(rng);
  powered_cluster pc;
  auto& c = pc.cluster();
  create_topic(c, "pd", 2, {{"min.insync.replicas", "2"}, {"segment.bytes", "1048576"}});
  ack_checker chk;
  steady_producer prod(c, "pd", 2, -1, chk, full_speed);
  const auto waited = wait_for_loss(moment, chk);
  pc.lose_power({1, 2, 3});
  MESSAGE("all lost power after " << waited.count() << " ms, " << chk.acked_count() << " acknowledged");
  for (std::int32_t id = 1; id <= 3; ++id) c.start(id);
  finish_healed(c, "pd", 2, prod, chk);
}
