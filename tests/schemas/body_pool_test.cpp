#include "schemas/body_pool.h"

#include <doctest/doctest.h>

#include <cstring>
#include <thread>

using namespace runnel::schemas;

TEST_CASE("body_pool: a dropped large body's memory serves the next one, small bodies are not pooled") {
  auto pool = body_pool::make(8 << 20);
  const std::byte* first = nullptr;
  {
    auto b = pool->take(1 << 20);
    REQUIRE(b.bytes.size() == std::size_t{1} << 20);
    std::memset(b.bytes.data(), 7, b.bytes.size());
    first = b.bytes.data();
    CHECK(pool->free_bytes() == 0);
  }
  CHECK(pool->free_bytes() >= std::size_t{1} << 20);
  {
    auto b = pool->take(512 * 1024);  // smaller: the same block holds it
    CHECK(b.bytes.data() == first);
    CHECK(b.bytes.size() == 512 * 1024);
    CHECK(pool->free_bytes() == 0);
    auto c = pool->take(512 * 1024);  // the block is taken: a new one
    CHECK(c.bytes.data() != first);
  }
  auto small = pool->take(100);
  CHECK(small.bytes.size() == 100);
  small = {};
  CHECK(pool->free_bytes() <= std::size_t{8} << 20);
}

TEST_CASE("body_pool: keeps no more than its bound, and a body may outlive its pool or be dropped on another thread") {
  auto pool = body_pool::make(3 << 20);
  {
    auto a = pool->take(2 << 20);
    auto b = pool->take(2 << 20);
  }
  CHECK(pool->free_bytes() == std::size_t{2} << 20);  // the second did not fit
  auto big = pool->take(4 << 20);  // above the bound: freed when dropped
  big = {};
  CHECK(pool->free_bytes() == std::size_t{2} << 20);

  auto held = pool->take(1 << 20);
  std::thread([h = std::move(held)]() mutable { h = {}; }).join();
  CHECK(pool->free_bytes() == std::size_t{2} << 20);  // the 2 MiB block went to `held` and came back

  auto orphan = pool->take(1 << 20);
  pool.reset();
  std::memset(orphan.bytes.data(), 1, orphan.bytes.size());  // still valid memory
  orphan = {};  // freed: no pool to go back to (ASan checks the leak and the use)
}
