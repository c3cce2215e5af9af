#include "broker/storage/clean_pass.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <span>

#include "broker/storage/errc.h"
#include "broker/storage/file.h"
#include "broker/storage/logger.h"
#include "broker/storage/offset_index.h"
#include "broker/storage/offset_map.h"
#include "broker/storage/segment.h"
#include "broker/storage/time_index.h"
#include "schemas/batch.h"

namespace runnel::storage {

namespace {

constexpr std::size_t read_chunk = 1U << 20;
constexpr std::size_t write_chunk = 1U << 20;

// Blocking, chunked reads of one immutable segment file (this thread only).
class segment_reader {
 public:
  segment_reader(int fd, std::uint64_t end) : fd_(fd), end_(end) {}

  // The whole batch at `pos`: nullopt at the end of the data; an error when
  // the bytes are not a batch (sealed data was verified on append: a bad
  // batch here is corruption, and the pass stops without touching the log).
  std::expected<std::optional<std::span<const std::byte>>, std::error_code> batch(std::uint64_t pos) {
    if (pos >= end_) return std::nullopt;
    auto hdr = get(pos, schemas::batch_header_size);
    if (!hdr) return std::unexpected(hdr.error());
    auto h = schemas::decode_header(*hdr);
    if (!h || pos + h->length > end_) return std::unexpected(make_error_code(errc::corrupt_log));
    auto bytes = get(pos, h->length);
    if (!bytes) return std::unexpected(bytes.error());
    return *bytes;
  }

 private:
  std::expected<std::span<const std::byte>, std::error_code> get(std::uint64_t pos, std::size_t n) {
    if (pos + n > end_) return std::unexpected(make_error_code(errc::corrupt_log));
    if (pos < buf_pos_ || pos + n > buf_pos_ + buf_len_) {
      std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(std::max(n, read_chunk), end_ - pos));
      if (buf_.size() < want) buf_.resize(want);
      for (std::size_t done = 0; done < want;) {
        ssize_t got = ::pread(fd_, buf_.data() + done, want - done, static_cast<off_t>(pos + done));
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) return std::unexpected(last_error());
        if (got == 0) return std::unexpected(make_error_code(std::errc::io_error));
        done += static_cast<std::size_t>(got);
      }
      buf_pos_ = pos;
      buf_len_ = want;
    }
    return std::span<const std::byte>(buf_).subspan(static_cast<std::size_t>(pos - buf_pos_), n);
  }

  int fd_;
  std::uint64_t end_;
  std::vector<std::byte> buf_;
  std::uint64_t buf_pos_ = 0;
  std::size_t buf_len_ = 0;
};

// Calls fn(view) for every batch of the segment; stops at fn's error.
template <class Fn>
std::error_code for_each_batch(const clean_segment& s, std::uint32_t max_bytes, const std::function<bool()>& stop,
                               Fn&& fn) {
  segment_reader reader(s.file->fd(), s.size);
  std::uint64_t pos = 0;
  for (;;) {
    if (stop()) return make_error_code(std::errc::operation_canceled);
    auto b = reader.batch(pos);
    if (!b) return b.error();
    if (!*b) return {};
    auto view = schemas::batch_view::open(**b, schemas::verify_limits{std::max<std::uint32_t>(max_bytes, (*b)->size())});
    if (!view) {
      logger().error("cleaner: segment {} holds a bad batch at position {}: {}", s.base, pos, view.error().message());
      return make_error_code(errc::corrupt_log);
    }
    if (auto ec = fn(*view)) return ec;
    pos += (*b)->size();
  }
}

// The three `.cleaned` files of one segment and their indexes, built the
// way segment::reserve builds them on append (see offset_index.h, time_index.h).
class cleaned_writer {
 public:
  cleaned_writer(const std::filesystem::path& dir, offset base, std::uint32_t index_interval)
      : dir_(dir), base_(base), interval_(index_interval), index_(base), time_index_(base), max_ts_offset_(base) {}
  cleaned_writer(const cleaned_writer&) = delete;             // owns files
  cleaned_writer& operator=(const cleaned_writer&) = delete;  // owns files
  cleaned_writer(cleaned_writer&&) = delete;                  // stays on the stack
  cleaned_writer& operator=(cleaned_writer&&) = delete;       // stays on the stack
  ~cleaned_writer() {
    if (!done_) discard();
  }

  std::error_code open() {
    auto fd = file_handle::open(path(".log"), O_WRONLY | O_CREAT | O_TRUNC);
    if (!fd) return fd.error();
    log_ = std::move(*fd);
    return {};
  }

  std::error_code add(std::span<const std::byte> batch, const schemas::batch_header& h) {
    if (h.max_timestamp > max_ts_) {
      max_ts_ = h.max_timestamp;
      max_ts_offset_ = h.base_offset;
    }
    if (pos_ > 0 && since_index_ >= interval_) {
      index_.append({h.base_offset, file_pos(pos_)});
      time_index_.append({max_ts_, max_ts_offset_});
      since_index_ = 0;
    }
    since_index_ += h.length;
    buf_.insert(buf_.end(), batch.begin(), batch.end());
    pos_ += batch.size();
    return buf_.size() >= write_chunk ? drain() : std::error_code{};
  }

  // Writes the indexes and fsyncs all three files.
  std::error_code finish() {
    if (auto ec = drain()) return ec;
    if (auto ec = log_.fsync()) return ec;
    auto idx = index_.encode(0, index_.size());
    auto tidx = time_index_.encode(0, time_index_.size());
    for (auto [ext, bytes] : {std::pair{".index", &idx}, std::pair{".timeindex", &tidx}}) {
      auto fd = file_handle::open(path(ext), O_WRONLY | O_CREAT | O_TRUNC);
      if (!fd) return fd.error();
      if (auto ec = fd->pwrite_all(*bytes, 0)) return ec;
      if (auto ec = fd->fsync()) return ec;
    }
    done_ = true;
    return {};
  }

