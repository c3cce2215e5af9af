#include "broker/storage/segment.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include "broker/storage/errc.h"
#include "broker/storage/io_ring.h"
#include "broker/storage/logger.h"
#include "schemas/assert.h"

namespace runnel::storage {

namespace {

// Reads a segment file through the ring in chunks and hands out byte ranges
// from the current chunk, reading again only when a range is not in it.
class chunk_reader {
 public:
  chunk_reader(io_ring& ring, int fd, file_pos end, std::size_t chunk)
      : ring_(ring), fd_(fd), end_(end), chunk_(chunk) {}

  // Bytes [p, p + n) clipped to the end of the file: a shorter span means
  // the file ends first.
  asio::awaitable<std::expected<std::span<const std::byte>, std::error_code>> get(file_pos p, std::size_t n) {
    std::uint64_t avail = p < end_ ? end_ - p : 0;
    n = static_cast<std::size_t>(std::min<std::uint64_t>(n, avail));
    if (n == 0) co_return std::span<const std::byte>{};
    if (p < buf_pos_ || p + n > buf_pos_ + buf_len_) {
      std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(std::max(n, chunk_), avail));
      if (buf_.size() < want) buf_.resize(want);
      if (auto ec = co_await ring_.read_exact(fd_, std::span(buf_).first(want), p.value())) {
        co_return std::unexpected(ec);
      }
      buf_pos_ = p;
      buf_len_ = want;
    }
    co_return std::span<const std::byte>(buf_).subspan(static_cast<std::size_t>(p - buf_pos_), n);
  }

  // The header of the batch at p, or nullopt when fewer than a header's
  // bytes remain or the header is malformed.
  asio::awaitable<std::expected<std::optional<schemas::batch_header>, std::error_code>> header(file_pos p) {
    auto bytes = co_await get(p, schemas::batch_header_size);
    if (!bytes) co_return std::unexpected(bytes.error());
    if (bytes->size() < schemas::batch_header_size) co_return std::nullopt;
    auto h = schemas::decode_header(*bytes);
    if (!h) co_return std::nullopt;
    co_return *h;
  }

 private:
  io_ring& ring_;
  int fd_;
  file_pos end_;
  std::size_t chunk_;
  std::vector<std::byte> buf_;
  file_pos buf_pos_{0};
  std::size_t buf_len_ = 0;
};

constexpr std::size_t scan_chunk = 1U << 20;
constexpr std::size_t walk_chunk = 16U << 10;

std::error_code read_whole(const file_handle& fd, std::vector<std::byte>& out) {
  auto size = fd.size();
  if (!size) return size.error();
  out.resize(static_cast<std::size_t>(*size));
  return fd.pread_exact(out, 0);
}

}  // namespace

std::filesystem::path segment_path(const std::filesystem::path& dir, offset base, const char* ext) {
  return dir / fmt::format("{:020}{}", base.value(), ext);
}

std::optional<offset> parse_segment_name(const std::filesystem::path& p, const char* ext) {
  if (p.extension() != ext) return std::nullopt;
  auto stem = p.stem().string();
  if (stem.size() != 20) return std::nullopt;
  std::int64_t v = 0;
  auto [ptr, ec] = std::from_chars(stem.data(), stem.data() + stem.size(), v);
  if (ec != std::errc{} || ptr != stem.data() + stem.size() || v < 0) return std::nullopt;
  return offset(v);
}

segment::segment(std::filesystem::path dir, offset base, const log_config& cfg)
    : log_path_(segment_path(dir, base, ".log")),
      index_path_(segment_path(dir, base, ".index")),
      timeindex_path_(segment_path(dir, base, ".timeindex")),
      base_(base),
      cfg_(cfg),
      next_offset_(base),
      written_next_(base),
      index_(base),
      time_index_(base),
      created_(std::chrono::steady_clock::now()) {}

segment::~segment() = default;

