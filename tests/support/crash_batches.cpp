#include "tests/support/crash_batches.h"

#include <algorithm>

namespace runnel::testing {

namespace {
int records_for(offset o) { return 1 + static_cast<int>(o.value() % 4); }
std::size_t value_size_for(offset o, int i) { return 10 + static_cast<std::size_t>((o.value() * 7 + i * 131) % 2000); }
std::byte fill_for(offset o, int i) { return std::byte(static_cast<std::uint8_t>((o.value() + i) % 251)); }
}  // namespace

std::vector<std::byte> crash_batch(offset o) {
  schemas::batch_builder b;
  for (int i = 0; i < records_for(o); ++i) {
    std::vector<std::byte> value(value_size_for(o, i), fill_for(o, i));
    b.add(std::nullopt, std::span<const std::byte>(value), timestamp_ms(o.value()));
  }
  return b.finish();
}

bool is_crash_batch(std::span<const std::byte> batch) {
  auto view = schemas::batch_view::open(batch, schemas::verify_limits{64U << 20});
  if (!view) return false;
  offset base = view->header().base_offset;
  if (static_cast<int>(view->record_count()) != records_for(base)) return false;
  for (std::size_t i = 0; i < view->record_count(); ++i) {
    auto r = view->record(i);
    int ii = static_cast<int>(i);
    if (!r.value || r.value->size() != value_size_for(base, ii)) return false;
    if (!std::all_of(r.value->begin(), r.value->end(), [&](std::byte b) { return b == fill_for(base, ii); })) {
      return false;
    }
  }
  return true;
}

}  // namespace runnel::testing
