// Idempotent producers in the log: the sequence rules (producer_state.h),
// and that the state survives what the log survives (close, crash,
// truncation, replication) because the log rebuilds it.

#include "broker/storage/producer_state.h"

#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>

#include "broker/storage/errc.h"
#include "broker/storage/log.h"
#include "tests/support/batches.h"
#include "tests/support/log_fixture.h"

using namespace runnel;
using namespace runnel::storage;
using runnel::testing::log_fixture;
using runnel::testing::make_batch;
using runnel::testing::run;

namespace {

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// A batch of `records` from producer `pid`/`epoch` starting at `seq`, stamped now.
std::vector<std::byte> idem(std::int64_t pid, std::int16_t epoch, std::int32_t seq, int records = 1) {
  auto b = make_batch(records, 16, timestamp_ms(now_ms()));
  schemas::stamp_producer(b, producer_id(pid), epoch, seq);
  return b;
}

schemas::batch_header header(const std::vector<std::byte>& b, std::int64_t base) {
  auto h = schemas::decode_header(b);
  REQUIRE(h.has_value());
  h->base_offset = offset(base);
  return *h;
}

constexpr std::int64_t never_expired = 0;

}  // namespace

TEST_CASE("producer state: a new producer starts at sequence 0, an unknown one elsewhere is refused") {
  producer_state s;
  CHECK(s.check(header(idem(7, 0, 0), 0), never_expired).verdict == sequence_verdict::append);
  CHECK(s.check(header(idem(7, 0, 5), 0), never_expired).verdict == sequence_verdict::unknown_producer);
}

TEST_CASE("producer state: the next sequence appends, a gap is out of order, the last 5 batches are duplicates") {
  producer_state s;
  std::int64_t base = 0;
  for (int i = 0; i < 6; ++i) {  // sequences 0..11, 2 records each
    auto h = header(idem(7, 0, i * 2, 2), base);
    REQUIRE(s.check(h, never_expired).verdict == sequence_verdict::append);
    s.apply(h);
    base += 2;
  }
  CHECK(s.check(header(idem(7, 0, 12, 2), 0), never_expired).verdict == sequence_verdict::append);
  CHECK(s.check(header(idem(7, 0, 14, 2), 0), never_expired).verdict == sequence_verdict::out_of_order);
  auto dup = s.check(header(idem(7, 0, 4, 2), 0), never_expired);
  CHECK(dup.verdict == sequence_verdict::duplicate);
  CHECK(dup.original.base == offset(4));
  CHECK(dup.original.last == offset(5));
  // The oldest batch (0..1) is past the 5 kept: no longer answered.
  CHECK(s.check(header(idem(7, 0, 0, 2), 0), never_expired).verdict == sequence_verdict::out_of_order);
  // Same start, other length: not the same batch.
  CHECK(s.check(header(idem(7, 0, 4, 1), 0), never_expired).verdict == sequence_verdict::out_of_order);
}

TEST_CASE("producer state: an older epoch is fenced, a newer one starts again at 0") {
  producer_state s;
  s.apply(header(idem(7, 3, 0), 0));
  CHECK(s.check(header(idem(7, 2, 1), 1), never_expired).verdict == sequence_verdict::fenced);
  CHECK(s.check(header(idem(7, 4, 1), 1), never_expired).verdict == sequence_verdict::out_of_order);
  auto bumped = header(idem(7, 4, 0), 1);
  CHECK(s.check(bumped, never_expired).verdict == sequence_verdict::append);
  s.apply(bumped);
  CHECK(s.find(7)->epoch == 4);
  CHECK(s.check(header(idem(7, 3, 1), 2), never_expired).verdict == sequence_verdict::fenced);
}