std::error_code segment::create() {
  constexpr int flags = O_RDWR | O_CREAT | O_EXCL;
  auto log = file_handle::open(log_path_, flags);
  if (!log) return log.error();
  auto idx = file_handle::open(index_path_, O_RDWR | O_CREAT | O_TRUNC);
  if (!idx) return idx.error();
  auto tidx = file_handle::open(timeindex_path_, O_RDWR | O_CREAT | O_TRUNC);
  if (!tidx) return tidx.error();
  file_ = std::make_shared<const segment_file>(std::move(*log));
  index_fd_ = std::move(*idx);
  timeindex_fd_ = std::move(*tidx);
  return {};
}

std::error_code segment::open_existing() {
  auto log = file_handle::open(log_path_, O_RDWR);
  if (!log) return log.error();
  auto size = log->size();
  if (!size) return size.error();
  // A missing index is rebuilt: create it empty.
  auto idx = file_handle::open(index_path_, O_RDWR | O_CREAT);
  if (!idx) return idx.error();
  auto tidx = file_handle::open(timeindex_path_, O_RDWR | O_CREAT);
  if (!tidx) return tidx.error();

  std::vector<std::byte> bytes;
  if (auto ec = read_whole(*idx, bytes)) return ec;
  index_ = offset_index::decode(base_, bytes, file_pos(*size));
  if (auto ec = read_whole(*tidx, bytes)) return ec;
  // Time entries must name offsets the log can hold; the precise end is
  // unknown until the scan, so bound them by the last offset entry.
  offset bound = index_.empty() ? base_ + 1 : index_.back().off + 1;
  time_index_ = time_index::decode(base_, bytes, bound);

  file_ = std::make_shared<const segment_file>(std::move(*log));
  index_fd_ = std::move(*idx);
  timeindex_fd_ = std::move(*tidx);
  size_ = written_ = file_pos(*size);
  allocated_ = size_;
  return {};
}

void segment::reset_index_state() {
  index_.clear();
  time_index_.truncate_entries(0);
  bytes_since_index_ = 0;
  max_ts_ = timestamp_ms(-1);
  max_ts_offset_ = base_;
}

void segment::index_batch(file_pos pos, const schemas::batch_header& h, bool already_indexed) {
  if (h.max_timestamp > max_ts_) {
    max_ts_ = h.max_timestamp;
    max_ts_offset_ = h.base_offset;
  }
  if (already_indexed) {
    bytes_since_index_ = 0;
  } else if (pos.value() > 0 && bytes_since_index_ >= cfg_.index_interval_bytes) {
    index_.append({h.base_offset, pos});
    time_index_.append({max_ts_, max_ts_offset_});
    bytes_since_index_ = 0;
  }
  bytes_since_index_ += h.length;
}

file_pos segment::reserve(const schemas::batch_header& h) {
  // A gap only where the log allowed one (a replica of a compacted topic
  // copying its leader's cleaned batches, log::append_replica).
  RUNNEL_ASSERT(h.base_offset == next_offset_ || (h.base_offset > next_offset_ && h.base_offset <= gaps_below_),
                "append of offset {} to segment ending at {}", h.base_offset, next_offset_);
  file_pos pos = size_;
  index_batch(pos, h, false);
  size_ += h.length;
  next_offset_ = h.next_offset();
  return pos;
}

