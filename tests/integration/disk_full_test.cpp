// A full disk, for real: the broker's data directory on a size-limited
// tmpfs the test mounts (root; ../shared/MACHINE.md). Produce fills it:
// below storage.min.free.bytes produce answers the retriable STORAGE_FULL,
// nothing acknowledged is lost, reads and topic create/delete keep
// working, and appends resume by themselves once space is back.

#include <doctest/doctest.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "runnel/admin.h"
#include "runnel/consumer.h"
#include "runnel/producer.h"
#include "tests/support/broker_process.h"
#include "tests/support/eventually.h"
#include "tests/support/small_filesystem.h"
#include "tests/support/temp_dir.h"

using namespace runnel;
using namespace runnel::testing;
using namespace std::chrono_literals;

namespace {

struct outcomes {
  std::mutex mu;
  std::map<std::int64_t, std::string> acked;  // offset -> value
  std::map<std::string, int> errors;          // error text -> count
  std::atomic<long> storage_full{0};
  std::atomic<long> timed_out{0};  // waited in the producer, retrying STORAGE_FULL, past delivery.timeout
  std::atomic<long> other{0};
};

// Sends `n` records of `size` bytes to t/0 and waits for every outcome.
void send_records(const std::string& bootstrap, const std::string& topic, int first, int n, std::size_t size,
                  outcomes& out) {
  producer_config pc;
  pc.bootstrap = bootstrap;
  pc.acks = -1;
  pc.delivery_timeout = 3s;  // a full disk stays full here: give up soon
  pc.request_timeout = 2s;
  pc.retry_backoff_max = 200ms;
  auto p = producer::connect(pc);
  REQUIRE_MESSAGE(p.has_value(), (p ? "" : p.error().what()));
  for (int i = first; i < first + n; ++i) {
    std::string v = "r-" + std::to_string(i) + "-";
    v.resize(size, 'x');
    (*p)->send_to(topic, 0, std::nullopt, v, {}, [&out, v](const result<delivery>& r) {
      std::lock_guard g(out.mu);
      if (r) {
        out.acked[r->offset] = v;
      } else {
        ++out.errors[r.error().message];
        if (r.error().code == make_error_code(errc::storage_full)) {
          ++out.storage_full;
        } else if (r.error().code == make_error_code(errc::timed_out)) {
          ++out.timed_out;
        } else {
          ++out.other;
        }
      }
    });
  }
  (void)(*p)->flush(60s);
}

std::map<std::int64_t, std::string> read_all(const std::string& bootstrap, const std::string& topic) {
  consumer_config cc;
  cc.bootstrap = bootstrap;
  auto c = consumer::connect(cc);
  REQUIRE(c.has_value());
  REQUIRE((*c)->assign({{topic, 0}}).has_value());
  std::map<std::int64_t, std::string> got;
  for (int i = 0; i < 100; ++i) {
    auto batch = (*c)->poll(200ms);
    if (!batch) break;
    for (const auto& r : *batch) got[r.offset] = std::string(r.value.value_or(""));
    const auto hw = (*c)->high_watermark({topic, 0});
    if (hw >= 0 && (*c)->position({topic, 0}) >= hw) break;
  }
  return got;
}

}  // namespace