  void discard() {
    done_ = true;
    log_ = file_handle();
    for (const char* ext : segment_exts) ::unlink(path(ext).c_str());
  }

  [[nodiscard]] std::uint64_t size() const { return pos_; }

 private:
  std::filesystem::path path(const char* ext) const { return clean_path(dir_, base_, ext, cleaned_suffix); }
  std::error_code drain() {
    if (buf_.empty()) return {};
    if (auto ec = log_.pwrite_all(buf_, written_)) return ec;
    written_ += buf_.size();
    buf_.clear();
    return {};
  }

  std::filesystem::path dir_;
  offset base_;
  std::uint32_t interval_;
  file_handle log_;
  std::vector<std::byte> buf_;
  std::uint64_t written_ = 0;  // bytes in the file
  std::uint64_t pos_ = 0;      // bytes added
  std::uint64_t since_index_ = 0;
  offset_index index_;
  time_index time_index_;
  timestamp_ms max_ts_{-1};
  offset max_ts_offset_;
  bool done_ = false;
};

}  // namespace

std::filesystem::path clean_path(const std::filesystem::path& dir, offset base, const char* ext, const char* suffix) {
  auto p = segment_path(dir, base, ext);
  p += suffix;
  return p;
}

std::error_code remove_cleaned_files(const std::filesystem::path& dir) {
  std::error_code ec;
  std::vector<std::filesystem::path> found;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.path().extension() == cleaned_suffix) found.push_back(e.path());
  }
  if (ec) return ec;
  for (const auto& p : found) {
    if (::unlink(p.c_str()) != 0 && errno != ENOENT) return last_error();
  }
  return {};
}

namespace {

std::expected<clean_output, std::error_code> do_clean_pass(const clean_job& job, offset_map& map,
                                                           const std::function<bool()>& stop) {
  const std::uint32_t max_bytes = std::max<std::uint32_t>(1U << 20, job.cfg.max_write_bytes);

  // 1. The offset map over the dirty section, until it is full.
  map.clear();
  offset end = job.segments.back().end;
  bool full = false;
  for (const auto& s : job.segments) {
    if (s.end <= job.first_dirty) continue;
    auto ec = for_each_batch(s, max_bytes, stop, [&](const schemas::batch_view& v) -> std::error_code {
      for (std::size_t i = 0; i < v.record_count() && !full; ++i) {
        auto r = v.record(i);
        if (r.off < job.first_dirty || !r.key) continue;
        if (!map.put(hash_key(*r.key), r.off)) {
          full = true;
          end = r.off;  // this record and everything after it stay as they are
        }
      }
      return {};
    });
    if (ec) return std::unexpected(ec);
    if (full) break;
  }
  if (end <= job.first_dirty) {
    logger().warn("[{}] cleaner: the offset map holds {} keys, not one record of the dirty section fits", job.tp,
                  map.capacity());
    return std::unexpected(make_error_code(std::errc::no_buffer_space));
  }

  // 2. Copy what stays of every segment below the map's end.
  clean_output out;
  out.cleaned_end = end;
  const std::int64_t horizon = job.now.value() - job.cfg.delete_retention_ms.count();
  std::vector<std::size_t> keep;
  for (const auto& s : job.segments) {
    if (s.base >= end) break;
    cleaned_writer w(job.dir, s.base, job.cfg.index_interval_bytes);
    if (auto ec = w.open()) return std::unexpected(ec);
    std::uint64_t removed = 0;
    auto ec = for_each_batch(s, max_bytes, stop, [&](const schemas::batch_view& v) -> std::error_code {
      keep.clear();
      for (std::size_t i = 0; i < v.record_count(); ++i) {
        auto r = v.record(i);
        bool keep_it = true;
        if (r.off < end && r.key) {
          auto latest = map.get(hash_key(*r.key));
          if (latest && *latest > r.off) {
            keep_it = false;  // a later record of this key exists
          } else if (!r.value && r.timestamp.value() < horizon) {
            keep_it = false;  // a tombstone past delete.retention.ms
          }
        }
        if (keep_it) keep.push_back(i);
      }
      removed += v.record_count() - keep.size();
      if (keep.size() == v.record_count()) return w.add(v.bytes(), v.header());
      if (keep.empty()) return {};  // the whole batch goes: a gap in the offsets
      auto rebuilt = schemas::rebuild_batch(v, keep);
      auto h = schemas::decode_header(rebuilt);
      return w.add(rebuilt, *h);
    });
    if (ec) return std::unexpected(ec);
    out.bytes_before += s.size;
    if (removed == 0) {
      w.discard();  // nothing to drop here: the segment stays as it is
      out.bytes_after += s.size;
      continue;
    }
    if (auto fec = w.finish()) return std::unexpected(fec);
    out.bytes_after += w.size();
    out.records_removed += removed;
    out.replaced.push_back(s.base);
  }
  return out;
}

}  // namespace

std::expected<clean_output, std::error_code> run_clean_pass(const clean_job& job, offset_map& map,
                                                            const std::function<bool()>& stop) {
  if (job.segments.empty()) {
    clean_output none;
    none.cleaned_end = job.first_dirty;
    return none;
  }
  if (auto ec = remove_cleaned_files(job.dir)) return std::unexpected(ec);
  auto out = do_clean_pass(job, map, stop);
  if (!out) remove_cleaned_files(job.dir);  // finished segments of an abandoned pass
  return out;
}

}  // namespace runnel::storage