asio::awaitable<std::expected<scan_result, std::error_code>> segment::recover(io_ring& ring, bool verify_all) {
  chunk_reader reader(ring, fd(), written_, scan_chunk);

  // Keep index entries only up to the last one that points at a good batch
  // with the offset it names, and only as many as both files agree on.
  std::size_t keep = verify_all ? 0 : std::min(index_.size(), time_index_.size());
  while (keep > 0) {
    const auto& e = index_[keep - 1];
    auto h = co_await reader.header(e.pos);
    if (!h) co_return std::unexpected(h.error());
    if (*h && (*h)->base_offset == e.off && e.pos + (*h)->length <= written_) {
      auto bytes = co_await reader.get(e.pos, (*h)->length);
      if (!bytes) co_return std::unexpected(bytes.error());
      if (!schemas::check_crc(*bytes, **h)) break;
    }
    --keep;
  }
  if (keep < index_.size() || keep < time_index_.size()) {
    logger().warn("{}: index holds {} entries, {} agree with the log; rebuilding the rest", log_path_.string(),
                  index_.size(), keep);
  }

  file_pos pos{0};
  offset next = base_;
  bool first_indexed = false;
  if (keep == 0) {
    reset_index_state();
  } else {
    index_.truncate_to(index_[keep - 1].off + 1);
    time_index_.truncate_entries(keep);
    pos = index_.back().pos;
    next = index_.back().off;
    max_ts_ = time_index_[keep - 1].ts;
    max_ts_offset_ = time_index_[keep - 1].off;
    first_indexed = true;
  }
  index_persisted_ = index_.size();
  if (auto ec = index_fd_.truncate(index_persisted_ * offset_index::entry_size)) co_return std::unexpected(ec);
  if (auto ec = timeindex_fd_.truncate(index_persisted_ * time_index::entry_size)) co_return std::unexpected(ec);
  index_unsynced_ = true;
  bytes_since_index_ = 0;

  scan_result result;
  for (;;) {
    auto hdr_bytes = co_await reader.get(pos, schemas::batch_header_size);
    if (!hdr_bytes) co_return std::unexpected(hdr_bytes.error());
    if (hdr_bytes->empty()) break;  // clean end on a batch boundary
    // Crash rule: anything that is not a whole, CRC-valid batch with the
    // next dense offset ends the scan here; the caller judges torn vs corrupt.
    if (hdr_bytes->size() < schemas::batch_header_size) {
      result.end = scan_end::torn;
      result.reason = "short batch header";
      break;
    }
    auto h = schemas::decode_header(*hdr_bytes);
    if (!h) {
      result.end = scan_end::torn;
      result.reason = "bad batch length";
      break;
    }
    if (h->magic != schemas::batch_magic) {
      result.end = scan_end::torn;
      result.reason = fmt::format("bad magic {}", h->magic);
      break;
    }
    // Crash rule: offsets only grow; a forward gap is the cleaner's work
    // only where it has been (the gap starts below its checkpoint, which is
    // persisted before cleaned files get their names). Else the scan stops.
    const bool cleaned_gap = h->base_offset > next && next < gaps_below_;
    if (h->base_offset != next && !cleaned_gap) {
      result.end = scan_end::torn;
      result.reason = fmt::format("base offset {} where {} was expected", h->base_offset, next);
      break;
    }
    if (pos + h->length > written_) {
      result.end = scan_end::torn;
      result.reason = fmt::format("batch of {} bytes runs past the end of the file", h->length);
      break;
    }
    auto bytes = co_await reader.get(pos, h->length);
    if (!bytes) co_return std::unexpected(bytes.error());
    if (schemas::check_crc(*bytes, *h)) {
      result.end = scan_end::torn;
      result.reason = "CRC-32C mismatch";
      break;
    }
    index_batch(pos, *h, first_indexed);
    first_indexed = false;
    pos += h->length;
    next = h->next_offset();
  }
  result.stop = pos;
  result.next_offset = next;
  size_ = written_ = pos;
  next_offset_ = written_next_ = next;
  synced_ = file_pos(0);
  co_return result;
}

asio::awaitable<std::error_code> segment::truncate_to(io_ring& ring, file_pos pos, offset next) {
  RUNNEL_ASSERT(written_ == size_, "truncating {} with writes in flight", log_path_.string());
  if (::ftruncate(fd(), static_cast<off_t>(pos.value())) != 0) co_return last_error();
  index_.truncate_to(next);
  time_index_.truncate_entries(index_.size());
  index_persisted_ = std::min(index_persisted_, index_.size());
  size_ = written_ = allocated_ = pos;
  synced_ = std::min(synced_, pos);
  auto r = co_await recover(ring, false);
  if (!r) co_return r.error();
  RUNNEL_ASSERT(r->end == scan_end::clean && r->next_offset == next,
                "{} truncated at {} but rescans to {} ({})", log_path_.string(), pos, r->next_offset, r->reason);
  co_return std::error_code{};
}

asio::awaitable<std::error_code> segment::persist_indexes(io_ring& ring, offset durable_end) {
  std::size_t n = index_persisted_;
  while (n < index_.size() && index_[n].off < durable_end) ++n;
  if (n == index_persisted_) co_return std::error_code{};
  auto entries = index_.encode(index_persisted_, n);
  auto times = time_index_.encode(index_persisted_, n);
  if (auto ec = co_await ring.write_all(index_fd_.get(), entries, index_persisted_ * offset_index::entry_size)) {
    co_return ec;
  }
  if (auto ec = co_await ring.write_all(timeindex_fd_.get(), times, index_persisted_ * time_index::entry_size)) {
    co_return ec;
  }
  index_persisted_ = n;
  index_unsynced_ = true;
  co_return std::error_code{};
}

