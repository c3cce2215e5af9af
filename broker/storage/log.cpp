#include "broker/storage/log.h"

#include <fcntl.h>
#include <unistd.h>
#include <linux/falloc.h>
#include <sys/uio.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iterator>
#include <ranges>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/this_coro.hpp>

#include "broker/storage/errc.h"
#include "broker/storage/file.h"
#include "broker/storage/io_ring.h"
#include "broker/storage/logger.h"
#include "broker/storage/segment.h"
#include "schemas/assert.h"
#include "schemas/batch.h"

namespace runnel::storage {

namespace {

// `recovery-point`: 16 bytes, little endian: u32 magic "RNRP", i64 offset,
// u32 CRC-32C of the first 12 bytes. Replaced atomically (temp + rename).
constexpr std::uint32_t recovery_point_magic = 0x50524e52;  // "RNRP"
constexpr const char* recovery_point_name = "recovery-point";
constexpr std::size_t max_iov = 1024;

std::optional<offset> read_recovery_point(const std::filesystem::path& dir) {
  auto v = read_offset_file(dir / recovery_point_name, recovery_point_magic);
  if (!v) return std::nullopt;
  return offset(*v);
}

timestamp_ms wall_clock_now() {
  return timestamp_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count());
}

}  // namespace

struct log::pending_write {
  std::shared_ptr<segment> seg;
  file_pos pos;
  std::span<const std::byte> bytes;
  offset next;
  completion done;
  // Starts a new leader epoch: not written (nor anything queued behind it)
  // before the epoch checkpoint that records it is durable; the checkpoint
  // write of epoch generation `held_until` releases it.
  std::uint64_t held_until = 0;
};

namespace {
std::atomic<bool> preallocation_allowed{true};
}  // namespace

void set_preallocation_allowed(bool allowed) noexcept { preallocation_allowed.store(allowed, std::memory_order_relaxed); }

log::log(io_ring& ring, asio::any_io_executor ex, std::filesystem::path dir, topic_partition tp, log_config cfg)
    : ring_(ring), ex_(std::move(ex)), dir_(std::move(dir)), tp_(std::move(tp)), cfg_(cfg), preallocate_(cfg.preallocate_bytes > 0) {}

log::~log() {
  RUNNEL_ASSERT(!writing_ && !syncing_ && saving_snapshots_ == 0 && queue_.empty(), "[{}] destroyed with I/O in flight",
                tp_);
}

asio::awaitable<std::expected<std::unique_ptr<log>, std::error_code>> log::open(io_ring& ring,
                                                                              std::filesystem::path dir,
                                                                              topic_partition tp,
                                                                              log_config cfg) {
  auto ex = co_await asio::this_coro::executor;
  std::unique_ptr<log> l(new log(ring, ex, std::move(dir), std::move(tp), cfg));
  if (auto ec = co_await l->do_open()) co_return std::unexpected(ec);
  co_return l;
}

asio::awaitable<std::error_code> log::do_open() {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);  // its entry is fsynced below, with the first segment's
  if (ec) co_return ec;
  std::filesystem::remove(dir_ / (std::string(recovery_point_name) + ".tmp"), ec);
  std::filesystem::remove(dir_ / (std::string(cleaner_checkpoint_name) + ".tmp"), ec);
  auto epochs = epoch_cache::load(dir_);
  if (!epochs) co_return epochs.error();
  epochs_.emplace(std::move(*epochs));
  // A cleaning pass that a crash interrupted: finished or undone before
  // the segments are listed (clean_pass.h, docs/storage_format.md).
  if (auto sec = recover_clean_files(dir_, tp_)) co_return sec;

  std::vector<offset> bases;
  for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
    if (auto base = parse_segment_name(entry.path())) bases.push_back(*base);
  }
  if (ec) co_return ec;
  std::sort(bases.begin(), bases.end());

  if (bases.empty()) {
    auto seg = std::make_shared<segment>(dir_, offset(0), cfg_);
    if (auto cec = seg->create()) co_return cec;
    segments_.push_back(std::move(seg));
    if (auto fec = co_await sync_dir()) co_return fec;
    // The partition directory may be new too: without an fsync of the data
    // directory its entry, and every record under it, can vanish at a power
    // loss (tests/integration/power_loss_test.cpp lost every acked record).
    auto parent = dir_.parent_path();
    if (auto pec = co_await sync_dir(std::move(parent))) co_return pec;
    if (epochs_->clear()) {
      if (auto eec = co_await save_epochs_now()) co_return eec;
    }
    remove_producer_snapshots(offset(0), offset(-1));  // of an earlier life of this directory
    if (cfg_.dedup_window.count() > 0) msg_ids_.emplace(cfg_.dedup_window, cfg_.dedup_max_ids);
    co_return co_await persist_recovery_point(offset(0));
  }

  auto known = read_recovery_point(dir_);
  if (!known) {
    // Unknown: the sealed segments are taken as fsynced, so damage in one
    // of them fails the open (corruption) instead of truncating the log
    // there and deleting every later segment; only the last segment may
    // end in a torn write.
    const bool exists = std::filesystem::exists(dir_ / recovery_point_name);
    logger().warn("[{}] {} is {}: every segment but the last ({}) is taken as fsynced; a damaged batch in one of them "
                  "fails the open rather than truncating the log",
                  tp_, (dir_ / recovery_point_name).string(), exists ? "unreadable" : "missing", bases.back());
  }
  offset recovery = known.value_or(bases.back());
  recovery_point_ = recovery;
  cleaned_end_ = read_cleaner_checkpoint(dir_).value_or(bases.front());
  for (std::size_t i = 0; i < bases.size(); ++i) {
    auto seg = std::make_shared<segment>(dir_, bases[i], cfg_);
    if (auto oec = seg->open_existing()) co_return oec;
    seg->allow_gaps_below(cleaned_end_);
    // Crash rule: segments continue each other densely, except where the
    // cleaner removed the last batches of one (the gap starts below its checkpoint).
    const bool cleaned_gap = !segments_.empty() && seg->base() > segments_.back()->next_offset() &&
                             segments_.back()->next_offset() < cleaned_end_;
    if (!segments_.empty() && seg->base() != segments_.back()->next_offset() && !cleaned_gap) {
      if (seg->base() < recovery) {
        logger().error("[{}] corrupt log: {} starts at offset {} but the previous segment ends at {}", tp_,
                       seg->log_path().string(), seg->base(), segments_.back()->next_offset());
        co_return make_error_code(errc::corrupt_log);
      }
      logger().warn("[{}] {} does not continue the log (starts at {}, expected {}): deleting it and later segments",
                    tp_, seg->log_path().string(), seg->base(), segments_.back()->next_offset());
      for (std::size_t j = i; j < bases.size(); ++j) segment(dir_, bases[j], cfg_).remove_files();
      break;
    }
    auto r = co_await seg->recover(ring_, cfg_.verify_on_open);
    if (!r) co_return r.error();
    segments_.push_back(seg);
    if (r->end == scan_end::clean) continue;
    // Crash rule: below the recovery point every byte was fsynced, so a bad
    // batch there is corruption; at or above it, a write torn by a crash.
    if (r->next_offset < recovery) {
      logger().error("[{}] corrupt log: {} at position {} (offset {}): {}; it lies below the recovery point {}",
                     tp_, seg->log_path().string(), r->stop, r->next_offset, r->reason, recovery);
      co_return make_error_code(errc::corrupt_log);
    }
    logger().warn("[{}] torn write: {} at position {} (offset {}): {}; truncating the log there", tp_,
                  seg->log_path().string(), r->stop, r->next_offset, r->reason);
    if (auto tec = co_await seg->truncate_to(ring_, r->stop, r->next_offset)) co_return tec;
    for (std::size_t j = i + 1; j < bases.size(); ++j) {
      logger().warn("[{}] deleting segment {} after the torn write", tp_, bases[j]);
      segment(dir_, bases[j], cfg_).remove_files();
    }
    break;
  }

  // What was at or above the recovery point may not be durable yet: make
  // it so now, then the whole log is durable and the point moves to its end.
  for (const auto& seg : segments_) {
    if (seg->next_offset() > recovery && seg->written().value() > 0) {
      if (auto sec = co_await ring_.fdatasync(seg->fd())) co_return sec;
    }
    seg->mark_synced(seg->written());
  }
  next_offset_ = written_end_ = durable_end_ = segments_.back()->next_offset();
  cleaned_end_ = std::clamp(cleaned_end_, log_start_offset(), next_offset_);
  // Epochs that start at or past the end have no data (a torn tail).
  if (epochs_->truncate_from(next_offset_)) {
    if (auto eec = co_await save_epochs_now()) co_return eec;
  }
  if (auto pec = co_await rebuild_producers()) co_return pec;
  if (auto mec = co_await rebuild_msg_ids()) co_return mec;
  if (recovery_point_ != durable_end_) co_return co_await persist_recovery_point(durable_end_);
  co_return std::error_code{};
}

