#pragma once
// dedup_window: one partition's message-id window (topic config
// dedup.window.ms, what NATS JetStream calls Nats-Msg-Id): the ids that
// records carried in their `runnel.msg.id` header within the window, each
// with the offset of its first copy. The leader drops a record whose id
// is in the window and answers that offset instead.
//
// Time is the records' own timestamps: the leader, a follower replicating
// and a rebuild reading the log back see the same window. Bounded by
// max_ids (dedup.window.max.ids): past it the oldest ids leave early and
// evicted_early() counts them.
//
// On the log's shard; not thread-safe.

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <utility>
#include <optional>
#include <string_view>
#include <vector>

#include "broker/storage/types.h"

namespace runnel::storage {

inline constexpr std::string_view msg_id_header = "runnel.msg.id";
inline constexpr std::size_t max_msg_id_bytes = 256;

// Layout (ADR 0011, "The table"): ids in insertion order in a FIFO of
// 32-byte entries (one ring, contiguous: no allocation per entry, and the
// front and back are sequential streams), their bytes in 64 KiB blocks of
// an arena freed from the front;
// an open-addressed table (linear probing) of (32-bit hash tag, entry
// sequence) pairs, 8 bytes a slot, at most half full of live ids. A lookup
// of a new id touches one slot's cache line; the id bytes are compared only
// when the hashes match. An id leaving from the front of the FIFO leaves
// its slot behind, dead (its sequence is below the FIFO's): no random
// access to evict. Inserts reuse dead slots on their probe path, and a
// sweep in slot order clears the rest once they reach an eighth of the
// table.
class dedup_window {
 public:
  dedup_window(std::chrono::milliseconds window, std::size_t max_ids) : window_(window), max_ids_(max_ids) {}

  [[nodiscard]] static std::uint64_t hash_of(std::string_view id) noexcept;

  // The offset of `id`'s first copy, when it was seen within the window
  // that ends at `now_ms`.
  [[nodiscard]] std::optional<offset> find(std::string_view id, std::int64_t now_ms) const {
    return find(id, hash_of(id), now_ms);
  }
  [[nodiscard]] std::optional<offset> find(std::string_view id, std::uint64_t hash, std::int64_t now_ms) const;
  // Records the first copy of `id` at offset `at` with timestamp `ts_ms`
  // (a later copy of an id in the window changes nothing).
  void add(std::string_view id, offset at, std::int64_t ts_ms) { add(id, hash_of(id), at, ts_ms); }
  void add(std::string_view id, std::uint64_t hash, offset at, std::int64_t ts_ms);
  // A leader's batch in one probe per id: the offset of the first copy
  // when `id` was seen within the window that ends at `now_ms`, or was
  // added at or after `batch_from` (earlier in the same batch, whatever
  // its timestamp); otherwise `id` is added as add() would and the answer
  // is nullopt. At the bound, an id earlier in the batch may have left
  // early like any other.
  std::optional<offset> find_or_add(std::string_view id, std::uint64_t hash, offset at, std::int64_t ts_ms,
                                    std::int64_t now_ms, offset batch_from);
  // Cache hints for a batch, called once before its finds and adds with
  // the hashes of its ids: the slots they probe first, in one tight loop.
  // Back-to-back prefetches overlap their misses; one between each
  // record's decoding did not (runnel-window-bench, ADR 0011).
  // An asm statement, not __builtin_prefetch: GCC 12 at -O2 deletes the
  // builtin here (ipa-modref finds this const member free of side effects
  // and the call goes as dead code; `objdump -d` of the broker showed no
  // prefetch at all), and the misses it was meant to hide came back.
  template <typename Hashes>
  void prefetch_batch(const Hashes& hashes) const {
    if (table_.empty()) return;
    const std::size_t mask = table_.size() - 1;
    for (std::uint64_t h : hashes) {
      const slot* p = &table_[home_of(tag_of(h), mask)];
#if defined(__x86_64__)
      asm volatile("prefetcht0 %0" : : "m"(*p));
#else
      __builtin_prefetch(p);
#endif
    }
  }
  // Forgets ids older than the window that ends at `now_ms`.
  void expire(std::int64_t now_ms);
  // Forgets ids whose first copy is at or after `from` (a truncation).
  void truncate(offset from);
  void clear();
  // New settings (an altered topic config); a smaller bound evicts now.
  void set_limits(std::chrono::milliseconds window, std::size_t max_ids);

