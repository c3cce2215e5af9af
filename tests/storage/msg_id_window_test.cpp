// The message-id window in the log: repeats dropped and answered with the
// first copy's offset, across reopen, crash, truncation and replication,
// together with the idempotent producer.

#include <doctest/doctest.h>

#include <chrono>
#include <map>

#include "broker/storage/errc.h"
#include "broker/storage/log.h"
#include "schemas/batch.h"
#include "tests/support/log_fixture.h"

using namespace runnel;
using namespace runnel::storage;
using runnel::testing::log_fixture;
using runnel::testing::run;

namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// One record per id ("" = no id), value "v<id or index>", stamped `ts`.
std::vector<std::byte> batch_of(const std::vector<std::string>& ids, std::int64_t ts = now_ms()) {
  schemas::batch_builder b;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    std::string value = "v" + (ids[i].empty() ? std::to_string(i) : ids[i]);
    std::vector<schemas::header_in> hs;
    if (!ids[i].empty()) hs.push_back({msg_id_header, std::as_bytes(std::span(ids[i].data(), ids[i].size()))});
    b.add(std::nullopt, std::as_bytes(std::span(value.data(), value.size())), timestamp_ms(ts + static_cast<std::int64_t>(i)), hs);
  }
  return b.finish();
}

append_result append(log_fixture& f, std::vector<std::byte> b) {
  auto r = run(f.io, f.l->append(std::span(b)));
  if (!r) FAIL("append: " << r.error().message());
  return *r;
}

void windowed(log_fixture& f, std::chrono::milliseconds window = std::chrono::minutes(10), std::size_t max_ids = 1000) {
  f.cfg.dedup_window = window;
  f.cfg.dedup_max_ids = max_ids;
}

}  // namespace

TEST_CASE("msg-id window: repeats are dropped and answered with the first copy, a mixed batch keeps the new ones in order") {
  log_fixture f;
  windowed(f);
  REQUIRE_FALSE(f.open());
  auto first = append(f, batch_of({"a", "b", ""}));
  CHECK(first.base_offset == offset(0));
  CHECK(first.dropped.empty());
  auto mixed = append(f, batch_of({"b", "c", "a", "", "c"}));  // b, a: earlier; c twice in the batch
  REQUIRE(mixed.dropped.size() == 3);
  CHECK(mixed.dropped[0] == std::pair<std::int32_t, offset>{0, offset(1)});
  CHECK(mixed.dropped[1] == std::pair<std::int32_t, offset>{2, offset(0)});
  CHECK(mixed.dropped[2] == std::pair<std::int32_t, offset>{4, offset(4)});
  auto all_old = append(f, batch_of({"a", "c"}));
  CHECK(all_old.dropped.size() == 2);
  CHECK(all_old.base_offset == offset(0));
  auto stored = f.values();
  CHECK(stored == std::map<std::int64_t, std::string>{{0, "va"}, {1, "vb"}, {2, "v2"}, {4, "vc"}, {6, "v3"}});
  CHECK(f.l->msg_ids()->size() == 3);
  // A plain batch on the same topic is appended untouched.
  CHECK(append(f, batch_of({"", ""})).dropped.empty());
}

