#include "broker/storage/dedup_window.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <functional>
#include <limits>
#include <string>
#include <utility>

namespace runnel::storage {

namespace {
constexpr std::size_t huge_page_bytes = 2 << 20;
}  // namespace

dedup_window::raw_memory::raw_memory(std::size_t bytes) : bytes_(bytes) {
  if (bytes >= huge_page_bytes) {
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    (void)::madvise(p, bytes, MADV_HUGEPAGE);  // a hint: without THP it stays 4 KiB pages
    data_ = p;
    mapped_ = true;
  } else if (bytes > 0) {
    data_ = std::calloc(bytes, 1);
    if (data_ == nullptr) throw std::bad_alloc();
  }
}

dedup_window::raw_memory::~raw_memory() { release(); }

dedup_window::raw_memory& dedup_window::raw_memory::operator=(raw_memory&& o) noexcept {
  if (this != &o) {
    release();
    data_ = std::exchange(o.data_, nullptr);
    bytes_ = std::exchange(o.bytes_, 0);
    mapped_ = o.mapped_;
  }
  return *this;
}

void dedup_window::raw_memory::release() noexcept {
  if (data_ == nullptr) return;
  if (mapped_) {
    ::munmap(data_, bytes_);
  } else {
    std::free(data_);
  }
  data_ = nullptr;
  bytes_ = 0;
}

void dedup_window::entry_ring::push_back(const entry& e) {
  if (size_ == ring_.size()) {
    // Full: twice the room (the new ring first: if it cannot be had, the
    // old one stays), the entries moved to its start in order.
    big_array<entry> next(ring_.empty() ? 1024 : ring_.size() * 2);
    for (std::size_t i = 0; i < size_; ++i) next[i] = (*this)[i];
    ring_ = std::move(next);
    head_ = 0;
  }
  ring_[(head_ + size_) & (ring_.size() - 1)] = e;
  ++size_;
}

std::uint64_t dedup_window::hash_of(std::string_view id) noexcept { return std::hash<std::string_view>{}(id); }

std::string_view dedup_window::id_of(const entry& e) const {
  const auto& block = blocks_[e.id_pos / block_bytes - first_block_];
  return {block.get() + e.id_pos % block_bytes, e.id_len};
}

std::size_t dedup_window::lookup(std::string_view id, std::uint64_t h) const {
  if (table_.empty()) return 0;
  const std::size_t mask = table_.size() - 1;
  const std::uint32_t tag = tag_of(h);
  for (std::size_t i = home_of(tag, mask); table_[i].tag != 0; i = (i + 1) & mask) {
    if (table_[i].tag == tag && !dead(table_[i])) {
      if (id_of(entry_at(seq_of(table_[i]))) == id) return i;
    }
  }
  return table_.size();
}

std::size_t dedup_window::slot_of(std::uint64_t h, std::uint64_t seq) const {
  const std::size_t mask = table_.size() - 1;
  const std::uint32_t tag = tag_of(h);
  for (std::size_t i = home_of(tag, mask); table_[i].tag != 0; i = (i + 1) & mask) {
    if (table_[i].tag == tag && table_[i].seq == static_cast<std::uint32_t>(seq)) return i;
  }
  return table_.size();
}

// Into the first empty or dead slot of the probe path: a dead slot is
// taken like an empty one (lookups passed over it anyway, so every path
// through it stays unbroken).
void dedup_window::insert_slot(std::uint64_t h, std::uint64_t seq) {
  const std::size_t mask = table_.size() - 1;
  const std::uint32_t tag = tag_of(h);
  std::size_t i = home_of(tag, mask);
  while (table_[i].tag != 0 && !dead(table_[i])) i = (i + 1) & mask;
  if (table_[i].tag != 0) --dead_;
  table_[i] = slot{tag, static_cast<std::uint32_t>(seq)};
}

// Backward-shift deletion: the slots after `i` up to the next empty one
// move back when their home is not between `i` and where they are, so
// every probe sequence stays unbroken and no tombstones pile up.
void dedup_window::erase_slot(std::size_t i) {
  const std::size_t mask = table_.size() - 1;
  for (std::size_t j = i;;) {
    j = (j + 1) & mask;
    if (table_[j].tag == 0) break;
    const std::size_t home = home_of(table_[j].tag, mask);
    const bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
    if (stays) continue;
    table_[i] = table_[j];
    i = j;
  }
  table_[i] = slot{};
}

void dedup_window::grow() {
  // The new table first: if its memory cannot be had, the old one stays.
  big_array<slot> next(table_.empty() ? 16 : table_.size() * 2);
  const std::size_t mask = next.size() - 1;
  for (const auto& s : table_) {
    if (s.tag == 0 || dead(s)) continue;
    std::size_t i = home_of(s.tag, mask);
    while (next[i].tag != 0) i = (i + 1) & mask;
    next[i] = s;
  }
  table_ = std::move(next);
  dead_ = 0;
  swept_at_ = first_seq_;
}

void dedup_window::sweep() {
  const std::size_t n = table_.size();
  const std::size_t mask = n - 1;
  const auto first = static_cast<std::uint32_t>(first_seq_);
  const auto held = static_cast<std::uint32_t>(order_.size());
  // Start after a slot that is empty now: no probe path crosses it, so in
  // the walk from there every live slot's home comes before the slot.
  std::size_t start = 0;
  while (table_[start].tag != 0) ++start;  // the table is never full
  for (std::size_t k = 1; k <= n; ++k) {
    const std::size_t i = (start + k) & mask;
    const slot s = table_[i];
    if (s.tag == 0) continue;
    if (s.seq - first >= held) {  // dead
      table_[i] = slot{};
      continue;
    }
    // Every slot between its home and here has been walked already: the
    // first empty one among them is where it belongs now.
    std::size_t to = home_of(s.tag, mask);
    while (to != i && table_[to].tag != 0) to = (to + 1) & mask;
    if (to != i) {
      table_[to] = s;
      table_[i] = slot{};
    }
  }
  dead_ = 0;
  swept_at_ = first_seq_;
}

std::uint64_t dedup_window::store_id(std::string_view id) {
  if (next_pos_ % block_bytes + id.size() > block_bytes) next_pos_ = (next_pos_ / block_bytes + 1) * block_bytes;
  const std::uint64_t block = next_pos_ / block_bytes;
  if (blocks_.empty()) first_block_ = block;
  while (first_block_ + blocks_.size() <= block) {
    // The block freed last, if any: no fresh pages (and no zeroing) for
    // a window that is turning over.
    blocks_.push_back(spare_ ? std::move(spare_) : std::make_unique_for_overwrite<char[]>(block_bytes));
  }
  std::memcpy(blocks_[block - first_block_].get() + next_pos_ % block_bytes, id.data(), id.size());
  const std::uint64_t at = next_pos_;
  next_pos_ += id.size();
  return at;
}

void dedup_window::release_blocks() {
  const std::uint64_t needed = (order_.empty() ? next_pos_ : order_.front().id_pos) / block_bytes;
  while (!blocks_.empty() && first_block_ < needed) {
    spare_ = std::move(blocks_.front());
    blocks_.pop_front();
    ++first_block_;
  }
}

std::optional<offset> dedup_window::find(std::string_view id, std::uint64_t hash, std::int64_t now_ms) const {
  const std::size_t i = lookup(id, hash);
  if (i == table_.size()) return std::nullopt;
  const entry& e = entry_at(seq_of(table_[i]));
  if (e.ts < now_ms - window_.count()) return std::nullopt;
  return e.at;
}

void dedup_window::add(std::string_view id, std::uint64_t hash, offset at, std::int64_t ts_ms) {
  add_at(id, hash, lookup(id, hash), at, ts_ms);
}

std::optional<offset> dedup_window::find_or_add(std::string_view id, std::uint64_t hash, offset at,
                                                std::int64_t ts_ms, std::int64_t now_ms, offset batch_from) {
  const std::size_t i = lookup(id, hash);
  if (i != table_.size()) {
    const entry& old = entry_at(seq_of(table_[i]));
    if (old.at >= batch_from || old.ts >= now_ms - window_.count()) return old.at;
  }
  add_at(id, hash, i, at, ts_ms);
  return std::nullopt;
}

void dedup_window::add_at(std::string_view id, std::uint64_t hash, std::size_t i, offset at, std::int64_t ts_ms) {
  const bool known = i != table_.size();
  if (known) {
    auto& old = order_[seq_of(table_[i]) - first_seq_];
    if (old.ts >= ts_ms - window_.count()) return;  // still in the window: the first copy stays
    old.live = false;                               // expired: this is a new first copy
  } else if (table_.empty() || ((live_ + 1) * 2 > table_.size() && live_ < max_ids_)) {
    // At the bound the add evicts one at once: no growth for it (a
    // power-of-two bound would otherwise get a table twice too large).
    grow();
  }
  const std::uint64_t seq = first_seq_ + order_.size();
  if (!order_.empty() && at <= order_.back().at) in_offset_order_ = false;
  order_.push_back(entry{at, ts_ms, store_id(id), static_cast<std::uint16_t>(id.size()), true});
  if (known) {
    table_[i].seq = static_cast<std::uint32_t>(seq);
  } else {
    insert_slot(hash, seq);
    ++live_;
  }
  evict_to_bound();
  // Also every 2^31 sequences: a dead slot names its entry by the low 32
  // bits of its sequence, and one left that long would look live again.
  if (dead_ > table_.size() / 8 || first_seq_ - swept_at_ > (std::uint64_t{1} << 31)) sweep();
  // Superseded entries (ids that expired and came back) wait in the FIFO
  // for expiry; when they outnumber the live ones, the FIFO is rebuilt
  // without them (amortized: at most once per live_ + 4096 adds). This also
  // keeps it far below the 2^31 sequences a slot can name.
  if (order_.size() > 2 * live_ + 4096) keep_live_below(offset(std::numeric_limits<std::int64_t>::max()));
}

void dedup_window::evict_to_bound() {
  while (live_ > max_ids_) {
    while (!order_.front().live) pop_front();
    pop_front();
    ++evicted_early_;
  }
}

void dedup_window::keep_live_below(offset from) {
  std::vector<std::pair<std::string, entry>> keep;
  keep.reserve(live_);
  for (std::size_t i = 0; i < order_.size(); ++i) {
    const entry& e = order_[i];
    if (e.live && e.at < from) keep.emplace_back(std::string(id_of(e)), e);
  }
  const auto evicted = evicted_early_;
  clear();
  for (const auto& [id, e] : keep) add(id, e.at, e.ts);  // re-derives in_offset_order_
  evicted_early_ = evicted;
}

void dedup_window::pop_front() {
  const entry& e = order_.front();
  if (e.live) {
    ++dead_;  // its slot stays, dead once the entry is gone
    --live_;
  }
  order_.pop_front();
  ++first_seq_;
  release_blocks();
}

void dedup_window::pop_back() {
  const entry& e = order_.back();
  if (e.live) {
    erase_slot(slot_of(hash_of(id_of(e)), first_seq_ + order_.size() - 1));
    --live_;
  }
  order_.pop_back();
}

void dedup_window::expire(std::int64_t now_ms) {
  // Ids come mostly in timestamp order: stop at the first one in the window.
  while (!order_.empty() && (!order_.front().live || order_.front().ts < now_ms - window_.count())) pop_front();
}

void dedup_window::truncate(offset from) {
  if (in_offset_order_) {
    while (!order_.empty() && order_.back().at >= from) pop_back();
    return;
  }
  // Added out of offset order (not seen from the log's own paths): keep
  // what is below `from`, in its order.
  keep_live_below(from);
}

void dedup_window::set_limits(std::chrono::milliseconds window, std::size_t max_ids) {
  window_ = window;
  max_ids_ = max_ids;
  evict_to_bound();
}

void dedup_window::clear() {
  order_.clear();
  table_ = big_array<slot>();
  blocks_.clear();
  first_seq_ = 0;
  first_block_ = 0;
  next_pos_ = 0;
  live_ = 0;
  dead_ = 0;
  swept_at_ = 0;
  in_offset_order_ = true;
}

}  // namespace runnel::storage