  [[nodiscard]] std::size_t size() const { return live_; }
  // Entries held, superseded ones (an id that expired and came back)
  // included: at most about twice size() plus 4096.
  [[nodiscard]] std::size_t entries() const { return order_.size(); }
  [[nodiscard]] std::uint64_t evicted_early() const { return evicted_early_; }
  [[nodiscard]] std::chrono::milliseconds window() const { return window_; }

 private:
  // 32 bytes. No hash: the slot's tag stands for it in lookups, and the
  // rare paths that need it (a truncation, a rebuild) hash the id again.
  struct entry {
    offset at{0};
    std::int64_t ts = 0;
    std::uint64_t id_pos = 0;  // in the arena
    std::uint16_t id_len = 0;
    bool live = true;  // false: superseded by a newer first copy of its id
  };
  // 8 bytes: a 32-bit tag from the hash's high half (never 0: 0 is an
  // empty slot; its bits above the lowest also give the slot's home) and
  // the low 32 bits of the entry's sequence (entries in the FIFO span
  // fewer than 2^32 sequences, so the low half names one).
  struct slot {
    std::uint32_t tag = 0;
    std::uint32_t seq = 0;
  };
  [[nodiscard]] static std::uint32_t tag_of(std::uint64_t h) { return static_cast<std::uint32_t>(h >> 32) | 1U; }
  [[nodiscard]] static std::size_t home_of(std::uint32_t tag, std::size_t mask) { return (tag >> 1) & mask; }
  // Slots name entries by the low half of their sequence: relative to the
  // FIFO's front, a live slot's is below order_.size(); a dead one's (its
  // entry has left) wraps far above it.
  [[nodiscard]] std::uint32_t index_of(const slot& s) const {
    return s.seq - static_cast<std::uint32_t>(first_seq_);
  }
  [[nodiscard]] bool dead(const slot& s) const { return index_of(s) >= order_.size(); }
  [[nodiscard]] std::uint64_t seq_of(const slot& s) const { return first_seq_ + index_of(s); }
  // Memory for the table and the FIFO: zeroed; from 2 MiB up its own
  // mapping with transparent huge pages asked for (madvise), since random
  // probes into tens of MiB otherwise miss the TLB on nearly every lookup.
  class raw_memory {
   public:
    raw_memory() = default;
    explicit raw_memory(std::size_t bytes);
    ~raw_memory();
    raw_memory(const raw_memory&) = delete;             // owns its memory
    raw_memory& operator=(const raw_memory&) = delete;  // owns its memory
    raw_memory(raw_memory&& o) noexcept
        : data_(std::exchange(o.data_, nullptr)), bytes_(std::exchange(o.bytes_, 0)), mapped_(o.mapped_) {}
    raw_memory& operator=(raw_memory&& o) noexcept;
    [[nodiscard]] void* data() const { return data_; }

   private:
    void release() noexcept;
    void* data_ = nullptr;
    std::size_t bytes_ = 0;
    bool mapped_ = false;
  };
  // n zeroed Ts (trivial types only) in raw_memory.
  template <typename T>
  class big_array {
   public:
    big_array() = default;
    explicit big_array(std::size_t n) : mem_(n * sizeof(T)), n_(n) {}
    [[nodiscard]] std::size_t size() const { return n_; }
    [[nodiscard]] bool empty() const { return n_ == 0; }
    T& operator[](std::size_t i) { return data()[i]; }
    const T& operator[](std::size_t i) const { return data()[i]; }
    [[nodiscard]] const T* begin() const { return data(); }
    [[nodiscard]] const T* end() const { return data() + n_; }