asio::awaitable<std::error_code> segment::sync_indexes(io_ring& ring) {
  if (auto ec = co_await persist_indexes(ring, written_next_)) co_return ec;
  if (!index_unsynced_) co_return std::error_code{};
  if (auto ec = co_await ring.fdatasync(index_fd_.get())) co_return ec;
  if (auto ec = co_await ring.fdatasync(timeindex_fd_.get())) co_return ec;
  index_unsynced_ = false;
  co_return std::error_code{};
}

asio::awaitable<std::expected<scanned_batch, std::error_code>> segment::find_batch(io_ring& ring, offset o) const {
  RUNNEL_ASSERT(o >= base_ && o < written_next_, "find_batch({}) outside [{}, {})", o, base_, written_next_);
  chunk_reader reader(ring, fd(), written_, walk_chunk);
  auto e = index_.floor(o);
  file_pos pos = e ? e->pos : file_pos(0);
  for (;;) {
    auto h = co_await reader.header(pos);
    if (!h) co_return std::unexpected(h.error());
    if (!*h) {
      logger().error("{}: no valid batch header at position {} while looking for offset {}", log_path_.string(), pos,
                     o);
      co_return std::unexpected(make_error_code(errc::corrupt_log));
    }
    if ((*h)->next_offset() > o) co_return scanned_batch{pos, **h};
    pos += (*h)->length;
  }
}

asio::awaitable<std::expected<segment::range_end, std::error_code>> segment::whole_batches_end(
    io_ring& ring, file_pos from, offset from_offset, file_pos limit) const {
  RUNNEL_ASSERT(limit <= written_ && from < written_, "range [{}, {}) outside written {}", from, limit, written_);
  if (limit == written_) co_return range_end{written_, written_next_};
  // Start the walk at the last indexed boundary at or before the limit.
  file_pos pos = from;
  offset next = from_offset;
  if (auto e = index_.floor_pos(limit); e && e->pos > from) {
    pos = e->pos;
    next = e->off;
  }
  chunk_reader reader(ring, fd(), written_, walk_chunk);
  for (;;) {
    auto h = co_await reader.header(pos);
    if (!h) co_return std::unexpected(h.error());
    if (!*h) {
      logger().error("{}: no valid batch header at position {}", log_path_.string(), pos);
      co_return std::unexpected(make_error_code(errc::corrupt_log));
    }
    bool fits = pos + (*h)->length <= limit;
    if (!fits && pos != from) break;
    pos += (*h)->length;
    next = (*h)->next_offset();
    if (!fits) break;  // the first batch alone is larger than the limit
  }
  co_return range_end{pos, next};
}

asio::awaitable<std::expected<std::optional<offset>, std::error_code>> segment::find_timestamp(
    io_ring& ring, timestamp_ms t) const {
  if (written_.value() == 0) co_return std::nullopt;
  offset start = base_;
  if (auto te = time_index_.floor(t)) start = te->off;
  auto e = index_.floor(start);
  file_pos pos = e ? e->pos : file_pos(0);
  chunk_reader reader(ring, fd(), written_, walk_chunk);
  while (pos < written_) {
    auto h = co_await reader.header(pos);
    if (!h) co_return std::unexpected(h.error());
    if (!*h) {
      logger().error("{}: no valid batch header at position {}", log_path_.string(), pos);
      co_return std::unexpected(make_error_code(errc::corrupt_log));
    }
    if ((*h)->max_timestamp >= t) co_return (*h)->base_offset;
    pos += (*h)->length;
  }
  co_return std::nullopt;
}

std::error_code segment::remove_files() {
  std::error_code first;
  for (const auto* p : {&log_path_, &index_path_, &timeindex_path_}) {
    if (::unlink(p->c_str()) != 0 && errno != ENOENT && !first) first = last_error();
  }
  return first;
}

}  // namespace runnel::storage
