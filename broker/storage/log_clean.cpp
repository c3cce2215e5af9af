// log: the compaction half (plan a pass, swap its result in) and the
// cleaner's files (the swap protocol's recovery, the checkpoint).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <string>

#include "broker/storage/clean_pass.h"
#include "broker/storage/errc.h"
#include "broker/storage/file.h"
#include "broker/storage/io_ring.h"
#include "broker/storage/log.h"
#include "broker/storage/logger.h"
#include "broker/storage/segment.h"

namespace runnel::storage {

namespace {

constexpr std::uint32_t checkpoint_magic = 0x43434e52;  // "RNCC"

// `<20 digits>.<log|index|timeindex><suffix>`: the base offset, else nullopt.
std::optional<offset> parse_clean_name(const std::filesystem::path& p, const char* suffix) {
  if (p.extension() != suffix) return std::nullopt;
  auto inner = p.stem();  // "<base>.log"
  if (std::none_of(std::begin(segment_exts), std::end(segment_exts),
                   [&](const char* e) { return inner.extension() == e; })) {
    return std::nullopt;
  }
  auto as_log = inner;
  as_log.replace_extension(".log");
  return parse_segment_name(as_log);
}

std::filesystem::path without_suffix(const std::filesystem::path& p) {
  auto out = p;
  out.replace_extension();
  return out;
}

std::error_code rename_file(const std::filesystem::path& from, const std::filesystem::path& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) return last_error();
  return {};
}

}  // namespace

// --- the cleaner's files ----------------------------------------------------------

std::optional<offset> read_cleaner_checkpoint(const std::filesystem::path& dir) {
  auto v = read_offset_file(dir / cleaner_checkpoint_name, checkpoint_magic);
  if (!v) return std::nullopt;
  return offset(*v);
}

std::array<std::byte, 16> encode_cleaner_checkpoint(offset point) {
  return encode_offset_file(checkpoint_magic, point.value());
}

std::error_code recover_clean_files(const std::filesystem::path& dir, const topic_partition& tp) {
  std::error_code ec;
  std::vector<std::filesystem::path> cleaned;
  std::vector<std::filesystem::path> swaps;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (parse_clean_name(e.path(), cleaned_suffix)) cleaned.push_back(e.path());
    if (parse_clean_name(e.path(), swap_suffix)) swaps.push_back(e.path());
  }
  if (ec) return ec;
  if (cleaned.empty() && swaps.empty()) return {};
  if (swaps.empty()) {
    // Crash rule: no `.swap` yet, so the old segments are whole and the
    // `.cleaned` files may be partial: the pass is undone.
    logger().warn("[{}] deleting {} files of an unfinished cleaning pass", tp, cleaned.size());
    for (const auto& p : cleaned) {
      if (::unlink(p.c_str()) != 0 && errno != ENOENT) return last_error();
    }
    return fsync_dir(dir);
  }
  // Crash rule: a `.swap` exists only after every `.cleaned` file of the
  // pass was fsynced, so the pass is complete on disk: finish its swap.
  logger().warn("[{}] finishing the swap of an interrupted cleaning pass ({} files)", tp,
                cleaned.size() + swaps.size());
  for (const auto& p : cleaned) {
    auto to = without_suffix(p);
    to += swap_suffix;
    if (auto rec = rename_file(p, to)) return rec;
    swaps.push_back(to);
  }
  if (auto fec = fsync_dir(dir)) return fec;
  for (const auto& p : swaps) {
    if (auto rec = rename_file(p, without_suffix(p))) return rec;
  }
  return fsync_dir(dir);
}

// --- planning and swapping, on the log's shard ----------------------------------------

asio::awaitable<std::error_code> log::persist_cleaner_checkpoint(offset point) {
  std::error_code ec;
  if (cfg_.cleanup_compact || std::filesystem::exists(dir_ / cleaner_checkpoint_name, ec)) {
    if (auto wec = co_await replace_file(cleaner_checkpoint_name, encode_cleaner_checkpoint(point))) co_return wec;
  }
  cleaned_end_ = point;
  for (const auto& s : segments_) s->allow_gaps_below(point);
  co_return std::error_code{};
}

std::optional<clean_job> log::plan_clean(timestamp_ms now) {
  if (!cfg_.cleanup_compact || cleaning_ || closed_ || failure_ || truncating_) return std::nullopt;
  clean_job job;
  job.tp = tp_;
  job.dir = dir_;
  job.cfg = cfg_;
  job.now = now;
  job.first_dirty = std::max(cleaned_end_, log_start_offset());
  const auto lag = cfg_.min_compaction_lag_ms.count();
  std::uint64_t total = 0;
  std::uint64_t dirty = 0;
  // Never the active segment (back()).
  for (std::size_t i = 0; i + 1 < segments_.size(); ++i) {
    const auto& s = segments_[i];
    if (s->written() < s->size() || s->synced() < s->written()) break;  // not durable yet
    if (lag > 0 && s->max_timestamp().value() > now.value() - lag) break;  // min.compaction.lag.ms
    clean_segment cs{s->base(), segments_[i + 1]->base(), s->written().value(), s->file()};
    total += cs.size;
    if (cs.end > job.first_dirty) dirty += cs.size;
    job.segments.push_back(std::move(cs));
  }
  if (dirty == 0) return std::nullopt;
  const double ratio = static_cast<double>(dirty) / static_cast<double>(total);
  if (ratio < cfg_.min_cleanable_dirty_ratio) return std::nullopt;
  cleaning_ = true;
  clean_cancel_ = job.cancel;
  return job;
}

