// Leader epochs in the log (KIP-101): the epoch cache, stamped appends,
// replica appends, truncation and reopening.
#include <doctest/doctest.h>

#include <fstream>

#include "broker/storage/epoch_cache.h"
#include "broker/storage/errc.h"
#include "schemas/batch.h"
#include "tests/support/log_fixture.h"

using namespace runnel;
using namespace runnel::testing;

namespace {

// Appends a copy of `batch` as leader of `epoch`; returns its base offset.
offset append_in_epoch(log_fixture& f, std::int32_t epoch, int records = 1) {
  auto batch = make_batch(records);
  auto r = run(f.io, f.l->append(batch, epoch));
  REQUIRE(r.has_value());
  return r->base_offset;
}

}  // namespace

TEST_CASE("epoch cache: end of an epoch is the next epoch's start, or the log end for the latest") {
  temp_dir tmp;
  auto c = storage::epoch_cache::load(tmp.path());
  REQUIRE(c.has_value());
  CHECK_FALSE(c->end_for(5, offset(0)).has_value());
  CHECK(c->assign(1, offset(0)));
  CHECK(c->assign(3, offset(10)));
  CHECK_FALSE(c->assign(2, offset(20)));  // older than the latest: ignored
  REQUIRE_FALSE(c->save());
  CHECK(c->end_for(1, offset(25)) == std::pair{1, offset(10)});
  CHECK(c->end_for(2, offset(25)) == std::pair{1, offset(10)});  // largest epoch <= 2 is 1
  CHECK(c->end_for(3, offset(25)) == std::pair{3, offset(25)});
  CHECK(c->end_for(9, offset(25)) == std::pair{3, offset(25)});
  CHECK_FALSE(c->end_for(0, offset(25)).has_value());
  auto again = storage::epoch_cache::load(tmp.path());
  REQUIRE(again.has_value());
  CHECK(again->entries() == c->entries());
  CHECK(c->truncate_from(offset(10)));
  CHECK(c->latest() == 1);
}

TEST_CASE("epoch cache: a malformed checkpoint is refused, not guessed") {
  temp_dir tmp;
  {
    std::ofstream(tmp / "leader-epoch-checkpoint") << "runnel-epochs 1\n3 10\n2 20\n";
  }
  auto c = storage::epoch_cache::load(tmp.path());
  REQUIRE_FALSE(c.has_value());
  CHECK(c.error() == storage::errc::corrupt_log);
  {
    std::ofstream(tmp / "leader-epoch-checkpoint") << "something else\n";
  }
  CHECK_FALSE(storage::epoch_cache::load(tmp.path()).has_value());
}

TEST_CASE("log: a leader's append stamps its epoch and the cache records where each epoch starts") {
  log_fixture f;
  REQUIRE_FALSE(f.open());
  append_in_epoch(f, 0, 3);
  append_in_epoch(f, 0, 2);
  append_in_epoch(f, 4, 1);
  auto headers = f.read_all(offset(0));
  REQUIRE(headers.size() == 3);
  CHECK(headers[0].epoch == leader_epoch(0));
  CHECK(headers[2].epoch == leader_epoch(4));
  CHECK(f.l->latest_epoch() == 4);
  CHECK(f.l->end_for_epoch(0) == std::pair{0, offset(5)});
  CHECK(f.l->end_for_epoch(3) == std::pair{0, offset(5)});
  CHECK(f.l->end_for_epoch(4) == std::pair{4, offset(6)});

  // Reopened: the epochs come back from the checkpoint.
  REQUIRE_FALSE(f.close());
  auto& l = f.reopen();
  CHECK(l.end_for_epoch(0) == std::pair{0, offset(5)});
  CHECK(l.latest_epoch() == 4);

  // Truncating into epoch 0 drops epoch 4 with its data.
  REQUIRE_FALSE(run(f.io, l.truncate(offset(5))));
  CHECK(l.latest_epoch() == 0);
  CHECK(l.end_for_epoch(4) == std::pair{0, offset(5)});
}

