// runnel::share_processor against a real broker: the handler's answers
// become acknowledgements (done accepts, retry releases to any member after
// a backoff, dead and the last attempt reject to the group's DLQ), judged by
// the handler calls members saw and the DLQ records read back.

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "runnel/admin.h"
#include "runnel/producer.h"
#include "runnel/share_processor.h"
#include "tests/integration/topic_reader.h"
#include "tests/support/broker_process.h"
#include "tests/support/eventually.h"
#include "tests/support/temp_dir.h"

using namespace runnel;
using namespace runnel::testing;
using namespace std::chrono_literals;

namespace {

share_processor_config share_config_of(const std::string& bootstrap, const std::string& group) {
  share_processor_config cfg;
  cfg.consumer.bootstrap = bootstrap;
  cfg.consumer.group_id = group;
  cfg.consumer.fetch_max_wait = 100ms;
  cfg.consumer.max_poll_records = 20;
  cfg.topics = {"jobs"};
  cfg.retry.max_attempts = 3;
  cfg.retry.initial_backoff = 300ms;
  cfg.retry.max_backoff = 300ms;
  cfg.retry.jitter = 0;
  return cfg;
}

struct call {
  int member;
  std::int32_t partition;
  std::int64_t offset;
  int delivery;
  std::chrono::steady_clock::time_point at;
};

}  // namespace

TEST_CASE("share processor: retries go to any member after a backoff without holding up later records, failures reach the DLQ once") {
  temp_dir dir;
  broker_process broker(dir / "data");
  const auto& b = broker.bootstrap();
  auto adm = connect_admin(b);
  REQUIRE(adm->create_topic("jobs", 2, 1).has_value());
  REQUIRE(adm->alter_group_configs("crew", {{"share.dlq.topic", "jobs.dlq"}}).has_value());
  constexpr int records = 200;
  {
    producer_config pc;
    pc.bootstrap = b;
    pc.acks = -1;
    auto p = producer::connect(pc);
    REQUIRE(p.has_value());
    std::vector<std::future<result<delivery>>> sent;
    for (int i = 0; i < records; ++i) sent.push_back((*p)->send_to("jobs", i % 2, std::nullopt, std::to_string(i)));
    for (auto& f : sent) REQUIRE(f.get().has_value());
  }
  // n % 10: 0 fails for good, 1 fails on its first delivery only, 2 always
  // fails (rejected at its 3rd delivery), the rest succeed.
  std::mutex mu;
  std::vector<call> calls;
  std::map<int, std::set<int>> members_of;  // value -> members that handled it
  auto handler_of = [&](int member) {
    return [&, member](const record_view& r) {
      const int n = std::stoi(std::string(*r.value));
      {
        std::lock_guard lk(mu);
        calls.push_back({member, r.partition, r.offset, r.delivery_count, std::chrono::steady_clock::now()});
        members_of[n].insert(member);
      }
      if (n % 10 == 0) return process_result::permanent("bad record " + std::to_string(n));
      if (n % 10 == 1 && r.delivery_count == 1) throw std::runtime_error("downstream busy");
      if (n % 10 == 2) return process_result::retry_later("still failing");
      return process_result::ok();
    };
  };
  std::vector<std::unique_ptr<share_processor>> procs;
  for (int m = 0; m < 2; ++m) {
    auto p = share_processor::connect(share_config_of(b, "crew"));
    REQUIRE_MESSAGE(p.has_value(), p.error().what());
    procs.push_back(std::move(*p));
  }
  std::vector<std::future<result<void>>> runs;
  for (int m = 0; m < 2; ++m) {
    runs.push_back(std::async(std::launch::async, [&, m] { return procs[static_cast<std::size_t>(m)]->run(handler_of(m)); }));
  }
  // Done: every record accepted (160) or archived (the 40 of 0 and 2).
  const bool finished = eventually([&] {
    std::int64_t done = 0, rejected = 0;
    for (const auto& p : procs) {
      done += p->stats().done;
      rejected += p->stats().rejected;
    }
    return done == records - 40 && rejected == 40;
  }, 60s);
  for (auto& p : procs) p->stop();
  for (auto& r : runs) CHECK(r.get().has_value());
  REQUIRE(finished);

  std::map<std::pair<std::int32_t, std::int64_t>, std::vector<call>> by_record;
  for (const auto& c : calls) by_record[{c.partition, c.offset}].push_back(c);
  REQUIRE(by_record.size() == records);
  int two_members = 0;
  for (const auto& [pos, cs] : by_record) {
    const int n = static_cast<int>(pos.second * 2 + pos.first);  // partition i % 2 holds i at offset i / 2
    const std::size_t want = n % 10 == 1 ? 2 : n % 10 == 2 ? 3 : 1;
    REQUIRE_MESSAGE(cs.size() == want, "record ", n, " handled ", cs.size(), " times");
    for (std::size_t k = 0; k < cs.size(); ++k) CHECK(cs[k].delivery == static_cast<int>(k) + 1);
    if (cs.size() > 1) {
      // Released after the backoff, not at once, and redelivered.
      CHECK(cs[1].at - cs[0].at >= 250ms);
      // Later records of the partition were handled while it waited.
      const bool passed = std::any_of(calls.begin(), calls.end(), [&](const call& c) {
        return c.partition == pos.first && c.offset > pos.second && c.at > cs[0].at && c.at < cs[1].at;
      });
      CHECK_MESSAGE(passed, "nothing after record ", n, " was handled while it waited");
    }
    if (members_of[n].size() > 1) ++two_members;
  }
  MESSAGE(two_members, " retried records were handled by both members");

  // The broker copied each archived record to the DLQ once.
  REQUIRE(eventually([&] { return adm->describe_topic("jobs.dlq").has_value(); }, 30s));
  std::map<std::string, int> copies;
  REQUIRE(eventually([&] {
    copies.clear();
    for (const auto& r : read_topic(b, "jobs.dlq")) ++copies[r.value];
    return copies.size() >= 40;
  }, 30s));
  CHECK(copies.size() == 40);
  for (const auto& [v, k] : copies) {
    const int n = std::stoi(v);
    CHECK((n % 10 == 0 || n % 10 == 2));
    CHECK(k == 1);
  }
}

