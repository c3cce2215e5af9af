#include "broker/storage/cleaner.h"

#include <doctest/doctest.h>

#include <filesystem>

#include <unistd.h>

#include "broker/storage/clean_pass.h"
#include "broker/storage/errc.h"
#include "broker/storage/file.h"
#include "broker/storage/io_ring.h"
#include "broker/storage/log_manager.h"
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <thread>
#include "broker/storage/log.h"
#include "broker/storage/offset_map.h"
#include "broker/storage/segment.h"
#include "tests/support/compaction.h"

using namespace runnel;
using namespace runnel::storage;
using runnel::testing::check_latest;
using runnel::testing::key_model;
using runnel::testing::keyed_batch;
using runnel::testing::keyed_record;
using runnel::testing::log_fixture;
using runnel::testing::run;
using runnel::testing::served_records;

namespace {

constexpr timestamp_ms now_ms{100'000'000};

std::string key(int k) { return fmt::format("key-{:03}", k); }
std::string value(int k, int round) { return fmt::format("value-{:03}-{:03}", k, round); }

std::uint64_t one_record_batch_size() { return keyed_batch({{key(0), value(0, 0)}}, timestamp_ms(0)).size(); }

// A compacted log whose segments hold `per_segment` one-record batches.
struct compact_fixture {
  log_fixture f;
  key_model model;
  cleaner_config ccfg{true, 1 << 20, std::chrono::milliseconds(10)};
  std::unique_ptr<log_cleaner> cleaner;

  explicit compact_fixture(int per_segment = 4) {
    f.cfg.cleanup_compact = true;
    f.cfg.cleanup_delete = false;
    f.cfg.min_cleanable_dirty_ratio = 0.0;
    f.cfg.segment_bytes = static_cast<std::uint64_t>(per_segment) * one_record_batch_size();
    f.cfg.index_interval_bytes = 1;  // an index entry per batch: the index paths get exercised
    REQUIRE_FALSE(f.open());
  }
  // `rounds` passes over keys [0, keys), one record per batch, then a flush
  // (sealed segments must be durable before the cleaner takes them).
  void write(int keys, int rounds, int first_round = 0) {
    for (int r = first_round; r < first_round + rounds; ++r) {
      for (int k = 0; k < keys; ++k) put(k, value(k, r));
    }
    REQUIRE_FALSE(f.flush());
  }
  offset put(int k, std::optional<std::string> v, timestamp_ms ts = timestamp_ms(1000)) {
    return model.append(f, {{key(k), std::move(v)}}, ts);
  }
  std::optional<std::expected<clean_output, std::error_code>> clean(timestamp_ms now = now_ms) {
    if (!cleaner) cleaner = std::make_unique<log_cleaner>(ccfg);
    return run(f.io, cleaner->clean(*f.l, now));
  }
  clean_output must_clean(timestamp_ms now = now_ms) {
    auto r = clean(now);
    REQUIRE(r.has_value());
    REQUIRE_MESSAGE(r->has_value(), r->error().message());
    return **r;
  }
  std::vector<testing::served_record> records() { return served_records(f); }
  std::size_t count_key(int k) {
    std::size_t n = 0;
    for (const auto& r : records()) n += r.key == key(k) ? 1 : 0;
    return n;
  }
  ~compact_fixture() {
    if (f.l) f.close();
    if (cleaner) cleaner->stop();
  }
  compact_fixture(const compact_fixture&) = delete;
  compact_fixture& operator=(const compact_fixture&) = delete;
  compact_fixture(compact_fixture&&) = delete;
  compact_fixture& operator=(compact_fixture&&) = delete;
};

std::vector<std::filesystem::path> files_with(const std::filesystem::path& dir, const char* suffix) {
  std::vector<std::filesystem::path> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == suffix) out.push_back(e.path());
  }
  return out;
}

}  // namespace