TEST_CASE("producer state: a producer silent past the expiration is unknown, and may start again at 0") {
  producer_state s;
  auto h = header(idem(7, 0, 0), 0);
  s.apply(h);
  const std::int64_t after = h.max_timestamp.value() + 1;
  CHECK(s.check(header(idem(7, 0, 1), 1), after).verdict == sequence_verdict::unknown_producer);
  CHECK(s.check(header(idem(7, 0, 1), 1), never_expired).verdict == sequence_verdict::append);
  auto again = header(idem(7, 0, 0), 1);
  CHECK(s.check(again, after).verdict == sequence_verdict::append);
  s.apply(again);
  CHECK(s.find(7)->batches.size() == 1);  // the old sequences are forgotten
  CHECK(s.expire(now_ms() + 60'000) == 1);
  CHECK(s.size() == 0);
}

TEST_CASE("producer state: snapshots round-trip, and a damaged one is refused") {
  producer_state s;
  for (std::int64_t pid = 1; pid <= 3; ++pid) {
    for (int i = 0; i < 7; ++i) s.apply(header(idem(pid, 1, i), pid * 100 + i));
  }
  auto bytes = s.encode();
  auto back = producer_state::decode(bytes);
  REQUIRE(back.has_value());
  CHECK(back->size() == 3);
  CHECK(back->encode() == bytes);
  CHECK(back->find(2)->batches.size() == producer_batches_kept);
  CHECK(back->find(2)->batches.back().base == offset(206));
  bytes[20] ^= std::byte{1};
  CHECK_FALSE(producer_state::decode(bytes).has_value());
  CHECK_FALSE(producer_state::decode(std::span<const std::byte>(bytes).first(3)).has_value());
}

TEST_CASE("log: a retried idempotent batch is answered with its first offsets and not written twice") {
  log_fixture f;
  REQUIRE_FALSE(f.open());
  auto first = idem(9, 0, 0, 3);
  CHECK(f.append(first) == offset(0));
  CHECK(f.append(idem(9, 0, 3, 2)) == offset(3));
  auto retry = run(f.io, f.l->append(std::span(first)));
  REQUIRE(retry.has_value());
  CHECK(retry->duplicate);
  CHECK(retry->base_offset == offset(0));
  CHECK(retry->last_offset == offset(2));
  CHECK(f.read_all(offset(0)).size() == 2);

  auto gap = idem(9, 0, 9);
  auto r = run(f.io, f.l->append(std::span(gap)));
  CHECK(r.error() == make_error_code(errc::out_of_order_sequence));
  CHECK(f.append(idem(9, 0, 5)) == offset(5));  // the next sequence
  CHECK(f.append(idem(9, 1, 0)) == offset(6));  // epoch 1 takes over
  auto old_epoch = idem(9, 0, 6);
  CHECK(run(f.io, f.l->append(std::span(old_epoch))).error() == make_error_code(errc::producer_fenced));
  auto stranger = idem(10, 0, 4);
  CHECK(run(f.io, f.l->append(std::span(stranger))).error() == make_error_code(errc::unknown_producer_id));
  CHECK(f.read_all(offset(0)).size() == 4);  // refusals wrote nothing
}

TEST_CASE("log: producer state survives a clean close, a crash, and a damaged snapshot") {
  log_fixture f;
  f.cfg.segment_bytes = 1 << 20;
  REQUIRE_FALSE(f.open());
  std::vector<std::vector<std::byte>> sent;
  for (int i = 0; i < 4; ++i) {
    sent.push_back(idem(5, 0, i * 2, 2));
    f.append(sent.back());
  }
  auto is_duplicate = [&](const std::vector<std::byte>& b) {
    auto copy = b;
    auto r = run(f.io, f.l->append(std::span(copy)));
    return r.has_value() && r->duplicate;
  };
  REQUIRE_FALSE(f.close());
  CHECK(std::filesystem::exists(producer_snapshot_path(f.dir, offset(8))));  // written at close
  f.reopen();
  CHECK(is_duplicate(sent[3]));
  CHECK(is_duplicate(sent[1]));
  CHECK_FALSE(is_duplicate(idem(5, 0, 8, 2)));  // the next batch is new (offsets 8-9)

  // A crash: no snapshot at the end, the batches after the older one replay.
  REQUIRE_FALSE(f.flush());
  f.crash();
  f.reopen();
  CHECK(is_duplicate(sent[3]));
  CHECK(is_duplicate(idem(5, 0, 8, 2)));

  // A torn snapshot is deleted and the state comes from the log itself.
  REQUIRE_FALSE(f.close());
  for (auto at : producer_snapshots(f.dir)) runnel::testing::flip_byte(producer_snapshot_path(f.dir, at), 9);
  f.reopen();
  CHECK(is_duplicate(sent[2]));
  CHECK(is_duplicate(idem(5, 0, 8, 2)));
  CHECK(f.l->producers().find(5)->batches.back().base == offset(8));
}

TEST_CASE("log: truncation forgets the producer batches it cuts off") {
  log_fixture f;
  REQUIRE_FALSE(f.open());
  f.append(idem(5, 0, 0, 2));
  auto cut = idem(5, 0, 2, 2);
  f.append(cut);
  REQUIRE_FALSE(run(f.io, f.l->truncate(offset(2))));
  auto again = cut;
  auto r = run(f.io, f.l->append(std::span(again)));
  REQUIRE(r.has_value());
  CHECK_FALSE(r->duplicate);  // appended anew at the same offsets
  CHECK(r->base_offset == offset(2));
}

TEST_CASE("log: a follower keeps the leader's producer state from what it replicates") {
  log_fixture leader;
  log_fixture follower;
  REQUIRE_FALSE(leader.open());
  REQUIRE_FALSE(follower.open());
  auto b0 = idem(11, 2, 0, 3);
  auto b1 = idem(11, 2, 3, 1);
  leader.append(b0);
  leader.append(b1);
  std::vector<std::vector<std::byte>> bytes;
  leader.read_all(offset(0), &bytes);
  REQUIRE(bytes.size() == 2);
  for (auto& b : bytes) REQUIRE(run(follower.io, follower.l->append_replica(b)).has_value());
  // The follower, now leading, answers the retry as the old leader would.
  auto retry = b1;
  auto r = run(follower.io, follower.l->append(std::span(retry)));
  REQUIRE(r.has_value());
  CHECK(r->duplicate);
  CHECK(r->base_offset == offset(3));
  auto next = idem(11, 2, 4);
  auto n = run(follower.io, follower.l->append(std::span(next)));
  REQUIRE(n.has_value());
  CHECK_FALSE(n->duplicate);
  CHECK(n->base_offset == offset(4));
}

TEST_CASE("log: a producer snapshot at roll is written in the background, and one that cannot be written costs only replay") {
  log_fixture f;
  f.cfg.segment_bytes = 4096;  // a roll every few batches
  REQUIRE_FALSE(f.open());
  // The snapshot the first roll would write cannot be: its temp name is a
  // directory.
  std::filesystem::path blocked;
  int sent = 0;
  while (f.l->segment_bases().size() < 3 && sent < 1000) {
    if (f.l->segment_bases().size() == 1) {
      blocked = producer_snapshot_path(f.dir, f.l->log_end_offset());
      std::filesystem::create_directories(std::filesystem::path(blocked.string() + ".tmp"));
    }
    f.append(idem(7, 0, sent, 1));
    ++sent;
  }
  REQUIRE(f.l->segment_bases().size() == 3);
  const auto bases = f.l->segment_bases();
  REQUIRE_FALSE(f.close());  // waits for the background writes
  CHECK_FALSE(std::filesystem::exists(producer_snapshot_path(f.dir, bases[1])));  // the blocked one
  CHECK(std::filesystem::exists(producer_snapshot_path(f.dir, bases[2])));        // the next roll's
  // The log took every append, and its state is whole.
  f.reopen();
  CHECK(f.l->producers().find(7)->batches.back().base == offset(sent - 1));
  auto again = idem(7, 0, sent - 1, 1);
  auto r = run(f.io, f.l->append(std::span(again)));
  REQUIRE(r.has_value());
  CHECK(r->duplicate);
}
