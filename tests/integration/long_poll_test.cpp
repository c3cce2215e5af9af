// A fetch waiting for min_bytes sleeps until enough has been appended: a
// trickle of small records below min_bytes must not make it spin (it used
// to re-read and wake at once on every round until max_wait).

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "runnel/admin.h"
#include "runnel/consumer.h"
#include "runnel/producer.h"
#include "tests/support/broker_process.h"
#include "tests/support/temp_dir.h"

using namespace runnel;
using namespace std::chrono_literals;
using runnel::testing::broker_process;
using runnel::testing::temp_dir;

namespace {

// utime + stime of a process, in clock ticks.
long long cpu_ticks(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream rest(stat.substr(stat.rfind(')') + 2));  // after "pid (comm) "
  std::string field;
  long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoll(field);
    if (i == 15) stime = std::stoll(field);
  }
  return utime + stime;
}

// A one-partition topic and a producer that sends each record at once.
result<std::unique_ptr<producer>> topic_and_producer(const broker_process& broker, const std::string& topic) {
  admin_config ac;
  ac.bootstrap = broker.bootstrap();
  auto a = admin::connect(ac);
  REQUIRE(a.has_value());
  REQUIRE((*a)->create_topic(topic, 1).has_value());
  producer_config pc;
  pc.bootstrap = broker.bootstrap();
  pc.linger = 0ms;
  auto p = producer::connect(pc);
  REQUIRE(p.has_value());
  return p;
}

}  // namespace

TEST_CASE("fetch: a long poll for min_bytes sleeps through a trickle of small appends (broker CPU measured)") {
  temp_dir dir;
  broker_process broker(dir / "data");
  auto p = topic_and_producer(broker, "trickle");
  REQUIRE((*p)->send("trickle", std::nullopt, "first").get().has_value());
  consumer_config cc;
  cc.bootstrap = broker.bootstrap();
  cc.fetch_min_bytes = 1 << 20;  // far more than the trickle brings
  cc.fetch_max_wait = 3000ms;
  auto c = consumer::connect(cc);
  REQUIRE(c.has_value());
  REQUIRE((*c)->assign({{"trickle", 0}}).has_value());
  // The first fetch (already satisfiable? no: 1 record < 1 MiB) waits; a
  // record every 100 ms for 2.5 s keeps appending below min_bytes.
  const long long hz = ::sysconf(_SC_CLK_TCK);
  std::size_t got = 0;
  std::thread trickle([&] {
    for (int i = 0; i < 25; ++i) {
      std::this_thread::sleep_for(100ms);
      (void)(*p)->send("trickle", std::nullopt, "small-" + std::to_string(i)).get();
    }
  });
  const long long before = cpu_ticks(broker.pid());
  const auto start = std::chrono::steady_clock::now();
  while (got < 26 && std::chrono::steady_clock::now() - start < 15s) {
    auto recs = (*c)->poll(500ms);
    REQUIRE(recs.has_value());
    got += recs->size();
  }
  const long long used = cpu_ticks(broker.pid()) - before;
  trickle.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  MESSAGE("broker CPU " << 1000.0 * static_cast<double>(used) / static_cast<double>(hz) << " ms over " << seconds
                        << " s of long polls");
  CHECK(got == 26);  // everything arrives once max_wait passes
  // A spinning long poll burns about a core for the whole wait (2-3 s
  // here); sleeping through 26 appends costs a few milliseconds.
  CHECK(static_cast<double>(used) / static_cast<double>(hz) < 0.4);
}

// A fetch that an append did not satisfy must still be woken by the next
// one. notify() kept such a waiter by moving it onto itself, which empties
// a std::weak_ptr (libstdc++): the fetch then slept out its whole max_wait
// however much came after (in cluster mode, every follower long poll that
// sat through one append missed the rest: acks=all at 43 k rec/s).
TEST_CASE("fetch: a long poll wakes once its min_bytes arrive over several appends, not at max_wait") {
  temp_dir dir;
  broker_process broker(dir / "data");
  auto p = topic_and_producer(broker, "pieces");
  consumer_config cc;
  cc.bootstrap = broker.bootstrap();
  cc.fetch_min_bytes = 3000;     // more than one record brings, less than two
  cc.fetch_max_wait = 20000ms;   // far longer than the test waits
  cc.start_at_earliest = true;
  auto c = consumer::connect(cc);
  REQUIRE(c.has_value());
  REQUIRE((*c)->assign({{"pieces", 0}}).has_value());
  std::thread pieces([&] {
    std::this_thread::sleep_for(300ms);  // the fetch is asleep by now
    for (int i = 0; i < 2; ++i) {
      (void)(*p)->send("pieces", std::nullopt, std::string(2000, static_cast<char>('a' + i))).get();
      std::this_thread::sleep_for(300ms);
    }
  });
  const auto start = std::chrono::steady_clock::now();
  std::size_t got = 0;
  while (got < 2 && std::chrono::steady_clock::now() - start < 30s) {
    auto recs = (*c)->poll(25s);
    REQUIRE(recs.has_value());
    got += recs->size();
  }
  const auto waited = std::chrono::steady_clock::now() - start;
  pieces.join();
  CHECK(got == 2);
  // Woken by the second append (about 0.6 s in), not at max_wait (20 s).
  CHECK(waited < 10s);
}
