#include "tests/support/log_fixture.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include "broker/storage/segment.h"

namespace runnel::testing {

log_fixture::~log_fixture() {
  if (l) close();
}

std::error_code log_fixture::open() {
  auto r = run(io, storage::log::open(ring, dir, topic_partition{"t", partition_id(0)}, cfg));
  if (!r) return r.error();
  l = std::move(*r);
  return {};
}

storage::log& log_fixture::reopen() {
  l.reset();
  auto ec = open();
  REQUIRE_MESSAGE(!ec, "open failed: ", ec.message());
  return *l;
}

offset log_fixture::append(std::vector<std::byte> batch) {
  auto r = run(io, l->append(batch));
  if (!r) FAIL("append failed: " << r.error().message());
  return r->base_offset;
}

offset log_fixture::append_n(int n, int records, std::size_t value_size) {
  offset last{-1};
  for (int i = 0; i < n; ++i) {
    last = append(make_batch(records, value_size, timestamp_ms(1000 + i), static_cast<std::uint8_t>(i)));
  }
  return last;
}

std::error_code log_fixture::flush() { return run(io, l->flush()); }

std::error_code log_fixture::close() {
  auto ec = run(io, l->close());
  l.reset();
  return ec;
}

void log_fixture::crash() { l.reset(); }

std::vector<schemas::batch_header> log_fixture::read_all(offset from, std::vector<std::vector<std::byte>>* out_bytes) {
  std::vector<schemas::batch_header> out;
  while (from < l->log_end_offset()) {
    auto r = run(io, l->read(from, 1 << 20));
    if (!r) FAIL("read failed: " << r.error().message());
    REQUIRE(r->has_value());
    const auto& range = **r;
    std::vector<std::byte> bytes(range.length);
    REQUIRE(::pread(range.file->fd(), bytes.data(), bytes.size(), static_cast<off_t>(range.pos.value())) ==
            static_cast<ssize_t>(bytes.size()));
    std::span<const std::byte> rest(bytes);
    while (!rest.empty()) {
      auto h = schemas::decode_header(rest);
      REQUIRE(h.has_value());
      REQUIRE(h->length <= rest.size());
      REQUIRE_FALSE(schemas::check_crc(rest.first(h->length), *h));
      if (!out.empty()) REQUIRE(h->base_offset == out.back().next_offset());
      out.push_back(*h);
      if (out_bytes != nullptr) out_bytes->emplace_back(rest.begin(), rest.begin() + h->length);
      rest = rest.subspan(h->length);
    }
    REQUIRE(range.next_offset > from);
    from = range.next_offset;
  }
  return out;
}

std::filesystem::path log_fixture::seg(offset base, const char* ext) const {
  return storage::segment_path(dir, base, ext);
}

std::map<std::int64_t, std::string> log_fixture::values() {
  std::vector<std::vector<std::byte>> bytes;
  read_all(l->log_start_offset(), &bytes);
  std::map<std::int64_t, std::string> out;
  for (const auto& b : bytes) {
    auto v = schemas::batch_view::open(b, schemas::verify_limits{static_cast<std::uint32_t>(b.size())});
    REQUIRE(v.has_value());
    for (std::size_t i = 0; i < v->record_count(); ++i) {
      auto r = v->record(i);
      out[r.off.value()] = std::string(reinterpret_cast<const char*>(r.value->data()), r.value->size());
    }
  }
  return out;
}

}  // namespace runnel::testing