bool log::unchanged_since(const clean_job& job) const {
  // Every segment of the job is still in the log, the same file with the
  // same bytes (a truncation or retention meanwhile abandons the pass).
  for (const auto& cs : job.segments) {
    auto it = std::find_if(segments_.begin(), segments_.end() - 1,
                           [&](const auto& s) { return s->base() == cs.base; });
    if (it == segments_.end() - 1 || (*it)->file() != cs.file || (*it)->written().value() != cs.size) return false;
  }
  return true;
}

asio::awaitable<void> log::wait_for_clean() {
  if (clean_cancel_) clean_cancel_->store(true);
  while (cleaning_) {
    co_await suspend_until([&](completion c) { clean_waiters_.push_back(std::move(c)); });
  }
}

asio::awaitable<std::error_code> log::finish_clean(const clean_job& job,
                                                   const std::expected<clean_output, std::error_code>& out) {
  struct pass_end {  // whatever happens below, the pass ends here
    log& l;
    ~pass_end() {
      l.cleaning_ = false;
      l.clean_cancel_.reset();
      for (auto& c : std::exchange(l.clean_waiters_, {})) c({});
    }
  } end{*this};

  if (!out || closed_ || failure_ || !unchanged_since(job) || job.cancel->load()) {
    remove_cleaned_files(dir_);
    if (!out) {
      if (out.error() != std::errc::operation_canceled) {
        logger().warn("[{}] cleaning pass failed: {}", tp_, out.error().message());
      }
      co_return out.error();
    }
    co_return make_error_code(std::errc::operation_canceled);
  }

  // 1. The checkpoint first: from here on, gaps below it are the
  // cleaner's (recovery accepts them); the old segments stay valid under it.
  if (out->cleaned_end > cleaned_end_) {
    if (auto ec = co_await persist_cleaner_checkpoint(out->cleaned_end)) {
      remove_cleaned_files(dir_);
      co_return ec;
    }
  }
  if (out->replaced.empty()) co_return std::error_code{};

  // 2. `.cleaned` -> `.swap`, all of them, then the directory: a crash from
  // here on finishes the swap at open (recover_clean_files).
  // 3. `.swap` -> final name: the rename replaces (deletes) the old file.
  // A failure in 2 or 3 leaves files that only recovery sorts out: offline.
  for (const char* from : {cleaned_suffix, swap_suffix}) {
    for (offset base : out->replaced) {
      for (const char* ext : segment_exts) {
        auto src = clean_path(dir_, base, ext, from);
        auto dst = from == cleaned_suffix ? clean_path(dir_, base, ext, swap_suffix) : segment_path(dir_, base, ext);
        if (auto ec = rename_file(src, dst)) {
          fail(ec, "cleaned segment rename");
          co_return ec;
        }
      }
    }
    if (auto ec = co_await sync_dir()) {
      fail(ec, "directory fsync after a cleaner swap");
      co_return ec;
    }
  }

  // 4. New segment objects over the new files. Readers that hold a range
  // of an old segment keep its (now unlinked) file open.
  for (offset base : out->replaced) {
    auto seg = std::make_shared<segment>(dir_, base, cfg_);
    seg->allow_gaps_below(cleaned_end_);
    std::error_code ec = seg->open_existing();
    std::expected<scan_result, std::error_code> r = std::unexpected(ec);
    if (!ec) r = co_await seg->recover(ring_, false);
    if (r && r->end != scan_end::clean) {
      logger().error("[{}] cleaned segment {} does not scan clean at {}: {}", tp_, base, r->stop, r->reason);
      r = std::unexpected(make_error_code(errc::corrupt_log));
    }
    if (!r) {
      fail(r.error(), "opening a cleaned segment");
      co_return r.error();
    }
    seg->mark_synced(seg->written());
    auto it = std::find_if(segments_.begin(), segments_.end(), [&](const auto& s) { return s->base() == base; });
    if (it != segments_.end() && it + 1 != segments_.end()) *it = std::move(seg);
  }
  logger().info("[{}] cleaned {} segments: {} -> {} bytes, {} records removed, checkpoint {}", tp_,
                out->replaced.size(), out->bytes_before, out->bytes_after, out->records_removed, cleaned_end_);
  co_return std::error_code{};
}

}  // namespace runnel::storage