TEST_CASE("msg-id window: still dropped after a clean reopen and after a crash, accepted again past the window") {
  log_fixture f;
  windowed(f, std::chrono::milliseconds(60'000));
  REQUIRE_FALSE(f.open());
  append(f, batch_of({"x", "y"}));
  append(f, batch_of({"old"}, now_ms() - 120'000));  // already outside the window
  REQUIRE_FALSE(f.close());
  f.reopen();
  CHECK(append(f, batch_of({"y"})).dropped.size() == 1);
  CHECK(append(f, batch_of({"old"})).dropped.empty());  // expired: a new first copy
  REQUIRE_FALSE(f.flush());
  f.crash();
  f.reopen();
  auto again = append(f, batch_of({"x", "old"}));
  REQUIRE(again.dropped.size() == 2);
  CHECK(again.dropped[0].second == offset(0));
  CHECK(again.dropped[1].second == offset(3));
}

TEST_CASE("msg-id window: a truncation forgets ids cut off, a follower keeps the leader's ids") {
  log_fixture leader;
  log_fixture follower;
  windowed(leader);
  windowed(follower);
  REQUIRE_FALSE(leader.open());
  REQUIRE_FALSE(follower.open());
  append(leader, batch_of({"p", "q"}));
  append(leader, batch_of({"r"}));
  std::vector<std::vector<std::byte>> bytes;
  leader.read_all(offset(0), &bytes);
  for (auto& b : bytes) REQUIRE(run(follower.io, follower.l->append_replica(b)).has_value());
  auto as_leader = append(follower, batch_of({"q", "r", "s"}));
  CHECK(as_leader.dropped.size() == 2);
  REQUIRE_FALSE(run(leader.io, leader.l->truncate(offset(2))));
  CHECK(append(leader, batch_of({"r"})).dropped.empty());  // cut off: new again
  CHECK(append(leader, batch_of({"p"})).dropped.size() == 1);
}

TEST_CASE("msg-id window: an id over 256 bytes is refused, and the bound on ids evicts the oldest early") {
  log_fixture f;
  windowed(f, std::chrono::minutes(10), 3);
  REQUIRE_FALSE(f.open());
  auto long_id = batch_of({std::string(257, 'z')});
  CHECK(run(f.io, f.l->append(std::span(long_id))).error() == make_error_code(errc::bad_msg_id));
  CHECK(append(f, batch_of({std::string(256, 'z')})).dropped.empty());
  append(f, batch_of({"1", "2", "3"}));
  CHECK(f.l->msg_ids()->size() == 3);
  CHECK(f.l->msg_ids()->evicted_early() == 1);
  CHECK(append(f, batch_of({std::string(256, 'z')})).dropped.empty());  // evicted: accepted again
}

TEST_CASE("msg-id window: with the idempotent producer, a batch of repeats still takes its sequence range") {
  log_fixture f;
  windowed(f);
  REQUIRE_FALSE(f.open());
  auto b0 = batch_of({"m", "n"});
  schemas::stamp_producer(b0, producer_id(3), 0, 0);
  append(f, b0);
  auto b1 = batch_of({"m", "n"});  // new sequences, repeated ids
  schemas::stamp_producer(b1, producer_id(3), 0, 2);
  auto r1 = append(f, b1);
  CHECK(r1.dropped.size() == 2);
  auto b2 = batch_of({"o", "m"});  // the next sequence: not a gap
  schemas::stamp_producer(b2, producer_id(3), 0, 4);
  auto r2 = append(f, b2);
  CHECK(r2.dropped.size() == 1);
  CHECK_FALSE(r2.duplicate);
  auto retry = b2;
  CHECK(append(f, retry).duplicate);  // the idempotent retry of a rebuilt batch
  CHECK(f.values().size() == 3);
}

TEST_CASE("msg-id window: a repeat within one batch is dropped even when its timestamp is older than the window") {
  log_fixture f;
  windowed(f, std::chrono::minutes(10));
  REQUIRE_FALSE(f.open());
  // Producer timestamps an hour old: each id is past the window as soon as
  // it is written, but the batch's own repeats still go.
  const std::int64_t old = now_ms() - 3'600'000;
  auto r = append(f, batch_of({"k", "k", "m", "k"}, old));
  REQUIRE(r.dropped.size() == 2);
  CHECK(r.dropped[0] == std::pair<std::int32_t, offset>(1, offset(0)));
  CHECK(r.dropped[1] == std::pair<std::int32_t, offset>(3, offset(0)));
  CHECK(f.values() == std::map<std::int64_t, std::string>{{0, "vk"}, {2, "vm"}});
  // The next batch with the same old ids: past the window, written again.
  CHECK(append(f, batch_of({"k"}, old)).dropped.empty());
}