   private:
    [[nodiscard]] T* data() const { return static_cast<T*>(mem_.data()); }
    raw_memory mem_;
    std::size_t n_ = 0;
  };
  // The FIFO: entries first_seq_ .. first_seq_ + size() - 1 in a ring of
  // power-of-two capacity that doubles when full.
  class entry_ring {
   public:
    [[nodiscard]] std::size_t size() const { return size_; }
    [[nodiscard]] bool empty() const { return size_ == 0; }
    entry& operator[](std::size_t i) { return ring_[(head_ + i) & (ring_.size() - 1)]; }
    const entry& operator[](std::size_t i) const { return ring_[(head_ + i) & (ring_.size() - 1)]; }
    entry& front() { return (*this)[0]; }
    entry& back() { return (*this)[size_ - 1]; }
    void push_back(const entry& e);
    void pop_front() {
      head_ = (head_ + 1) & (ring_.size() - 1);
      --size_;
    }
    void pop_back() { --size_; }
    void clear() {
      ring_ = big_array<entry>();
      head_ = size_ = 0;
    }

   private:
    big_array<entry> ring_;
    std::size_t head_ = 0;
    std::size_t size_ = 0;
  };
  // The entry's id bytes live in blocks of block_bytes; an id never
  // straddles two. Positions grow forever; blocks below the oldest entry's
  // go.
  static constexpr std::uint64_t block_bytes = 64 * 1024;

  [[nodiscard]] std::string_view id_of(const entry& e) const;
  [[nodiscard]] const entry& entry_at(std::uint64_t seq) const { return order_[seq - first_seq_]; }
  // The slot holding entry `seq` of hash `h` (table_.size() if none).
  [[nodiscard]] std::size_t slot_of(std::uint64_t h, std::uint64_t seq) const;
  // The slot of the live entry for `id`, or table_.size().
  [[nodiscard]] std::size_t lookup(std::string_view id, std::uint64_t h) const;
  void erase_slot(std::size_t i);
  void insert_slot(std::uint64_t h, std::uint64_t seq);
  // add()'s and find_or_add()'s second half: `i` is lookup()'s answer.
  void add_at(std::string_view id, std::uint64_t hash, std::size_t i, offset at, std::int64_t ts_ms);
  void grow();
  // Empties the dead slots, then moves each live one back to the first
  // empty slot of its probe path: two walks in slot order.
  void sweep();
  std::uint64_t store_id(std::string_view id);
  void pop_front();  // the oldest entry goes (its slot, if live, becomes dead)
  void pop_back();   // the newest entry goes (and its slot, if live)
  void evict_to_bound();  // the oldest live ids go while there are more than max_ids_
  // The FIFO again from its live entries below `from` (superseded ones and
  // the rest dropped), in their order.
  void keep_live_below(offset from);
  void release_blocks();

  std::chrono::milliseconds window_;
  std::size_t max_ids_;
  entry_ring order_;          // oldest first; order_[i] is entry first_seq_ + i
  std::uint64_t first_seq_ = 0;
  big_array<slot> table_;     // power-of-two size
  std::size_t live_ = 0;
  std::size_t dead_ = 0;      // slots whose entry left the FIFO
  std::uint64_t swept_at_ = 0;  // first_seq_ when no slot was dead
  std::deque<std::unique_ptr<char[]>> blocks_;  // blocks_[i] is block first_block_ + i
  std::uint64_t first_block_ = 0;
  std::unique_ptr<char[]> spare_;  // the block freed last, for the next
  std::uint64_t next_pos_ = 0;  // where the next id goes
  bool in_offset_order_ = true;  // every add so far at a higher offset than the last
  std::uint64_t evicted_early_ = 0;
};

}  // namespace runnel::storage
