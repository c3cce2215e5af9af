#include "broker/storage/log_manager.h"

#include <algorithm>
#include <charconv>

#include <asio/co_spawn.hpp>
#include <asio/this_coro.hpp>

#include "broker/storage/errc.h"
#include "broker/storage/logger.h"
#include "broker/storage/waiters.h"

namespace runnel::storage {

log_manager::log_manager(io_ring& ring, std::filesystem::path data_dir, config_fn config, owner_fn owns)
    : ring_(ring), data_dir_(std::move(data_dir)), config_(std::move(config)), owns_(std::move(owns)) {}

log_manager::~log_manager() = default;

bool log_manager::valid_topic_name(std::string_view topic) { return runnel::valid_topic_name(topic); }

std::filesystem::path log_manager::dir_for(const std::filesystem::path& data_dir, const topic_partition& tp) {
  return data_dir / fmt::format("{}-{}", tp.topic, tp.partition.value());
}

std::optional<topic_partition> log_manager::parse_dir_name(std::string_view name) {
  auto dash = name.rfind('-');
  if (dash == std::string_view::npos || dash == 0 || dash + 1 == name.size()) return std::nullopt;
  auto topic = name.substr(0, dash);
  auto digits = name.substr(dash + 1);
  std::int32_t p = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), p);
  if (ec != std::errc{} || ptr != digits.data() + digits.size() || p < 0 || !valid_topic_name(topic)) {
    return std::nullopt;
  }
  return topic_partition{std::string(topic), partition_id(p)};
}

asio::awaitable<std::expected<std::size_t, std::error_code>> log_manager::open_all() {
  std::error_code ec;
  std::filesystem::create_directories(data_dir_, ec);
  if (ec) co_return std::unexpected(ec);
  std::vector<topic_partition> found;
  for (const auto& entry : std::filesystem::directory_iterator(data_dir_, ec)) {
    if (!entry.is_directory()) continue;
    auto tp = parse_dir_name(entry.path().filename().string());
    if (!tp) {
      logger().warn("ignoring {}: not a <topic>-<partition> directory", entry.path().string());
      continue;
    }
    if ((!owns_ || owns_(*tp)) && !logs_.contains(*tp)) found.push_back(std::move(*tp));
  }
  if (ec) co_return std::unexpected(ec);
  if (found.empty()) co_return 0;

  // Open all concurrently: recovery reads of one log overlap the others'.
  auto ex = co_await asio::this_coro::executor;
  std::size_t left = found.size();
  std::size_t opened = 0;
  co_await suspend_until([&](completion all_done) {
    auto done = std::make_shared<completion>(std::move(all_done));
    for (const auto& tp : found) {
      asio::co_spawn(ex, log::open(ring_, dir_for(data_dir_, tp), tp, config_(tp)),
                     [this, tp, done, &left, &opened](std::exception_ptr e, auto result) {
                       if (e) {
                         offline_[tp] = make_error_code(errc::log_offline);
                         logger().error("[{}] open threw; partition offline", tp);
                       } else if (!result) {
                         offline_[tp] = result.error();
                         logger().error("[{}] cannot open log: {}; partition offline", tp, result.error().message());
                       } else {
                         logs_[tp] = std::move(*result);
                         ++opened;
                       }
                       if (--left == 0) (*done)({});
                     });
    }
  });
  logger().info("opened {} logs in {} ({} offline)", opened, data_dir_.string(), offline_.size());
  co_return opened;
}

asio::awaitable<std::expected<log*, std::error_code>> log_manager::get_or_create(const topic_partition& tp) {
  if (!valid_topic_name(tp.topic) || tp.partition.value() < 0) {
    co_return std::unexpected(make_error_code(errc::bad_log_directory));
  }
  if (auto it = removing_.find(tp); it != removing_.end()) {
    // Never reopen a directory that is being deleted.
    (void)co_await suspend_until([&](completion c) { it->second.push_back(std::move(c)); });
  }
  if (auto* l = get(tp)) co_return l;
  if (auto it = offline_.find(tp); it != offline_.end()) co_return std::unexpected(it->second);
  // One open per partition: concurrent callers wait for the first one.
  if (auto it = opening_.find(tp); it != opening_.end()) {
    auto ec = co_await suspend_until([&](completion c) { it->second.push_back(std::move(c)); });
    if (ec) co_return std::unexpected(ec);
    if (auto* l = get(tp)) co_return l;
    co_return std::unexpected(make_error_code(errc::unknown_log));
  }
  opening_[tp];
  auto opened = co_await log::open(ring_, dir_for(data_dir_, tp), tp, config_(tp));
  auto waiters = std::move(opening_[tp]);
  opening_.erase(tp);
  if (!opened) {
    for (auto& w : waiters) w(opened.error());
    co_return std::unexpected(opened.error());
  }
  auto* l = logs_.emplace(tp, std::move(*opened)).first->second.get();
  for (auto& w : waiters) w({});
  co_return l;
}

log* log_manager::get(const topic_partition& tp) const {
  auto it = logs_.find(tp);
  return it == logs_.end() ? nullptr : it->second.get();
}

asio::awaitable<std::error_code> log_manager::remove(const topic_partition& tp) {
  if (removing_.contains(tp)) co_return make_error_code(errc::unknown_log);  // already going
  auto it = logs_.find(tp);
  if (it == logs_.end() && !offline_.contains(tp)) co_return make_error_code(errc::unknown_log);
  removing_[tp];
  if (it == logs_.end()) {
    offline_.erase(tp);
  } else {
    auto l = std::move(it->second);
    logs_.erase(it);
    co_await l->close();
  }
  std::error_code ec;
  std::filesystem::remove_all(dir_for(data_dir_, tp), ec);
  if (!ec) logger().info("[{}] log deleted", tp);
  auto waiters = std::move(removing_[tp]);
  removing_.erase(tp);
  for (auto& w : waiters) w({});
  co_return ec;
}

void log_manager::flush_due(std::chrono::steady_clock::time_point now) {
  for (auto& [tp, l] : logs_) l->flush_if_due(now);
}

asio::awaitable<std::size_t> log_manager::apply_retention(timestamp_ms now) {
  std::size_t deleted = 0;
  for (auto& [tp, l] : logs_) {
    auto n = co_await l->apply_retention(now);
    if (n) deleted += *n;
  }
  co_return deleted;
}

asio::awaitable<std::error_code> log_manager::close_all() {
  std::error_code first;
  for (auto& [tp, l] : logs_) {
    auto ec = co_await l->close();
    if (ec && !first) first = ec;
  }
  co_return first;
}

std::vector<topic_partition> log_manager::partitions() const {
  std::vector<topic_partition> out;
  out.reserve(logs_.size());
  for (const auto& [tp, _] : logs_) out.push_back(tp);
  return out;
}

}  // namespace runnel::storage
