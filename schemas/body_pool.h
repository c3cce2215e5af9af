#pragma once
// body_pool: memory for the bodies of response frames that a client reads
// (the SDK's wire_client, the broker's peer_client), recycled. A large
// body (a fetch answer) goes back to its pool when its last holder drops
// it, and the next large body reuses it: pages already resident, nothing
// zeroed. Fresh memory for every fetch answer cost a catch-up consumer a
// fifth of its CPU, the kernel clearing new pages (15 %) and the vector
// zeroing them again (3 %) (docs/performance.md, "The read path").
//
// Thread-safe: bodies are taken on a client's I/O thread and dropped
// wherever the records that point into them are dropped. A body may
// outlive its pool (then its memory is simply freed).

#include <cstddef>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

namespace runnel::schemas {

struct frame_body {
  std::shared_ptr<const void> owner;  // keeps `bytes` valid
  std::span<std::byte> bytes;         // uninitialized until read into
};

class body_pool : public std::enable_shared_from_this<body_pool> {
 public:
  // Bodies below this many bytes are plain allocations: the heap reuses
  // small blocks well by itself.
  static constexpr std::size_t min_pooled_bytes = 64 * 1024;

  // Keeps at most `max_free_bytes` of dropped bodies for reuse.
  static std::shared_ptr<body_pool> make(std::size_t max_free_bytes);

  // `n` bytes for a body.
  frame_body take(std::size_t n);

  [[nodiscard]] std::size_t free_bytes() const;

 private:
  struct block {
    std::unique_ptr<std::byte[]> data;
    std::size_t capacity = 0;
  };
  explicit body_pool(std::size_t max_free_bytes) : max_free_bytes_(max_free_bytes) {}
  void give_back(block b);

  const std::size_t max_free_bytes_;
  mutable std::mutex mu_;
  std::vector<block> free_;  // guarded by mu_
  std::size_t free_bytes_ = 0;  // guarded by mu_
};

}  // namespace runnel::schemas