TEST_CASE("share processor: stop() gives a record waiting for its retry back at once, and bad configs are refused") {
  temp_dir dir;
  broker_process broker(dir / "data");
  const auto& b = broker.bootstrap();
  auto adm = connect_admin(b);
  REQUIRE(adm->create_topic("jobs", 1, 1).has_value());
  {
    producer_config pc;
    pc.bootstrap = b;
    auto p = producer::connect(pc);
    REQUIRE(p.has_value());
    REQUIRE((*p)->send_to("jobs", 0, std::nullopt, "x").get().has_value());
  }
  auto cfg = share_config_of(b, "crew");
  cfg.retry.initial_backoff = 20s;  // cut to half the 30 s lock: far beyond the test
  cfg.retry.max_backoff = 20s;
  auto p = share_processor::connect(cfg);
  REQUIRE(p.has_value());
  std::atomic<int> calls{0};
  auto run = std::async(std::launch::async, [&] {
    return (*p)->run([&](const record_view&) -> process_result {
      ++calls;
      return process_result::retry_later("no");
    });
  });
  REQUIRE(eventually([&] { return calls.load() == 1; }, 10s));
  (*p)->stop();
  REQUIRE(run.get().has_value());
  CHECK((*p)->stats().released == 1);
  // Another member gets it now, as its second delivery, not 30 s later.
  share_consumer_config sc;
  sc.bootstrap = b;
  sc.group_id = "crew";
  sc.fetch_max_wait = 100ms;
  auto other = share_consumer::connect(sc);
  REQUIRE(other.has_value());
  REQUIRE((*other)->subscribe({"jobs"}).has_value());
  std::vector<int> deliveries;
  CHECK(eventually([&] {
    auto got = (*other)->poll(200ms);
    if (got) for (const auto& r : *got) deliveries.push_back(r.delivery_count);
    return !deliveries.empty();
  }, 5s));
  CHECK(deliveries == std::vector<int>{2});

  auto bad = share_config_of(b, "");
  CHECK(share_processor::connect(bad).error().code == make_error_code(errc::invalid_argument));
  bad = share_config_of(b, "g");
  bad.topics.clear();
  CHECK(share_processor::connect(bad).error().code == make_error_code(errc::invalid_argument));
  bad = share_config_of(b, "g");
  bad.retry.max_attempts = 0;
  CHECK(share_processor::connect(bad).error().code == make_error_code(errc::invalid_argument));
  bad = share_config_of(b, "g");
  bad.retry.jitter = 1.5;
  CHECK(share_processor::connect(bad).error().code == make_error_code(errc::invalid_argument));
  // A consumer group's id is not a share group's.
  bad = share_config_of(b, "plain");
  consumer_config cc;
  cc.bootstrap = b;
  cc.group_id = "plain";
  auto plain = consumer::connect(cc);
  REQUIRE(plain.has_value());
  REQUIRE((*plain)->subscribe({"jobs"}).has_value());
  REQUIRE(eventually([&] { return (*plain)->poll(100ms).has_value() && !(*plain)->assignment().empty(); }, 10s));
  CHECK(share_processor::connect(bad).error().code == make_error_code(errc::inconsistent_group_type));
}
