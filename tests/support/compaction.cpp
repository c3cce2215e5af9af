#include "tests/support/compaction.h"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <unistd.h>

#include "broker/storage/segment.h"

namespace runnel::testing {

namespace {
std::span<const std::byte> bytes_of(const std::string& s) { return std::as_bytes(std::span(s.data(), s.size())); }
std::string string_of(std::span<const std::byte> b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }
}  // namespace

std::vector<std::byte> keyed_batch(const std::vector<keyed_record>& records, timestamp_ms ts) {
  schemas::batch_builder b;
  for (std::size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    std::optional<std::span<const std::byte>> key;
    std::optional<std::span<const std::byte>> value;
    if (r.key) key = bytes_of(*r.key);
    if (r.value) value = bytes_of(*r.value);
    b.add(key, value, ts + static_cast<std::int64_t>(i));
  }
  return b.finish();
}

std::vector<served_record> served_records(log_fixture& f) {
  std::vector<served_record> out;
  offset from = f.l->log_start_offset();
  while (from < f.l->log_end_offset()) {
    auto r = run(f.io, f.l->read(from, 1 << 20));
    if (!r) FAIL("read at " << from.value() << " failed: " << r.error().message());
    if (!r->has_value()) break;
    const auto& range = **r;
    std::vector<std::byte> bytes(range.length);
    REQUIRE(::pread(range.file->fd(), bytes.data(), bytes.size(), static_cast<off_t>(range.pos.value())) ==
            static_cast<ssize_t>(bytes.size()));
    std::span<const std::byte> rest(bytes);
    while (!rest.empty()) {
      auto h = schemas::decode_header(rest);
      REQUIRE(h.has_value());
      REQUIRE(h->length <= rest.size());
      auto view = schemas::batch_view::open(rest.first(h->length), schemas::verify_limits{h->length});
      REQUIRE_MESSAGE(view.has_value(), "batch at ", h->base_offset.value(), ": ", view.error().message());
      for (std::size_t i = 0; i < view->record_count(); ++i) {
        auto rec = view->record(i);
        if (!out.empty()) REQUIRE(rec.off > out.back().off);
        served_record s{rec.off, rec.timestamp, std::nullopt, std::nullopt};
        if (rec.key) s.key = string_of(*rec.key);
        if (rec.value) s.value = string_of(*rec.value);
        out.push_back(std::move(s));
      }
      rest = rest.subspan(h->length);
    }
    REQUIRE(range.next_offset > from);
    from = range.next_offset;
  }
  return out;
}

offset key_model::append(log_fixture& f, const std::vector<keyed_record>& records, timestamp_ms ts) {
  offset base = f.append(keyed_batch(records, ts));
  for (std::size_t i = 0; i < records.size(); ++i) {
    if (!records[i].key) continue;
    latest_[*records[i].key] = served_record{base + static_cast<std::int64_t>(i), ts + static_cast<std::int64_t>(i),
                                             records[i].key, records[i].value};
  }
  return base;
}

std::string check_latest(const key_model& model, const std::vector<served_record>& got,
                         std::optional<offset> compacted_below) {
  std::map<std::string, const served_record*> last;
  for (const auto& r : got) {
    if (r.key) last[*r.key] = &r;
  }
  for (const auto& [key, want] : model.latest()) {
    auto it = last.find(key);
    if (want.value) {
      if (it == last.end()) return fmt::format("key {}: its latest record (offset {}) is gone", key, want.off.value());
      if (it->second->off != want.off || it->second->value != want.value) {
        return fmt::format("key {}: the last record is at offset {}, the latest written at {}", key,
                           it->second->off.value(), want.off.value());
      }
    } else if (it != last.end() && it->second->off != want.off) {
      return fmt::format("key {}: a record at offset {} outlives its tombstone at {}", key, it->second->off.value(),
                         want.off.value());
    }
  }
  if (compacted_below) {
    for (const auto& r : got) {
      if (!r.key || r.off >= *compacted_below) continue;
      auto it = model.latest().find(*r.key);
      // Older than its key's latest, and the latest was within the cleaned range.
      if (it != model.latest().end() && r.off < it->second.off && it->second.off < *compacted_below) {
        return fmt::format("key {}: an older record at offset {} survived the cleaning", *r.key, r.off.value());
      }
    }
  }
  for (const auto& [key, rec] : last) {
    if (!model.latest().contains(key)) return fmt::format("key {}: never written", key);
  }
  return {};
}

}  // namespace runnel::testing