TEST_CASE("disk full: produce gets STORAGE_FULL below storage.min.free.bytes, nothing acknowledged is lost, deleting a topic frees space and appends resume") {
  temp_dir dir;
  small_filesystem fs(dir / "mnt", 48ULL << 20);
  REQUIRE_MESSAGE(fs.mounted(), "cannot mount a tmpfs (this test needs root, as ../shared/MACHINE.md says)");
  broker_process b(dir / "mnt" / "data", {"--set", "storage.min.free.bytes=8388608"});
  admin_config ac;
  ac.bootstrap = b.bootstrap();
  auto a = admin::connect(ac);
  REQUIRE(a.has_value());
  REQUIRE((*a)->create_topic("fill", 1, 1).has_value());

  // 60 MB of records into a 48 MB filesystem.
  outcomes first;
  send_records(b.bootstrap(), "fill", 0, 6'000, 10'000, first);
  std::string errors;
  for (const auto& [e, n] : first.errors) errors += e + " x" + std::to_string(n) + "; ";
  MESSAGE("acknowledged " << first.acked.size() << ", storage full " << first.storage_full.load() << ", errors: " << errors);
  CHECK(first.acked.size() > 1'000);     // it wrote until the disk was nearly full
  CHECK(first.storage_full.load() > 0);  // then refused, with the retriable error
  CHECK(first.other.load() == 0);  // nothing else went wrong
  CHECK(first.acked.size() + first.storage_full.load() + first.timed_out.load() == 6'000);

  // Every acknowledged record reads back, intact.
  auto stored = read_all(b.bootstrap(), "fill");
  std::size_t missing = 0;
  for (const auto& [off, v] : first.acked) {
    auto it = stored.find(off);
    if (it == stored.end() || it->second != v) ++missing;
  }
  CHECK(missing == 0);

  // Metadata writes have the reserve: a topic can be created while full.
  REQUIRE((*a)->create_topic("after", 1, 1).has_value());
  // Deleting a topic frees its space, and appends resume by themselves.
  REQUIRE((*a)->delete_topic("fill").has_value());
  std::size_t acked_after = 0;
  CHECK(eventually(
      [&] {
        outcomes second;
        send_records(b.bootstrap(), "after", 0, 100, 10'000, second);
        acked_after += second.acked.size();
        return second.acked.size() == 100;
      },
      20s));
  auto back = read_all(b.bootstrap(), "after");
  CHECK(back.size() == acked_after);  // every acknowledged record, of every attempt
}

TEST_CASE("disk full: a write that meets ENOSPC past the free-space guard answers STORAGE_FULL, and the partition takes appends again once space is back, without a restart") {
  temp_dir dir;
  small_filesystem fs(dir / "mnt", 32ULL << 20);
  REQUIRE_MESSAGE(fs.mounted(), "cannot mount a tmpfs (this test needs root, as ../shared/MACHINE.md says)");
  // No reserve: the guard cannot stop the writes first.
  broker_process b(dir / "mnt" / "data", {"--set", "storage.min.free.bytes=0"});
  admin_config ac;
  ac.bootstrap = b.bootstrap();
  auto a = admin::connect(ac);
  REQUIRE(a.has_value());
  REQUIRE((*a)->create_topic("t", 1, 1).has_value());
  outcomes before;
  send_records(b.bootstrap(), "t", 0, 100, 10'000, before);
  REQUIRE(before.acked.size() == 100);

  // The disk fills behind the broker's back (another tenant of the volume).
  fs.fill();
  outcomes full;
  send_records(b.bootstrap(), "t", 100, 300, 10'000, full);
  std::string errors;
  for (const auto& [e, n] : full.errors) errors += e + " x" + std::to_string(n) + "; ";
  MESSAGE("while full: acknowledged " << full.acked.size() << ", errors: " << errors);
  CHECK(full.acked.size() < 300);
  CHECK(full.other.load() == 0);  // STORAGE_FULL (or timed out retrying it), never STORAGE_ERROR

  // Space back: the same partition takes appends again by itself.
  fs.unfill();
  outcomes after;
  CHECK(eventually(
      [&] {
        outcomes attempt;
        send_records(b.bootstrap(), "t", 400, 50, 10'000, attempt);
        std::lock_guard g(after.mu);
        after.acked.insert(attempt.acked.begin(), attempt.acked.end());
        return attempt.acked.size() == 50;
      },
      20s));

  // Every acknowledged record is there, and the offsets are dense: the
  // refused writes left no hole and no bytes behind.
  auto stored = read_all(b.bootstrap(), "t");
  std::size_t missing = 0;
  for (const auto* o : {&before, &full, &after}) {
    for (const auto& [off, v] : o->acked) {
      auto it = stored.find(off);
      if (it == stored.end() || it->second != v) ++missing;
    }
  }
  CHECK(missing == 0);
  REQUIRE_FALSE(stored.empty());
  CHECK(stored.begin()->first == 0);
  CHECK(stored.rbegin()->first == static_cast<std::int64_t>(stored.size()) - 1);
  CHECK(b.stop() == 0);
}
