#include "broker/meta/topic_config.h"

#include <array>
#include <charconv>
#include <limits>

#include <fmt/format.h>

namespace runnel::meta {

namespace {

constexpr std::array<std::string_view, 18> keys{
    "segment.bytes",        "segment.ms",          "retention.bytes",        "retention.ms",
    "index.interval.bytes", "max.message.bytes",   "segment.preallocate.bytes", "min.insync.replicas",
    "unclean.leader.election", "cleanup.policy",   "delete.retention.ms",    "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms", "dedup.window.ms",  "dedup.window.max.ids",   "dead.letter.topic",
    "flush.messages",       "flush.ms",
};

constexpr std::int64_t i64_max = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t u32_max = std::numeric_limits<std::uint32_t>::max();

}  // namespace

std::span<const std::string_view> topic_config_keys() { return keys; }

std::expected<std::int64_t, std::string> parse_int(std::string_view key, std::string_view value, std::int64_t min,
                                                   std::int64_t max) {
  std::int64_t v = 0;
  const auto* end = value.data() + value.size();
  auto [p, ec] = std::from_chars(value.data(), end, v);
  if (ec != std::errc{} || p != end || value.empty()) {
    return std::unexpected(fmt::format("{}: '{}' is not an integer", key, value));
  }
  if (v < min || v > max) return std::unexpected(fmt::format("{}: {} is outside [{}, {}]", key, v, min, max));
  return v;
}

std::expected<void, std::string> apply_topic_config(topic_config& cfg, std::string_view key, std::string_view value) {
  auto set = [&](std::int64_t min, std::int64_t max, auto&& store) -> std::expected<void, std::string> {
    auto v = parse_int(key, value, min, max);
    if (!v) return std::unexpected(v.error());
    store(*v);
    return {};
  };
  // Segments must hold at least one maximal batch header; 1 MiB keeps the
  // index's 32-bit positions and the roll logic sane.
  // At most 4 GiB - 1: the offset and time indexes hold 32-bit positions.
  if (key == "segment.bytes") return set(1 << 20, u32_max, [&](auto v) { cfg.log.segment_bytes = static_cast<std::uint64_t>(v); });
  if (key == "segment.ms") return set(1, i64_max, [&](auto v) { cfg.log.segment_ms = std::chrono::milliseconds(v); });
  if (key == "flush.messages") return set(0, i64_max, [&](auto v) { cfg.log.flush_messages = static_cast<std::uint64_t>(v); });
  if (key == "flush.ms") return set(0, i64_max, [&](auto v) { cfg.log.flush_ms = std::chrono::milliseconds(v); });
  if (key == "retention.bytes") return set(-1, i64_max, [&](auto v) { cfg.log.retention_bytes = v; });
  if (key == "retention.ms") return set(-1, i64_max, [&](auto v) { cfg.log.retention_ms = std::chrono::milliseconds(v); });
  if (key == "index.interval.bytes") {
    return set(0, 1 << 30, [&](auto v) { cfg.log.index_interval_bytes = static_cast<std::uint32_t>(v); });
  }
  if (key == "max.message.bytes") {
    return set(128, 1 << 30, [&](auto v) { cfg.max_message_bytes = static_cast<std::uint32_t>(v); });
  }
  if (key == "segment.preallocate.bytes") {
    return set(0, 1LL << 30, [&](auto v) { cfg.log.preallocate_bytes = static_cast<std::uint64_t>(v); });
  }
  if (key == "min.insync.replicas") {
    return set(1, 1000, [&](auto v) { cfg.min_insync_replicas = static_cast<std::int32_t>(v); });
  }
  if (key == "unclean.leader.election" || key == "dead.letter.topic") {
    if (value != "true" && value != "false") {
      return std::unexpected(fmt::format("{}: '{}' is not true or false", key, value));
    }
    (key == "dead.letter.topic" ? cfg.dead_letter_topic : cfg.unclean_leader_election) = value == "true";
    return {};
  }
  if (key == "cleanup.policy") {
    if (value == "delete") {
      cfg.log.cleanup_delete = true;
      cfg.log.cleanup_compact = false;
    } else if (value == "compact") {
      cfg.log.cleanup_delete = false;
      cfg.log.cleanup_compact = true;
    } else if (value == "compact,delete" || value == "delete,compact") {
      cfg.log.cleanup_delete = true;
      cfg.log.cleanup_compact = true;
    } else {
      return std::unexpected(fmt::format("{}: '{}' is not delete, compact or compact,delete", key, value));
    }
    return {};
  }
  if (key == "delete.retention.ms") {
    return set(0, i64_max, [&](auto v) { cfg.log.delete_retention_ms = std::chrono::milliseconds(v); });
  }
  if (key == "dedup.window.ms") {
    return set(0, i64_max, [&](auto v) { cfg.log.dedup_window = std::chrono::milliseconds(v); });
  }
  if (key == "dedup.window.max.ids") {
    return set(1, 1LL << 30, [&](auto v) { cfg.log.dedup_max_ids = static_cast<std::size_t>(v); });
  }
  if (key == "min.compaction.lag.ms") {
    return set(0, i64_max, [&](auto v) { cfg.log.min_compaction_lag_ms = std::chrono::milliseconds(v); });
  }
  if (key == "min.cleanable.dirty.ratio") {
    double d = 0;
    const auto* end = value.data() + value.size();
    auto [p, ec] = std::from_chars(value.data(), end, d);
    if (ec != std::errc{} || p != end || value.empty() || !(d >= 0.0 && d <= 1.0)) {
      return std::unexpected(fmt::format("{}: '{}' is not a number in [0, 1]", key, value));
    }
    cfg.log.min_cleanable_dirty_ratio = d;
    return {};
  }
  return std::unexpected(fmt::format("{}: unknown topic config key", key));
}

std::string cleanup_policy_name(const storage::log_config& cfg) {
  if (cfg.cleanup_compact && cfg.cleanup_delete) return "compact,delete";
  return cfg.cleanup_compact ? "compact" : "delete";
}

std::expected<topic_config, std::string> resolve(const topic_config& defaults, const config_overrides& overrides) {
  topic_config cfg = defaults;
  for (const auto& [k, v] : overrides) {
    if (auto r = apply_topic_config(cfg, k, v); !r) return std::unexpected(r.error());
  }
  return cfg;
}

std::vector<std::pair<std::string, std::string>> describe(const topic_config& cfg) {
  return {
      {"segment.bytes", std::to_string(cfg.log.segment_bytes)},
      {"segment.ms", std::to_string(cfg.log.segment_ms.count())},
      {"retention.bytes", std::to_string(cfg.log.retention_bytes)},
      {"retention.ms", std::to_string(cfg.log.retention_ms.count())},
      {"index.interval.bytes", std::to_string(cfg.log.index_interval_bytes)},
      {"max.message.bytes", std::to_string(cfg.max_message_bytes)},
      {"segment.preallocate.bytes", std::to_string(cfg.log.preallocate_bytes)},
      {"min.insync.replicas", std::to_string(cfg.min_insync_replicas)},
      {"unclean.leader.election", cfg.unclean_leader_election ? "true" : "false"},
      {"cleanup.policy", cleanup_policy_name(cfg.log)},
      {"delete.retention.ms", std::to_string(cfg.log.delete_retention_ms.count())},
      {"min.cleanable.dirty.ratio", fmt::format("{}", cfg.log.min_cleanable_dirty_ratio)},
      {"min.compaction.lag.ms", std::to_string(cfg.log.min_compaction_lag_ms.count())},
      {"dedup.window.ms", std::to_string(cfg.log.dedup_window.count())},
      {"flush.messages", std::to_string(cfg.log.flush_messages)},
      {"flush.ms", std::to_string(cfg.log.flush_ms.count())},
      {"dedup.window.max.ids", std::to_string(cfg.log.dedup_max_ids)},
      {"dead.letter.topic", cfg.dead_letter_topic ? "true" : "false"},
  };
}

}  // namespace runnel::meta