TEST_CASE("cleaner: keeps the latest record per key across sealed segments, never touches the active one") {
  compact_fixture c;
  c.write(5, 4);  // 20 batches: segments of 4, the last one active
  const offset active_base = c.f.l->segment_bases().back();
  const auto before = c.records();
  auto out = c.must_clean();
  CHECK(out.records_removed > 0);
  CHECK(out.cleaned_end == active_base);
  CHECK(c.f.l->cleaner_checkpoint() == active_base);
  auto after = c.records();
  CHECK(check_latest(c.model, after, active_base) == "");
  CHECK(after.size() < before.size());
  // The active segment's records are all still there.
  std::size_t active_before = 0;
  std::size_t active_after = 0;
  for (const auto& r : before) active_before += r.off >= active_base ? 1 : 0;
  for (const auto& r : after) active_after += r.off >= active_base ? 1 : 0;
  CHECK(active_before == active_after);
  CHECK(c.f.l->log_start_offset() == offset(0));
  CHECK(c.f.l->log_end_offset() == offset(20));
  CHECK(files_with(c.f.dir, ".cleaned").empty());
  CHECK(files_with(c.f.dir, ".swap").empty());
}

TEST_CASE("cleaner: the content checker detects a lost latest record (negative control)") {
  compact_fixture c;
  c.write(5, 4);
  c.must_clean();
  auto got = c.records();
  REQUIRE(check_latest(c.model, got) == "");
  // Drop the latest record of key 2 from what the log served.
  auto latest = c.model.latest().at(key(2)).off;
  std::erase_if(got, [&](const auto& r) { return r.off == latest; });
  CHECK(check_latest(c.model, got) != "");
  // And an older value left behind where compaction ran is caught too.
  got = c.records();
  got.insert(got.begin(), testing::served_record{offset(-1), timestamp_ms(0), key(2), value(2, 0)});
  CHECK(check_latest(c.model, got, offset(20)) != "");
}

