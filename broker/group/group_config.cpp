#include "broker/group/group_config.h"

#include <charconv>

#include <fmt/format.h>

namespace runnel::group {

namespace {

std::optional<long long> number(std::string_view v) {
  long long n = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size()) return std::nullopt;
  return n;
}

bool known(std::string_view key) { return key == lock_duration_key || key == delivery_attempts_key || key == dlq_topic_key; }

error unknown_key(std::string_view key) {
  return error(errc::invalid_config, fmt::format("unknown group config '{}' (known: {}, {}, {})", key, lock_duration_key,
                                                 delivery_attempts_key, dlq_topic_key));
}

std::optional<error> check(std::string_view key, std::string_view value) {
  auto range = [&](long long lo, long long hi) -> std::optional<error> {
    auto n = number(value);
    if (n && *n >= lo && *n <= hi) return std::nullopt;
    return error(errc::invalid_config, fmt::format("{} must be a whole number in [{}, {}], got '{}'", key, lo, hi, value));
  };
  if (key == lock_duration_key) return range(100, 3'600'000);
  if (key == delivery_attempts_key) return range(1, 1000);
  if (key == dlq_topic_key) {
    if (valid_topic_name(value) && !value.starts_with("__")) return std::nullopt;
    return error(errc::invalid_config,
                 fmt::format("{} must be a topic name (1-249 of [a-zA-Z0-9._-], not internal), got '{}'", key, value));
  }
  return unknown_key(key);
}

}  // namespace

std::expected<group_configs, error> apply_group_config_changes(const group_configs& current,
                                                               const group_configs& changes) {
  group_configs out = current;
  for (const auto& [k, v] : changes) {
    if (v.empty()) {
      if (!known(k)) return std::unexpected(unknown_key(k));
      out.erase(k);
      continue;
    }
    if (auto e = check(k, v)) return std::unexpected(*e);
    out[k] = v;
  }
  return out;
}

share_limits share_limits_of(const group_configs& configs, const share_limits& defaults) {
  share_limits out = defaults;
  if (auto it = configs.find(std::string(lock_duration_key)); it != configs.end()) {
    if (auto n = number(it->second)) out.lock_duration = std::chrono::milliseconds(*n);
  }
  if (auto it = configs.find(std::string(delivery_attempts_key)); it != configs.end()) {
    if (auto n = number(it->second)) out.max_delivery_attempts = static_cast<std::uint16_t>(*n);
  }
  out.dead_letter = !dlq_topic_of(configs).empty();
  return out;
}

std::string dlq_topic_of(const group_configs& configs) {
  auto it = configs.find(std::string(dlq_topic_key));
  return it == configs.end() ? std::string() : it->second;
}

std::vector<described_config> describe_group_configs(const group_configs& configs, const share_limits& defaults) {
  const share_limits eff = share_limits_of(configs, defaults);
  auto is_default = [&](std::string_view k) { return !configs.contains(std::string(k)); };
  return {
      {std::string(lock_duration_key), std::to_string(eff.lock_duration.count()), is_default(lock_duration_key)},
      {std::string(delivery_attempts_key), std::to_string(eff.max_delivery_attempts), is_default(delivery_attempts_key)},
      {std::string(dlq_topic_key), dlq_topic_of(configs), is_default(dlq_topic_key)},
  };
}

}  // namespace runnel::group
