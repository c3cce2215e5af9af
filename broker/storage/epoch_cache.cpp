#include "broker/storage/epoch_cache.h"

#include <charconv>
#include <fstream>
#include <sstream>

#include "broker/storage/errc.h"
#include "broker/storage/file.h"
#include "broker/storage/logger.h"

namespace runnel::storage {

namespace {
constexpr std::string_view magic = "runnel-epochs 1";
}  // namespace

std::expected<epoch_cache, std::error_code> epoch_cache::load(const std::filesystem::path& dir) {
  epoch_cache c(dir / file_name);
  std::ifstream in(c.file_);
  if (!in) return c;  // no file yet: no epochs
  std::string line;
  std::size_t line_no = 0;
  auto corrupt = [&](const char* why) {
    logger().error("{}: line {}: {}", c.file_.string(), line_no, why);
    return std::unexpected(make_error_code(errc::corrupt_log));
  };
  while (std::getline(in, line)) {
    ++line_no;
    if (line_no == 1) {
      if (line != magic) return corrupt("not a leader epoch checkpoint");
      continue;
    }
    std::int32_t epoch = 0;
    std::int64_t start = 0;
    const auto sp = line.find(' ');
    if (sp == std::string::npos) return corrupt("expected '<epoch> <start offset>'");
    auto [p1, e1] = std::from_chars(line.data(), line.data() + sp, epoch);
    auto [p2, e2] = std::from_chars(line.data() + sp + 1, line.data() + line.size(), start);
    if (e1 != std::errc{} || e2 != std::errc{} || p1 != line.data() + sp || p2 != line.data() + line.size() ||
        epoch < 0 || start < 0) {
      return corrupt("expected '<epoch> <start offset>'");
    }
    if (!c.entries_.empty() && (epoch <= c.entries_.back().epoch || offset(start) < c.entries_.back().start)) {
      return corrupt("epochs must ascend");
    }
    c.entries_.push_back({epoch, offset(start)});
  }
  if (line_no == 0) return corrupt("empty file");
  return c;
}

std::string epoch_cache::encode() const {
  std::ostringstream out;
  out << magic << '\n';
  for (const auto& e : entries_) out << e.epoch << ' ' << e.start.value() << '\n';
  return out.str();
}

std::error_code epoch_cache::save() const {
  const std::string s = encode();
  return write_file_atomic(file_, std::as_bytes(std::span(s.data(), s.size())));
}

bool epoch_cache::assign(std::int32_t epoch, offset start) {
  if (!entries_.empty() && epoch <= entries_.back().epoch) return false;
  // An epoch that never got data is superseded by this one.
  while (!entries_.empty() && entries_.back().start >= start) entries_.pop_back();
  entries_.push_back({epoch, start});
  return true;
}

bool epoch_cache::truncate_from(offset end) {
  const auto before = entries_.size();
  while (!entries_.empty() && entries_.back().start >= end) entries_.pop_back();
  return entries_.size() != before;
}

bool epoch_cache::clear() {
  if (entries_.empty()) return false;
  entries_.clear();
  return true;
}

std::optional<std::pair<std::int32_t, offset>> epoch_cache::end_for(std::int32_t epoch, offset log_end) const {
  for (std::size_t i = entries_.size(); i-- > 0;) {
    if (entries_[i].epoch <= epoch) {
      return std::pair{entries_[i].epoch, i + 1 < entries_.size() ? entries_[i + 1].start : log_end};
    }
  }
  return std::nullopt;
}

std::optional<std::int32_t> epoch_cache::latest() const {
  if (entries_.empty()) return std::nullopt;
  return entries_.back().epoch;
}

}  // namespace runnel::storage