TEST_CASE("cleaner: a tombstone deletes its key and is itself removed after delete.retention.ms") {
  compact_fixture c;
  c.f.cfg.delete_retention_ms = std::chrono::milliseconds(10'000);
  c.f.l->set_config(c.f.cfg);
  c.write(4, 2);
  const offset tomb = c.put(1, std::nullopt, timestamp_ms(50'000));
  c.write(4, 2, 2);  // keys 0, 2, 3 move on; key 1 gets written again after the tombstone...
  // ...so write the tombstone again as key 1's latest.
  const offset tomb2 = c.put(1, std::nullopt, timestamp_ms(50'000));
  c.write(1, 4, 10);  // key 0 only: seals the tombstone's segment
  (void)tomb;
  // Inside delete.retention.ms the tombstone stays and older values of key 1 go.
  c.must_clean(timestamp_ms(55'000));
  auto got = c.records();
  CHECK(check_latest(c.model, got, c.f.l->cleaner_checkpoint()) == "");
  REQUIRE(c.count_key(1) == 1);
  CHECK(std::any_of(got.begin(), got.end(), [&](const auto& r) { return r.off == tomb2 && !r.value; }));
  // Past it, the tombstone goes too (the next pass: new dirty data).
  c.write(1, 4, 20);
  c.must_clean(timestamp_ms(60'001));
  CHECK(c.count_key(1) == 0);
  CHECK(check_latest(c.model, c.records()) == "");
}

TEST_CASE("cleaner: segments newer than min.compaction.lag.ms are not cleaned") {
  compact_fixture c;
  c.f.cfg.min_compaction_lag_ms = std::chrono::milliseconds(1000);
  c.f.l->set_config(c.f.cfg);
  // Old records (ts 1000), then new ones (ts 99'999'500) in later segments.
  for (int r = 0; r < 2; ++r) {
    for (int k = 0; k < 4; ++k) c.put(k, value(k, r), timestamp_ms(1000));
  }
  for (int r = 2; r < 5; ++r) {
    for (int k = 0; k < 4; ++k) c.put(k, value(k, r), timestamp_ms(now_ms.value() - 500));
  }
  REQUIRE_FALSE(c.f.flush());
  auto out = c.must_clean();
  // Only the two old segments were cleanable; within them round 0 goes.
  CHECK(out.cleaned_end == offset(8));
  auto got = c.records();
  for (const auto& r : got) {
    if (r.off >= offset(8)) continue;
    CHECK(r.value->ends_with("-001"));
  }
  // Every record of the lag window is still there.
  std::size_t recent = 0;
  for (const auto& r : got) recent += r.off >= offset(8) ? 1 : 0;
  CHECK(recent == 12);
  CHECK(check_latest(c.model, got) == "");
}

TEST_CASE("cleaner: a log below min.cleanable.dirty.ratio is not cleaned") {
  compact_fixture c;
  c.f.cfg.min_cleanable_dirty_ratio = 0.5;
  c.f.l->set_config(c.f.cfg);
  c.write(4, 4);  // 16 batches: segments 0, 4, 8 sealed, 12 active
  auto first = c.clean();
  REQUIRE(first.has_value());  // all dirty: ratio 1
  REQUIRE(first->has_value());
  const offset cp = c.f.l->cleaner_checkpoint();
  CHECK(cp == offset(12));
  // One more sealed segment: dirty 1 segment of bytes vs clean (smaller,
  // cleaned) ones; make the dirty part small: only 4 more records.
  c.write(4, 2, 4);  // seals segment 12 (4 batches), 16 becomes active... 20 active
  auto bases = c.f.l->segment_bases();
  CHECK(bases.back() == offset(20));
  // dirty = 2 segments, clean = 3 cleaned segments of 1-2 batches each.
  c.f.cfg.min_cleanable_dirty_ratio = 0.99;
  c.f.l->set_config(c.f.cfg);
  CHECK_FALSE(c.clean().has_value());
  CHECK(c.f.l->cleaner_checkpoint() == cp);
  c.f.cfg.min_cleanable_dirty_ratio = 0.5;
  c.f.l->set_config(c.f.cfg);
  REQUIRE(c.clean().has_value());
  CHECK(c.f.l->cleaner_checkpoint() == offset(20));
  CHECK(check_latest(c.model, c.records(), offset(20)) == "");
}

TEST_CASE("cleaner: a tiny offset map still cleans correctly, over several passes") {
  compact_fixture c;
  c.ccfg.dedupe_buffer_bytes = 4 * offset_map::slot_bytes;  // 3 keys per pass
  c.write(8, 4);  // 32 batches of 8 keys
  const offset active_base = c.f.l->segment_bases().back();
  int passes = 0;
  while (c.f.l->cleaner_checkpoint() < active_base && passes < 50) {
    auto out = c.must_clean();
    CHECK(out.cleaned_end > out.cleaned_end - 1);
    ++passes;
    CHECK(check_latest(c.model, c.records()) == "");
  }
  CHECK(passes > 1);
  CHECK(c.f.l->cleaner_checkpoint() == active_base);
  CHECK(check_latest(c.model, c.records(), c.f.l->cleaner_checkpoint()) == "");
}

TEST_CASE("offset_map: holds at most 90% of its slots and keeps the largest offset per hash") {
  offset_map m(10 * offset_map::slot_bytes);
  CHECK(m.capacity() == 9);
  for (int i = 0; i < 9; ++i) {
    auto k = key(i);
    CHECK(m.put(hash_key(std::as_bytes(std::span(k))), offset(i)));
  }
  auto extra = key(99);
  CHECK_FALSE(m.put(hash_key(std::as_bytes(std::span(extra))), offset(99)));
  auto k3 = key(3);
  CHECK(m.put(hash_key(std::as_bytes(std::span(k3))), offset(50)));  // an existing key still updates
  CHECK(m.put(hash_key(std::as_bytes(std::span(k3))), offset(40)));  // never backwards
  CHECK(m.get(hash_key(std::as_bytes(std::span(k3)))) == offset(50));
  CHECK_FALSE(m.get(hash_key(std::as_bytes(std::span(extra)))).has_value());
  m.clear();
  CHECK(m.size() == 0);
}

TEST_CASE("cleaner: read at a removed offset returns the next batch, also across a segment boundary") {
  compact_fixture c;
  // Segment [0,4): k0 k1 k2 k3; segment [4,8): k0 k1 k2 k9; [8,12): k3 k4 k5 k6; active: k7
  for (int k : {0, 1, 2, 3}) c.put(k, value(k, 0));
  for (int k : {0, 1, 2, 9}) c.put(k, value(k, 1));
  for (int k : {3, 4, 5, 6}) c.put(k, value(k, 2));
  c.put(7, value(7, 3));
  REQUIRE_FALSE(c.f.flush());
  c.must_clean();
  // Segment 0 lost everything; segment 4 keeps 4..7; segment 8 keeps all.
  auto r = run(c.f.io, c.f.l->read(offset(0), 1 << 20));
  REQUIRE(r.has_value());
  REQUIRE(r->has_value());
  CHECK((*r)->first_offset == offset(4));
  r = run(c.f.io, c.f.l->read(offset(3), 1 << 20));
  REQUIRE((r.has_value() && r->has_value()));
  CHECK((*r)->first_offset == offset(4));
  CHECK(c.f.l->log_start_offset() == offset(0));
  CHECK(check_latest(c.model, c.records(), offset(12)) == "");
  // The last offset of a sealed segment removed: 7 (k9 stays, so use a new layout below).
}

TEST_CASE("cleaner: read at a removed last offset of a sealed segment returns the next segment's first batch") {
  compact_fixture c;
  for (int k : {0, 1, 2, 3}) c.put(k, value(k, 0));
  for (int k : {3, 4, 5, 6}) c.put(k, value(k, 1));
  c.put(7, value(7, 2));
  REQUIRE_FALSE(c.f.flush());
  c.must_clean();
  auto r = run(c.f.io, c.f.l->read(offset(3), 1 << 20));
  REQUIRE((r.has_value() && r->has_value()));
  CHECK((*r)->first_offset == offset(4));
  r = run(c.f.io, c.f.l->read(offset(2), 1 << 20));
  REQUIRE((r.has_value() && r->has_value()));
  CHECK((*r)->first_offset == offset(2));
  auto ts = run(c.f.io, c.f.l->offset_for_timestamp(timestamp_ms(0)));
  REQUIRE(ts.has_value());
  CHECK(*ts == offset(0));
}

TEST_CASE("cleaner: read in the middle of a cleaned batch returns the whole batch") {
  compact_fixture c(2);
  // One batch of 4 records (offsets 0..3), keys a b c d; then b and d again.
  c.model.append(c.f, {{key(0), value(0, 0)}, {key(1), value(1, 0)}, {key(2), value(2, 0)}, {key(3), value(3, 0)}},
                 timestamp_ms(1000));
  c.model.append(c.f, {{key(1), value(1, 1)}, {key(3), value(3, 1)}}, timestamp_ms(2000));
  c.put(9, value(9, 9));
  REQUIRE_FALSE(c.f.flush());
  REQUIRE(c.f.l->segment_count() == 3);
  c.must_clean();
  for (offset from : {offset(0), offset(1), offset(2), offset(3)}) {
    auto r = run(c.f.io, c.f.l->read(from, 1));
    REQUIRE((r.has_value() && r->has_value()));
    CHECK((*r)->first_offset == offset(0));
    CHECK((*r)->next_offset == offset(4));  // the batch keeps its offset range
  }
  auto got = c.records();
  CHECK(check_latest(c.model, got, offset(6)) == "");
  REQUIRE(got.size() == 5);
  CHECK(got[0].off == offset(0));
  CHECK(got[1].off == offset(2));
}

TEST_CASE("cleaner: a reader holding a range of a replaced segment still reads its old bytes") {
  compact_fixture c;
  c.write(5, 4);
  auto r = run(c.f.io, c.f.l->read(offset(0), 1 << 20));
  REQUIRE((r.has_value() && r->has_value()));
  const auto range = **r;
  c.must_clean();
  std::vector<std::byte> bytes(range.length);
  REQUIRE(::pread(range.file->fd(), bytes.data(), bytes.size(), static_cast<off_t>(range.pos.value())) ==
          static_cast<ssize_t>(bytes.size()));
  auto h = schemas::decode_header(bytes);
  REQUIRE(h.has_value());
  CHECK(h->base_offset == offset(0));
  CHECK_FALSE(schemas::check_crc(std::span(bytes).first(h->length), *h));
  // The log itself now serves the cleaned segment.
  auto now = run(c.f.io, c.f.l->read(offset(0), 1 << 20));
  REQUIRE((now.has_value() && now->has_value()));
  CHECK((*now)->file != range.file);
}

TEST_CASE("cleaner: a cleaned log reopens with its gaps, and cleans again") {
  compact_fixture c;
  c.write(5, 4);
  c.must_clean();
  const auto before = c.records();
  const offset cp = c.f.l->cleaner_checkpoint();
  REQUIRE_FALSE(c.f.close());
  c.f.reopen();
  CHECK(c.f.l->cleaner_checkpoint() == cp);
  CHECK(c.records().size() == before.size());
  CHECK(check_latest(c.model, c.records(), cp) == "");
  // After a crash (no clean close) too, and with every byte verified.
  c.f.crash();
  c.f.cfg.verify_on_open = true;
  c.f.reopen();
  CHECK(c.records().size() == before.size());
  c.write(5, 2, 10);
  c.must_clean();
  CHECK(check_latest(c.model, c.records(), c.f.l->cleaner_checkpoint()) == "");
}

TEST_CASE("cleaner: a gap above the cleaner checkpoint is still a torn write") {
  compact_fixture c;
  c.write(5, 4);
  c.must_clean();
  // Forget the checkpoint: the gaps are no longer the cleaner's.
  std::filesystem::remove(c.f.dir / cleaner_checkpoint_name);
  c.f.crash();
  c.f.l.reset();
  // Below the recovery point a gap is corruption: the log does not open.
  CHECK(c.f.open() == errc::corrupt_log);
}

namespace {

// Leaves the directory as a crash at `step` of the swap protocol would.
enum class swap_step { cleaned, checkpoint, some_swapped, all_swapped, old_deleted, some_final };

void crash_at(compact_fixture& c, swap_step step) {
  auto job = c.f.l->plan_clean(now_ms);
  REQUIRE(job.has_value());
  offset_map map(1 << 20);
  auto out = run_clean_pass(*job, map, [] { return false; });
  REQUIRE(out.has_value());
  REQUIRE(out->replaced.size() >= 2);
  c.f.crash();
  const auto& dir = c.f.dir;
  auto rename = [&](offset base, const char* ext, const char* from, const char* to) {
    auto dst = to == nullptr ? segment_path(dir, base, ext) : clean_path(dir, base, ext, to);
    std::filesystem::rename(clean_path(dir, base, ext, from), dst);
  };
  if (step == swap_step::cleaned) return;
  REQUIRE_FALSE(write_file_atomic(dir / cleaner_checkpoint_name, encode_cleaner_checkpoint(out->cleaned_end)));
  if (step == swap_step::checkpoint) return;
  const auto& bases = out->replaced;
  for (std::size_t i = 0; i < bases.size(); ++i) {
    for (const char* ext : segment_exts) {
      // some_swapped: the first segment's log and index only.
      if (step == swap_step::some_swapped && (i > 0 || std::string(ext) == ".timeindex")) continue;
      rename(bases[i], ext, cleaned_suffix, swap_suffix);
    }
  }
  if (step == swap_step::some_swapped || step == swap_step::all_swapped) return;
  if (step == swap_step::old_deleted) {
    for (const char* ext : segment_exts) std::filesystem::remove(segment_path(dir, bases[0], ext));
    return;
  }
  rename(bases[0], ".log", swap_suffix, nullptr);
  rename(bases[0], ".index", swap_suffix, nullptr);
}

}  // namespace

TEST_CASE("cleaner: a crash at every step of the swap leaves a readable log with the same latest per key") {
  for (auto step : {swap_step::cleaned, swap_step::checkpoint, swap_step::some_swapped, swap_step::all_swapped,
                    swap_step::old_deleted, swap_step::some_final}) {
    CAPTURE(static_cast<int>(step));
    compact_fixture c;
    c.write(5, 4);
    const auto before = c.records();
    crash_at(c, step);
    c.f.reopen();
    CHECK(files_with(c.f.dir, ".cleaned").empty());
    CHECK(files_with(c.f.dir, ".swap").empty());
    auto got = c.records();
    CHECK(check_latest(c.model, got) == "");
    CHECK(c.f.l->log_end_offset() == offset(20));
    const bool swapped = step != swap_step::cleaned && step != swap_step::checkpoint;
    if (swapped) {
      CHECK(got.size() < before.size());  // the pass was completed
      CHECK(check_latest(c.model, got, c.f.l->cleaner_checkpoint()) == "");
    } else {
      CHECK(got.size() == before.size());  // the pass was undone
    }
    // And it cleans (again) from there.
    c.write(5, 1, 10);
    c.must_clean();
    CHECK(check_latest(c.model, c.records(), c.f.l->cleaner_checkpoint()) == "");
  }
}

TEST_CASE("cleaner: a truncation during a pass abandons it") {
  compact_fixture c;
  c.write(5, 4);
  auto job = c.f.l->plan_clean(now_ms);
  REQUIRE(job.has_value());
  offset_map map(1 << 20);
  auto out = run_clean_pass(*job, map, [] { return false; });
  REQUIRE(out.has_value());
  CHECK_FALSE(files_with(c.f.dir, ".cleaned").empty());
  // The truncation cancels the pass and waits for its end.
  std::optional<std::error_code> truncated;
  asio::co_spawn(c.f.io, c.f.l->truncate(offset(6)), [&](std::exception_ptr, std::error_code ec) { truncated = ec; });
  auto finished = run(c.f.io, c.f.l->finish_clean(*job, out));
  CHECK(finished == std::errc::operation_canceled);
  REQUIRE(truncated.has_value());
  CHECK_FALSE(*truncated);
  CHECK(files_with(c.f.dir, ".cleaned").empty());
  CHECK(c.f.l->log_end_offset() == offset(6));
  CHECK(c.records().size() == 6);
}

TEST_CASE("cleaner: a producer's batch with fewer records than offsets is refused") {
  compact_fixture c;
  auto bytes = keyed_batch({{key(0), value(0, 0)}, {key(1), value(1, 0)}}, timestamp_ms(1000));
  auto view = schemas::batch_view::open(bytes, schemas::verify_limits{});
  REQUIRE(view.has_value());
  std::vector<std::size_t> keep{1};
  auto sparse = schemas::rebuild_batch(*view, keep);
  CHECK(run(c.f.io, c.f.l->append(sparse)).error() == errc::bad_batch);
}

TEST_CASE("log_cleaner: run() cleans compacted logs of a manager and returns after stop()") {
  testing::temp_dir tmp;
  asio::io_context io;
  io_ring ring(io);
  log_config cfg;
  cfg.cleanup_compact = true;
  cfg.min_cleanable_dirty_ratio = 0;
  cfg.segment_bytes = 4 * one_record_batch_size();
  log_manager logs(ring, tmp.path(), [&](const topic_partition&) { return cfg; });
  auto* l = *run(io, logs.get_or_create(topic_partition{"t", partition_id(0)}));
  for (int r = 0; r < 3; ++r) {
    for (int k = 0; k < 4; ++k) {
      auto b = keyed_batch({{key(k), value(k, r)}}, timestamp_ms(1000));
      REQUIRE(run(io, l->append(b)));
    }
  }
  REQUIRE_FALSE(run(io, l->flush()));
  log_cleaner cleaner(cleaner_config{true, 1 << 20, std::chrono::milliseconds(5)});
  bool done = false;
  asio::co_spawn(io, cleaner.run(logs), [&](std::exception_ptr) { done = true; });
  auto turn = [&] {
    io.restart();  // run() left it stopped
    io.run_for(std::chrono::milliseconds(10));
  };
  for (int i = 0; i < 400 && l->cleaner_checkpoint() == offset(0); ++i) turn();
  CHECK(l->cleaner_checkpoint() == offset(8));
  std::thread stopper([&] { cleaner.stop(); });
  for (int i = 0; i < 400 && !done; ++i) turn();
  stopper.join();
  CHECK(done);
  REQUIRE_FALSE(run(io, logs.close_all()));
}