TEST_CASE("log: a replica append keeps the leader's offsets and refuses a gap") {
  log_fixture leader;
  REQUIRE_FALSE(leader.open());
  append_in_epoch(leader, 2, 2);
  append_in_epoch(leader, 3, 1);
  std::vector<std::vector<std::byte>> bytes;
  auto headers = leader.read_all(offset(0), &bytes);
  REQUIRE(bytes.size() == 2);

  log_fixture follower;
  REQUIRE_FALSE(follower.open());
  auto gap = run(follower.io, follower.l->append_replica(bytes[1]));
  REQUIRE_FALSE(gap.has_value());
  CHECK(gap.error() == storage::errc::offset_mismatch);
  for (auto& b : bytes) REQUIRE(run(follower.io, follower.l->append_replica(b)).has_value());
  CHECK(follower.l->log_end_offset() == offset(3));
  CHECK(follower.l->end_for_epoch(2) == std::pair{2, offset(2)});
  CHECK(follower.l->latest_epoch() == 3);
  auto copied = follower.read_all(offset(0));
  REQUIRE(copied.size() == 2);
  CHECK(copied[1].base_offset == headers[1].base_offset);
  CHECK(copied[1].epoch == leader_epoch(3));
}

TEST_CASE("log: reset_to empties the log and starts it again at a later offset, also after reopening") {
  log_fixture f;
  REQUIRE_FALSE(f.open());
  append_in_epoch(f, 1, 5);
  REQUIRE_FALSE(run(f.io, f.l->reset_to(offset(1000))));
  CHECK(f.l->log_start_offset() == offset(1000));
  CHECK(f.l->log_end_offset() == offset(1000));
  CHECK_FALSE(f.l->latest_epoch().has_value());
  CHECK(f.l->segment_bases() == std::vector<offset>{offset(1000)});
  // A replica append continues at the new start.
  log_fixture leader;
  REQUIRE_FALSE(leader.open());
  REQUIRE_FALSE(run(leader.io, leader.l->reset_to(offset(1000))));
  append_in_epoch(leader, 2, 3);
  std::vector<std::vector<std::byte>> bytes;
  leader.read_all(offset(1000), &bytes);
  REQUIRE(bytes.size() == 1);
  REQUIRE(run(f.io, f.l->append_replica(bytes[0])).has_value());
  CHECK(f.l->log_end_offset() == offset(1003));
  REQUIRE_FALSE(f.close());
  auto& l = f.reopen();
  CHECK(l.log_start_offset() == offset(1000));
  CHECK(l.log_end_offset() == offset(1003));
  CHECK(l.latest_epoch() == 2);
}

TEST_CASE("log: appends behind a new epoch's first batch wait for its checkpoint write and keep their order") {
  log_fixture f;
  REQUIRE_FALSE(f.open());
  append_in_epoch(f, 1, 2);
  // Three appends at once: the first starts epoch 2 (its checkpoint write
  // goes through the ring), the next two queue behind it; then epoch 3.
  std::vector<std::vector<std::byte>> batches;
  for (int i = 0; i < 4; ++i) batches.push_back(make_batch(1));
  std::vector<std::int64_t> bases(4, -1);
  const std::int32_t epochs[] = {2, 2, 2, 3};
  for (int i = 0; i < 4; ++i) {
    asio::co_spawn(f.io, f.l->append(batches[i], epochs[i]), [&bases, i](std::exception_ptr, auto r) {
      if (r) bases[i] = r->base_offset.value();
    });
  }
  f.io.restart();
  f.io.run();
  CHECK(bases == std::vector<std::int64_t>{2, 3, 4, 5});
  auto headers = f.read_all(offset(0));
  REQUIRE(headers.size() == 5);
  CHECK(headers[1].epoch == leader_epoch(2));
  CHECK(headers[4].epoch == leader_epoch(3));
  std::ifstream in(f.dir / "leader-epoch-checkpoint");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(text == "runnel-epochs 1\n1 0\n2 2\n3 5\n");
  f.crash();
  auto& l = f.reopen();
  CHECK(l.end_for_epoch(2) == std::pair{2, offset(5)});
  CHECK(l.latest_epoch() == 3);
}