// --- idempotent producers ----------------------------------------------------

asio::awaitable<std::error_code> log::rebuild_producers() {
  producers_.clear();
  remove_producer_snapshots(log_start_offset(), next_offset_);
  offset from = log_start_offset();
  auto snaps = producer_snapshots(dir_);
  for (auto it = snaps.rbegin(); it != snaps.rend(); ++it) {
    const auto path = producer_snapshot_path(dir_, *it);
    std::ifstream in(path, std::ios::binary);
    std::vector<char> raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto s = producer_state::decode(std::as_bytes(std::span(raw)));
    if (s) {
      producers_ = std::move(*s);
      from = *it;
      break;
    }
    // Snapshots are written without fsync: a crash may tear one.
    logger().warn("[{}] producer snapshot {} is unreadable; deleting it, using an older one", tp_, path.string());
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
  // The batches after it: their headers are enough.
  std::size_t replayed = 0;
  for (const auto& seg : segments_) {
    if (seg->written_next() <= from || seg->written().value() == 0) continue;
    file_pos pos{0};
    if (from > seg->base()) {
      auto b = co_await seg->find_batch(ring_, from);
      if (!b) co_return b.error();
      pos = b->pos;
    }
    std::array<std::byte, schemas::batch_header_size> head{};
    while (pos < seg->written()) {
      if (auto ec = co_await ring_.read_exact(seg->fd(), head, pos.value())) co_return ec;
      auto h = schemas::decode_header(head);
      if (!h) co_return make_error_code(errc::corrupt_log);  // recovery verified these bytes
      producers_.apply(*h);
      ++replayed;
      pos = file_pos(pos.value() + h->length);
    }
  }
  if (producers_.size() > 0) {
    logger().info("[{}] {} idempotent producers from offset {} ({} batches replayed)", tp_, producers_.size(), from,
                  replayed);
  }
  co_return std::error_code{};
}

// --- message-id window -------------------------------------------------------

namespace {

// The record's runnel.msg.id, if it has one.
std::optional<std::span<const std::byte>> msg_id_of(const schemas::record_view& r) {
  for (std::size_t i = 0; i < r.header_count(); ++i) {
    if (r.header_key(i) == msg_id_header) return r.header_value(i);
  }
  return std::nullopt;
}

std::string_view as_text(std::span<const std::byte> b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

}  // namespace

void log::set_config(const log_config& cfg) {
  cfg_ = cfg;
  if (cfg_.dedup_window.count() <= 0) {
    msg_ids_.reset();
  } else if (!msg_ids_) {
    msg_ids_.emplace(cfg_.dedup_window, cfg_.dedup_max_ids);
  } else {
    msg_ids_->set_limits(cfg_.dedup_window, cfg_.dedup_max_ids);
  }
}

void log::note_msg_ids(const schemas::batch_view& view) {
  msg_ids_->expire(wall_clock_now().value());  // a follower frees expired ids as a leader does
  const std::uint64_t before = msg_ids_->evicted_early();
  for (std::size_t i = 0; i < view.record_count(); ++i) {
    auto r = view.record(i);
    if (auto id = msg_id_of(r)) msg_ids_->add(as_text(*id), r.off, r.timestamp.value());
  }
  warn_if_evicted(before);
}

void log::warn_if_evicted(std::uint64_t before) {
  // A line per 10,000 ids that left early, not one per batch.
  if (before / 10000 != msg_ids_->evicted_early() / 10000) {
    logger().warn("[{}] message-id window over dedup.window.max.ids {}: {} ids left it early so far", tp_,
                  cfg_.dedup_max_ids, msg_ids_->evicted_early());
  }
}

asio::awaitable<std::error_code> log::rebuild_msg_ids() {
  msg_ids_.reset();
  if (cfg_.dedup_window.count() <= 0) co_return std::error_code{};
  msg_ids_.emplace(cfg_.dedup_window, cfg_.dedup_max_ids);
  const auto started = std::chrono::steady_clock::now();
  auto from = co_await offset_for_timestamp(timestamp_ms(wall_clock_now().value() - cfg_.dedup_window.count()));
  if (!from) co_return from.error();
  if (!*from) co_return std::error_code{};  // every batch is older than the window
  std::vector<std::byte> buf;
  for (const auto& seg : segments_) {
    if (seg->written_next() <= **from || seg->written().value() == 0) continue;
    file_pos pos{0};
    if (**from > seg->base()) {
      auto b = co_await seg->find_batch(ring_, **from);
      if (!b) co_return b.error();
      pos = b->pos;
    }
    while (pos < seg->written()) {
      std::array<std::byte, schemas::batch_header_size> head{};
      if (auto ec = co_await ring_.read_exact(seg->fd(), head, pos.value())) co_return ec;
      auto h = schemas::decode_header(head);
      if (!h) co_return make_error_code(errc::corrupt_log);
      buf.resize(h->length);
      if (auto ec = co_await ring_.read_exact(seg->fd(), buf, pos.value())) co_return ec;
      auto view = schemas::batch_view::open(buf, schemas::verify_limits{h->length});
      if (!view) co_return make_error_code(errc::corrupt_log);
      note_msg_ids(*view);
      pos = file_pos(pos.value() + h->length);
    }
  }
  logger().info("[{}] message-id window: {} ids from offset {} in {} ms", tp_, msg_ids_->size(), **from,
                std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count());
  co_return std::error_code{};
}

void log::snapshot_producers() {
  producers_.expire(wall_clock_now().value() - cfg_.producer_id_expiration.count());
  ++saving_snapshots_;  // before the spawn: quiesce() sees it at once
  asio::co_spawn(ex_, write_producer_snapshot(next_offset_, producers_.encode()), asio::detached);
}

asio::awaitable<void> log::write_producer_snapshot(offset at, std::vector<std::byte> bytes) {
  const auto path = producer_snapshot_path(dir_, at);
  auto tmp = path;
  tmp += ".tmp";
  std::error_code ec;
  {
    auto fd = file_handle::open(tmp, O_WRONLY | O_CREAT | O_TRUNC);
    ec = fd ? co_await ring_.write_all(fd->get(), bytes, 0) : fd.error();
  }
  if (!ec) ec = co_await ring_.rename(tmp.c_str(), path.c_str());
  if (ec) {
    logger().warn("[{}] cannot write producer snapshot {}: {}", tp_, path.string(), ec.message());
    std::error_code rec;
    std::filesystem::remove(tmp, rec);
  }
  --saving_snapshots_;
  maybe_notify_idle();
}

void log::remove_producer_snapshots(offset from, offset to) {
  for (auto at : producer_snapshots(dir_)) {
    if (at >= from && (to < offset(0) || at <= to)) continue;
    std::error_code ec;
    std::filesystem::remove(producer_snapshot_path(dir_, at), ec);
  }
}

std::error_code log::check_usable() const {
  if (closed_) return errc::log_closed;
  if (failure_) return errc::log_offline;
  return {};
}

void log::fail(std::error_code ec, const char* what) {
  if (failure_) return;
  failure_ = ec;
  logger().error("[{}] {} failed: {}; the log is offline until restart", tp_, what, ec.message());
}

offset log::log_start_offset() const { return segments_.front()->base(); }

std::uint64_t log::size_bytes() const {
  std::uint64_t total = 0;
  for (const auto& s : segments_) total += s->size().value();
  return total;
}

std::vector<offset> log::segment_bases() const {
  std::vector<offset> out;
  for (const auto& s : segments_) out.push_back(s->base());
  return out;
}

std::shared_ptr<segment> log::segment_for(offset o) const {
  auto it = std::upper_bound(segments_.begin(), segments_.end(), o,
                             [](offset v, const std::shared_ptr<segment>& s) { return v < s->base(); });
  RUNNEL_ASSERT(it != segments_.begin(), "[{}] offset {} below the log start", tp_, o);
  return *std::prev(it);
}

// --- append -----------------------------------------------------------------

std::error_code log::maybe_roll(std::uint32_t incoming_bytes) {
  const auto& active = segments_.back();
  if (active->empty()) return {};
  bool full = active->size().value() + incoming_bytes > cfg_.segment_bytes;
  bool old = std::chrono::steady_clock::now() - active->created() >= cfg_.segment_ms;
  return full || old ? roll() : std::error_code{};
}

std::error_code log::roll() {
  auto seg = std::make_shared<segment>(dir_, next_offset_, cfg_);
  seg->allow_gaps_below(cleaned_end_);
  if (auto ec = seg->create()) {
    logger().error("[{}] cannot create segment {}: {}", tp_, seg->log_path().string(), ec.message());
    return ec;
  }
  logger().info("[{}] rolled to segment {} ({} bytes in the previous one)", tp_, next_offset_,
                segments_.back()->size());
  segments_.push_back(std::move(seg));
  entries_unsynced_ = true;  // sync_loop fsyncs the directory before it acknowledges what lands here
  snapshot_producers();
  // The sealed segment is fsynced in the background (its indexes written,
  // the recovery point moved past it) whatever the acks: without it acks=0/1
  // traffic left every segment to be scanned again after a kill -9.
  if (durable_end_ < next_offset_) {
    durable_waiters_.add(next_offset_, [](std::error_code) {});
    maybe_start_sync();
  }
  return {};
}

asio::awaitable<std::expected<append_result, std::error_code>> log::append(std::span<std::byte> batch,
                                                                              std::int32_t epoch) {
  if (auto ec = check_usable()) co_return std::unexpected(ec);
  if (rolling_back_) co_return std::unexpected(make_error_code(errc::storage_full));
  RUNNEL_ASSERT(!truncating_, "[{}] append during truncate", tp_);
  auto h = schemas::decode_header(batch);
  if (!h || h->length != batch.size()) co_return std::unexpected(make_error_code(errc::bad_batch));
  // A producer's batch has every offset of its range (verify_batch accepts
  // the cleaner's sparse batches too, which only a replica may append).
  if (h->record_count != h->last_offset_delta + 1) co_return std::unexpected(make_error_code(errc::bad_batch));
  if (h->producer.value() >= 0) {
    auto v = producers_.check(*h, wall_clock_now().value() - cfg_.producer_id_expiration.count());
    switch (v.verdict) {
      case sequence_verdict::append: break;
      case sequence_verdict::duplicate:
        co_return append_result{v.original.base, v.original.last, timestamp_ms(-1), true, {}};
      case sequence_verdict::out_of_order: co_return std::unexpected(make_error_code(errc::out_of_order_sequence));
      case sequence_verdict::fenced: co_return std::unexpected(make_error_code(errc::producer_fenced));
      case sequence_verdict::unknown_producer: co_return std::unexpected(make_error_code(errc::unknown_producer_id));
    }
  }
  // The message-id window: records whose id it holds (or that repeat an id
  // earlier in the batch) are dropped; the rest go as a rebuilt batch that
  // keeps every offset delta (the dropped records' offsets stay unused, as
  // compaction leaves them), so its sequence range stays the producer's.
  std::vector<std::pair<std::int32_t, offset>> dropped;
  std::vector<std::byte> rebuilt;
  // The records' ids; they point into the caller's batch, which outlives
  // the append.
  struct record_id {
    std::size_t index;  // in the batch
    std::string_view id;
    std::uint64_t hash;
    std::int32_t delta;
    std::int64_t ts;
  };
  std::vector<record_id> ids;
  if (msg_ids_) {
    const auto v = schemas::batch_view::of_verified(batch, *h);
    const std::int64_t now = wall_clock_now().value();
    std::vector<std::size_t> keep;
    // First pass: every record's id and its hash. Then the window's table
    // slots that the batch will touch are prefetched in one tight loop
    // (the table is far larger than the caches).
    ids.reserve(v.record_count());
    for (std::size_t i = 0; i < v.record_count(); ++i) {
      auto r = v.record(i);
      auto id = msg_id_of(r);
      if (!id) continue;
      if (id->size() > max_msg_id_bytes) co_return std::unexpected(make_error_code(errc::bad_msg_id));
      const auto text = as_text(*id);
      ids.push_back({i, text, dedup_window::hash_of(text), static_cast<std::int32_t>(r.off.value()),
                     r.timestamp.value()});
    }
    msg_ids_->prefetch_batch(std::views::transform(ids, &record_id::hash));
    msg_ids_->expire(now);  // ids past the window give their memory back
    // Second pass, one probe per id: repeats of the window or of an id
    // earlier in the batch are dropped, the rest go into the window at
    // the offsets they will have (taken back below if the batch is not
    // written after all).
    const std::uint64_t evicted_before = msg_ids_->evicted_early();
    std::size_t next_id = 0;
    for (std::size_t i = 0; i < v.record_count(); ++i) {
      if (next_id < ids.size() && ids[next_id].index == i) {
        const auto& c = ids[next_id++];
        if (auto first = msg_ids_->find_or_add(c.id, c.hash, next_offset_ + c.delta, c.ts, now, next_offset_)) {
          dropped.emplace_back(static_cast<std::int32_t>(i), *first);
          continue;
        }
      }
      keep.push_back(i);
    }
    warn_if_evicted(evicted_before);
    if (!dropped.empty() && keep.empty()) {
      // Nothing new: nothing written. An idempotent producer's sequence
      // range is still taken (at the first copies), or its next batch
      // would look like a gap.
      if (h->producer.value() >= 0) producers_.apply(*h, dropped.front().second);
      append_result r{dropped.front().second, dropped.back().second, timestamp_ms(-1), false, std::move(dropped)};
      co_return r;
    }
    if (!dropped.empty()) {
      rebuilt = schemas::rebuild_batch(v, keep);
      batch = rebuilt;
      auto rh = schemas::decode_header(batch);
      if (!rh) {
        msg_ids_->truncate(next_offset_);  // the ids just added: not written
        co_return std::unexpected(make_error_code(errc::bad_batch));
      }
      h = rh;
    }
  }
  schemas::stamp_base_offset(batch, next_offset_);
  h->base_offset = next_offset_;
  if (epoch >= 0) {
    schemas::stamp_leader_epoch(batch, leader_epoch(epoch));
    h->epoch = leader_epoch(epoch);
  }
  // Now, not when the write is done: a retry that arrives meanwhile is a
  // duplicate of this batch.
  producers_.apply(*h);
  auto r = co_await enqueue(batch, *h, epoch >= 0);
  if (r) r->dropped = std::move(dropped);
  co_return r;
}

asio::awaitable<std::expected<append_result, std::error_code>> log::append_replica(std::span<std::byte> batch) {
  if (auto ec = check_usable()) co_return std::unexpected(ec);
  if (rolling_back_) co_return std::unexpected(make_error_code(errc::storage_full));
  RUNNEL_ASSERT(!truncating_, "[{}] append during truncate", tp_);
  auto h = schemas::decode_header(batch);
  if (!h || h->length != batch.size()) co_return std::unexpected(make_error_code(errc::bad_batch));
  if (h->base_offset < next_offset_) co_return std::unexpected(make_error_code(errc::offset_mismatch));
  if (h->base_offset > next_offset_) {
    // The leader's cleaner removed [next, base) (cleanup.policy=compact):
    // the gap is real. It goes into the cleaner checkpoint before the batch
    // is written, so recovery takes it for a cleaned gap, not a torn tail.
    if (!cfg_.cleanup_compact) co_return std::unexpected(make_error_code(errc::offset_mismatch));
    if (cleaned_end_ < h->base_offset) {
      if (auto ec = co_await persist_cleaner_checkpoint(h->base_offset)) co_return std::unexpected(ec);
    }
  }
  producers_.apply(*h);  // as the leader did
  if (msg_ids_) {
    note_msg_ids(schemas::batch_view::of_verified(batch, *h));  // replication.cpp verified it
  }
  co_return co_await enqueue(batch, *h, true);
}

// Both appends: records where a new epoch starts (cluster mode), reserves
// the bytes and queues the write; resumes once the batch is in the file.
asio::awaitable<std::expected<append_result, std::error_code>> log::enqueue(std::span<std::byte> batch,
                                                                              const schemas::batch_header& h,
                                                                              bool track_epoch) {
  if (auto ec = maybe_roll(h.length)) {
    // The batch's producer sequence and message ids are in the log's state
    // already: they go again, or a retry would be answered as a duplicate
    // of a batch that was never written.
    start_take_back();
    co_return std::unexpected(out_of_space(ec) ? make_error_code(errc::storage_full) : ec);
  }
  const offset base = h.base_offset;
  const auto& active = segments_.back();
  file_pos pos = active->reserve(h);
  next_offset_ = h.next_offset();
  // A new epoch is recorded now (its start is this batch) and written to
  // the checkpoint through the ring while the batch waits in the queue.
  const bool new_epoch = track_epoch && epochs_->assign(h.epoch.value(), base);

  pending_write pw{active, pos, batch, next_offset_, {}, new_epoch ? ++epoch_generation_ : 0};
  auto ec = co_await suspend_until([&](completion c) {
    pw.done = std::move(c);
    queue_.push_back(&pw);
    if (new_epoch) {
      start_epoch_save();
    } else {
      start_writer();
    }
  });
  if (ec) co_return std::unexpected(ec);
  co_return append_result{base, h.last_offset(), wall_clock_now(), false, {}};
}

void log::start_epoch_save() {
  if (saving_epochs_) return;
  saving_epochs_ = true;
  asio::co_spawn(ex_, epoch_save_loop(), asio::detached);
}

// Writes the checkpoint until it holds every epoch assigned so far, then
// lets the writer past the appends that waited for it.
asio::awaitable<void> log::epoch_save_loop() {
  while (!failure_ && saved_generation_ < epoch_generation_) {
    const std::uint64_t generation = epoch_generation_;
    if (auto ec = co_await save_epochs_now()) {
      fail(ec, "leader epoch checkpoint write");
      break;
    }
    saved_generation_ = generation;
  }
  saving_epochs_ = false;
  start_writer();  // also fails what waited, when the write failed
  maybe_notify_idle();
}

asio::awaitable<std::error_code> log::save_epochs_now() {
  const std::string text = epochs_->encode();
  co_return co_await replace_file(epoch_cache::file_name, std::as_bytes(std::span(text.data(), text.size())));
}

void log::start_writer() {
  if (writing_) return;
  writing_ = true;
  asio::co_spawn(ex_, write_loop(), asio::detached);
}

asio::awaitable<void> log::write_loop() {
  std::vector<pending_write*> group;
  while (!queue_.empty() && !failure_ && queue_.front()->held_until <= saved_generation_) {
    // One write covers consecutive queued appends of one segment: they sit
    // next to each other in the file, so a single writev lands them all.
    group.clear();
    std::uint64_t bytes = 0;
    const segment* seg = queue_.front()->seg.get();
    while (!queue_.empty() && queue_.front()->seg.get() == seg && group.size() < max_iov &&
           queue_.front()->held_until <= saved_generation_ &&
           (group.empty() || bytes + queue_.front()->bytes.size() <= cfg_.max_write_bytes)) {
      bytes += queue_.front()->bytes.size();
      group.push_back(queue_.front());
      queue_.pop_front();
    }
    auto ec = co_await write_group(group);
    if (ec && out_of_space(ec)) {
      // Nothing is lost but these appends and the ones queued behind them:
      // they fail (retriable), and the log takes their offsets back.
      logger().warn("[{}] a write met a full disk ({}): {} appends answer STORAGE_FULL", tp_, ec.message(),
                    group.size() + queue_.size());
      start_take_back();
      for (auto* pw : group) pw->done(errc::storage_full);
      while (!queue_.empty()) {
        queue_.front()->done(errc::storage_full);
        queue_.pop_front();
      }
      break;
    }
    if (ec) {
      fail(ec, "write");
      for (auto* pw : group) pw->done(errc::log_offline);
      break;
    }
    const auto& last = *group.back();
    last.seg->mark_written(last.pos + last.bytes.size(), last.next);
    written_end_ = last.next;
    for (auto* pw : group) pw->done({});
    written_waiters_.advance(written_end_);
    maybe_start_sync();
    if (cfg_.flush_messages > 0 || cfg_.flush_ms.count() > 0) {
      const auto now = std::chrono::steady_clock::now();
      if (!unflushed_since_) unflushed_since_ = now;
      flush_if_due(now);
    }
  }
  if (failure_) {
    while (!queue_.empty()) {
      queue_.front()->done(errc::log_offline);
      queue_.pop_front();
    }
    written_waiters_.fail_all(errc::log_offline);
  }
  writing_ = false;
  maybe_notify_idle();
}

bool log::out_of_space(std::error_code ec) {
  return ec == std::errc::no_space_on_device || (ec.category() == std::system_category() && ec.value() == EDQUOT);
}

void log::start_take_back() {
  if (rolling_back_) return;
  rolling_back_ = true;  // appends answer STORAGE_FULL until it is done
  asio::co_spawn(ex_, take_back_unwritten(), asio::detached);
}

// After a write met a full disk: the reservations past what was written go
// (segments rolled for them, bytes partly written, index entries, producer
// sequences, message ids, epoch starts), as a truncation to the written end
// would take them, and the log takes appends again. Its files are what a
// crash now would leave.
asio::awaitable<void> log::take_back_unwritten() {
  const offset from = next_offset_;
  auto ec = co_await truncate(written_end_);
  rolling_back_ = false;
  if (ec) {
    fail(ec, "taking back the appends a full disk refused");
    durable_waiters_.fail_all(errc::log_offline);
    co_return;
  }
  logger().info("[{}] took back offsets {} to {} that a full disk refused; appends resume", tp_, next_offset_, from);
  // A flush that waited for offsets taken back waits for the new end.
  durable_waiters_.lower_to(next_offset_);
  durable_waiters_.advance(durable_end_);
  maybe_start_sync();
}

asio::awaitable<std::error_code> log::write_group(std::vector<pending_write*>& group) {
  auto& seg = *group.front()->seg;
  file_pos pos = group.front()->pos;
  std::uint64_t total = 0;
  std::vector<iovec> iov;
  iov.reserve(group.size());
  for (auto* pw : group) {
    iov.push_back({const_cast<std::byte*>(pw->bytes.data()), pw->bytes.size()});
    total += pw->bytes.size();
  }
  // Reserve blocks ahead of the tail (the file size is unchanged), so
  // appends do not allocate on every write. The step follows the segment's
  // own growth: as much again as it holds (at least 16 KiB), at most
  // segment.preallocate.bytes, never past segment.bytes; so a partition
  // that holds little reserves little (2,000 quiet partitions reserved
  // 16 MiB each before).
  if (preallocate_ && preallocation_allowed.load(std::memory_order_relaxed) && pos + total > seg.allocated()) {
    const std::uint64_t need = pos + total - seg.allocated();
    const std::uint64_t grown = std::max<std::uint64_t>(16 * 1024, pos.value() + total);
    const std::uint64_t room =
        cfg_.segment_bytes > seg.allocated().value() ? cfg_.segment_bytes - seg.allocated().value() : 0;
    const std::uint64_t len = std::max(need, std::min({grown, cfg_.preallocate_bytes, room}));
    auto ec = co_await ring_.fallocate(seg.fd(), FALLOC_FL_KEEP_SIZE, seg.allocated().value(), len);
    if (ec) {
      logger().warn("[{}] preallocation failed ({}); appending without it", tp_, ec.message());
      preallocate_ = false;
    } else {
      seg.set_allocated(seg.allocated() + len);
    }
  }
  std::span<iovec> rest(iov);
  while (!rest.empty()) {
    auto n = co_await ring_.writev(seg.fd(), rest, pos.value());
    if (!n) co_return n.error();
    if (*n == 0) co_return make_error_code(std::errc::io_error);
    pos += *n;
    std::size_t left = *n;
    while (!rest.empty() && left >= rest.front().iov_len) {
      left -= rest.front().iov_len;
      rest = rest.subspan(1);
    }
    if (left > 0) {
      rest.front().iov_base = static_cast<std::byte*>(rest.front().iov_base) + left;
      rest.front().iov_len -= left;
    }
  }
  co_return std::error_code{};
}

// --- flush (group commit) -----------------------------------------------------

asio::awaitable<std::error_code> log::flush() {
  if (auto ec = check_usable()) co_return ec;
  offset target = next_offset_;
  if (durable_end_ >= target) co_return std::error_code{};
  co_return co_await suspend_until([&](completion c) {
    durable_waiters_.add(target, std::move(c));
    maybe_start_sync();
  });
}

void log::flush_if_due(std::chrono::steady_clock::time_point now) {
  if (closed_ || failure_ || truncating_ || written_end_ <= durable_end_) return;
  const bool by_count = cfg_.flush_messages > 0 &&
                        static_cast<std::uint64_t>(written_end_ - durable_end_) >= cfg_.flush_messages;
  const bool by_age = cfg_.flush_ms.count() > 0 && unflushed_since_ && now - *unflushed_since_ >= cfg_.flush_ms;
  if (!by_count && !by_age) return;
  sync_wanted_ = true;
  maybe_start_sync();
}

void log::maybe_start_sync() {
  if (syncing_ || (durable_waiters_.empty() && !sync_wanted_) || written_end_ <= durable_end_) return;
  syncing_ = true;
  asio::co_spawn(ex_, sync_loop(), asio::detached);
}

asio::awaitable<void> log::sync_loop() {
  while (!failure_ && (!durable_waiters_.empty() || sync_wanted_) && written_end_ > durable_end_) {
    sync_wanted_ = false;
    // One fdatasync per dirty segment covers every batch written so far;
    // every flush waiting for an offset below `covered` shares it.
    offset covered = written_end_;
    std::vector<std::pair<std::shared_ptr<segment>, file_pos>> dirty;
    for (const auto& s : segments_) {
      if (s->synced() < s->written()) dirty.emplace_back(s, s->written());
    }
    std::error_code ec;
    for (auto& [s, upto] : dirty) {
      if ((ec = co_await ring_.fdatasync(s->fd()))) break;
    }
    // Crash rule: a batch in a segment that a roll created is durable only
    // once the segment's directory entry is, so the directory fsync comes
    // before the waiters are told (the recovery point write after it is too late).
    if (!ec && entries_unsynced_) {
      entries_unsynced_ = false;
      if ((ec = co_await sync_dir())) entries_unsynced_ = true;
    }
    if (ec) {
      fail(ec, "fdatasync");
      break;
    }
    for (auto& [s, upto] : dirty) s->mark_synced(std::max(s->synced(), upto));
    durable_end_ = std::max(durable_end_, covered);
    durable_waiters_.advance(durable_end_);
    // What was written during this pass is the oldest unflushed data now.
    if (written_end_ <= durable_end_) {
      unflushed_since_.reset();
    } else if (unflushed_since_) {
      unflushed_since_ = std::chrono::steady_clock::now();
    }

    for (auto& [s, upto] : dirty) {
      if ((ec = co_await s->persist_indexes(ring_, durable_end_))) break;
    }
    if (ec) {
      fail(ec, "index write");
      break;
    }
    // Sealed segments that are now durable move the recovery point to the
    // active segment (once per roll).
    offset point = segments_.back()->base();
    bool sealed_durable = std::all_of(segments_.begin(), segments_.end() - 1,
                                      [](const auto& s) { return s->synced() == s->size(); });
    if (sealed_durable && point > recovery_point_) {
      if ((ec = co_await persist_recovery_point(point))) {
        fail(ec, "recovery point write");
        break;
      }
    }
    release_sealed_tails();
  }
  if (failure_) durable_waiters_.fail_all(errc::log_offline);
  syncing_ = false;
  maybe_notify_idle();
}

// A sealed segment's blocks reserved past its end (preallocation) go back
// to the volume: a partition that rolls keeps only what it holds. A
// truncate to its own size, not a hole punch: ext4 punches nothing past
// the end of a file. Once per roll, so a plain system call (as
// segment::truncate_to makes); best effort.
void log::release_sealed_tails() {
  for (std::size_t i = 0; i + 1 < segments_.size(); ++i) {
    const auto& s = segments_[i];
    if (s->allocated() <= s->size() || s->written() != s->size()) continue;
    const std::uint64_t len = s->allocated().value() - s->size().value();
    s->set_allocated(s->size());  // tried once, whatever the answer
    if (::ftruncate(s->fd(), static_cast<off_t>(s->size().value())) != 0) {
      logger().warn("[{}] cannot release the {} bytes reserved past segment {}: {}", tp_, len, s->base(),
                    std::error_code(errno, std::system_category()).message());
    }
  }
}

asio::awaitable<std::error_code> log::persist_recovery_point(offset point) {
  if (auto ec = co_await replace_file(recovery_point_name, encode_offset_file(recovery_point_magic, point.value()))) {
    co_return ec;
  }
  recovery_point_ = point;
  co_return std::error_code{};
}

// write_file_atomic with the fsyncs on the ring: temp file, fdatasync,
// rename, directory fsync.
asio::awaitable<std::error_code> log::replace_file(const char* name, std::span<const std::byte> bytes) {
  co_return co_await ring_.replace_file(dir_ / name, bytes);
}

asio::awaitable<std::error_code> log::sync_dir(std::filesystem::path dir) {
  auto dirfd = file_handle::open(dir, O_RDONLY | O_DIRECTORY);
  if (!dirfd) co_return dirfd.error();
  co_return co_await ring_.fsync(dirfd->get());
}

// --- read -------------------------------------------------------------------

asio::awaitable<std::expected<std::optional<file_range>, std::error_code>> log::read(offset from,
                                                                                   std::uint32_t max_bytes,
                                                                                   std::optional<offset> upto) {
  if (closed_) co_return std::unexpected(make_error_code(errc::log_closed));
  offset end = std::min(upto.value_or(written_end_), written_end_);
  if (from < log_start_offset() || from > end) co_return std::unexpected(make_error_code(errc::offset_out_of_range));
  if (from == end) co_return std::nullopt;

  // Offsets the cleaner removed at the end of a segment (or a whole
  // segment's): the next batch is in a later segment.
  auto it = std::upper_bound(segments_.begin(), segments_.end(), from,
                             [](offset v, const std::shared_ptr<segment>& s) { return v < s->base(); });
  auto seg = *std::prev(it);
  while (from >= seg->written_next() && it != segments_.end()) {
    seg = *it++;
    from = seg->base();
  }
  if (from >= end) co_return std::nullopt;
  auto first = co_await seg->find_batch(ring_, from);
  if (!first) co_return std::unexpected(first.error());
  // Never hand out bytes at or past `end`: find where it starts here.
  file_pos limit = seg->written();
  if (end < seg->written_next()) {
    auto at_end = co_await seg->find_batch(ring_, end);
    if (!at_end) co_return std::unexpected(at_end.error());
    limit = at_end->pos;
  }
  if (limit <= first->pos) co_return std::nullopt;  // `end` falls inside the first batch
  file_pos cap = std::min(limit, first->pos + std::uint64_t{max_bytes});
  auto r = co_await seg->whole_batches_end(ring_, first->pos, first->header.base_offset, cap);
  if (!r) co_return std::unexpected(r.error());
  if (r->end > limit) co_return std::nullopt;
  co_return file_range{seg->file(), first->pos, static_cast<std::uint32_t>(r->end - first->pos),
                       first->header.base_offset, r->next};
}

asio::awaitable<std::expected<std::optional<offset>, std::error_code>> log::offset_for_timestamp(timestamp_ms t) {
  if (closed_) co_return std::unexpected(make_error_code(errc::log_closed));
  auto segs = segments_;  // retention may change the list while we wait on reads
  for (const auto& s : segs) {
    if (s->max_timestamp() < t) continue;
    auto found = co_await s->find_timestamp(ring_, t);
    if (!found) co_return std::unexpected(found.error());
    if (*found) co_return *found;
  }
  co_return std::nullopt;
}

asio::awaitable<std::error_code> log::wait_for_data(offset after) {
  if (closed_) co_return make_error_code(errc::log_closed);
  if (written_end_ > after) co_return std::error_code{};
  co_return co_await suspend_until([&](completion c) { written_waiters_.add(after + 1, std::move(c)); });
}

// --- truncate, retention, close -------------------------------------------------

void log::maybe_notify_idle() {
  if (!idle()) return;
  auto waiters = std::exchange(idle_waiters_, {});
  for (auto& c : waiters) c({});
}

asio::awaitable<std::error_code> log::quiesce() {
  while (!idle()) {
    co_await suspend_until([&](completion c) { idle_waiters_.push_back(std::move(c)); });
  }
  co_return std::error_code{};
}

asio::awaitable<std::error_code> log::truncate(offset to) {
  if (auto ec = check_usable()) co_return ec;
  truncating_ = true;
  co_await wait_for_clean();
  auto ec = co_await do_truncate(to);
  if (!ec) ec = co_await rebuild_producers();  // forgets the batches cut off
  if (!ec && msg_ids_) msg_ids_->truncate(next_offset_);
  truncating_ = false;
  if (!ec && epochs_->truncate_from(next_offset_)) ec = co_await save_epochs_now();
  if (!ec && cleaned_end_ > next_offset_) ec = co_await persist_cleaner_checkpoint(next_offset_);
  co_return ec;
}

asio::awaitable<std::error_code> log::reset_to(offset start) {
  if (auto ec = check_usable()) co_return ec;
  RUNNEL_ASSERT(!truncating_, "[{}] reset during truncate", tp_);
  truncating_ = true;
  co_await wait_for_clean();
  co_await quiesce();
  // Old segments go first (a crash then leaves an empty log, which the
  // follower resets again), then the new empty segment at `start`.
  logger().warn("[{}] emptying the log ({} to {}) to start again at {}", tp_, log_start_offset(), written_end_, start);
  for (const auto& seg : segments_) seg->remove_files();
  segments_.clear();
  std::error_code ec = co_await sync_dir();
  auto seg = std::make_shared<segment>(dir_, start, cfg_);
  if (!ec) ec = seg->create();
  segments_.push_back(std::move(seg));  // never empty, even for a log that fails here (offline)
  if (!ec) ec = co_await sync_dir();
  if (!ec) {
    next_offset_ = written_end_ = durable_end_ = start;
    ec = co_await persist_recovery_point(start);
  }
  if (!ec && epochs_->clear()) ec = co_await save_epochs_now();
  if (!ec && cleaned_end_ != start) ec = co_await persist_cleaner_checkpoint(start);
  producers_.clear();
  remove_producer_snapshots(start, start);
  if (msg_ids_) msg_ids_->clear();
  truncating_ = false;
  if (ec) fail(ec, "reset");
  co_return ec;
}

asio::awaitable<std::error_code> log::do_truncate(offset to) {
  co_await quiesce();
  // Bytes reserved but never written (appends a full disk refused) go
  // too: segments rolled for them, and what of them reached the file.
  bool unwritten = next_offset_ > written_end_;
  for (const auto& s : segments_) unwritten = s->drop_unwritten() || unwritten;
  if (to >= written_end_ && !unwritten) co_return std::error_code{};
  to = std::min(to, written_end_);
  if (to < log_start_offset()) to = log_start_offset();

  // The recovery point must not stay above data that is about to be
  // rewritten: lower it (durably) first.
  if (recovery_point_ > to) {
    if (auto ec = co_await persist_recovery_point(to)) co_return ec;
  }
  while (segments_.size() > 1 && segments_.back()->base() >= to) {
    logger().info("[{}] truncation to {} deletes segment {}", tp_, to, segments_.back()->base());
    segments_.back()->remove_files();
    segments_.pop_back();
  }
  auto seg = segments_.back();
  file_pos pos{0};
  offset cut = seg->base();
  if (to >= seg->written_next()) {
    pos = seg->written();  // `to` lies in offsets the cleaner removed at the segment's end
    cut = seg->written_next();
  } else if (to > seg->base()) {
    auto b = co_await seg->find_batch(ring_, to);
    if (!b) co_return b.error();
    pos = b->pos;
    cut = b->header.base_offset;
  }
  if (auto ec = co_await seg->truncate_to(ring_, pos, cut)) co_return ec;
  seg->mark_synced(std::min(seg->synced(), pos));
  logger().info("[{}] truncated to offset {} (asked {})", tp_, cut, to);
  next_offset_ = written_end_ = cut;
  durable_end_ = std::min(durable_end_, cut);
  co_return std::error_code{};
}

asio::awaitable<std::expected<std::size_t, std::error_code>> log::apply_retention(timestamp_ms now) {
  if (auto ec = check_usable()) co_return std::unexpected(ec);
  std::size_t deleted = 0;
  if (!cfg_.cleanup_delete) co_return deleted;  // cleanup.policy=compact: the cleaner's, never retention's
  std::uint64_t total = size_bytes();
  while (segments_.size() > 1) {
    const auto& s = segments_.front();
    if (s->written() < s->size()) break;
    bool by_time = cfg_.retention_ms.count() >= 0 && s->max_timestamp() < now - cfg_.retention_ms.count();
    bool by_size = cfg_.retention_bytes >= 0 && total - s->size().value() >= static_cast<std::uint64_t>(cfg_.retention_bytes);
    if (!by_time && !by_size) break;
    logger().info("[{}] retention deletes segment {} ({} bytes, newest timestamp {}, by {})", tp_, s->base(),
                  s->size(), s->max_timestamp(), by_time ? "time" : "size");
    if (auto ec = s->remove_files()) co_return std::unexpected(ec);
    total -= s->size().value();
    segments_.erase(segments_.begin());
    ++deleted;
  }
  if (deleted > 0) remove_producer_snapshots(log_start_offset(), offset(-1));
  co_return deleted;
}

asio::awaitable<std::error_code> log::close() {
  if (closed_) co_return std::error_code{};
  closed_ = true;
  co_await wait_for_clean();
  co_await quiesce();
  std::error_code ec = failure_;
  if (!ec) {
    for (const auto& s : segments_) {
      if (s->synced() < s->written()) {
        if ((ec = co_await ring_.fdatasync(s->fd()))) break;
        s->mark_synced(s->written());
      }
    }
  }
  if (!ec) {
    durable_end_ = written_end_;
    for (const auto& s : segments_) {
      if ((ec = co_await s->sync_indexes(ring_))) break;
    }
  }
  if (!ec) ec = co_await persist_recovery_point(written_end_);
  if (!ec) {
    snapshot_producers();  // the next open replays nothing
    co_await quiesce();
  }
  if (ec) logger().error("[{}] clean close failed: {}", tp_, ec.message());
  written_waiters_.fail_all(errc::log_closed);
  durable_waiters_.fail_all(errc::log_closed);
  co_return ec;
}

}  // namespace runnel::storage
